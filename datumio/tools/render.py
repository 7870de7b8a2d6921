"""Text rendering and progress bars for the command-line tools.

Every line a tool writes for a person goes through :func:`~datumio.errors.printable`
(:func:`lines_text`, or ``printable`` itself for one line), and its ``--json`` through
:func:`json_text`: names, paths and reasons from data are shown escaped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

from datumio.errors import ESCAPED_CATEGORIES, printable
from datumio.ingest import IngestReport
from datumio.shards.manifest import RejectSummary, Stats

_BAR_WIDTH = 30


class ProgressBar:
    """A tqdm bar on stderr that takes ``(done, total)`` updates; silent when not a TTY."""

    def __init__(self, desc: str, unit: str, quiet: bool) -> None:
        self._desc = printable(desc)
        self._unit = unit
        self._disabled = quiet or not sys.stderr.isatty()
        self._bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self._disabled:
            return
        if self._bar is None:
            # total 0: a stream of unknown length (a count without a bar)
            self._bar = tqdm(total=total or None, desc=self._desc, unit=self._unit, file=sys.stderr)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_bar(desc: str, unit: str = "it", quiet: bool = False) -> ProgressBar:
    return ProgressBar(desc, unit, quiet)


def lines_text(lines: Iterable[str]) -> str:
    """``lines`` joined by line breaks, each :func:`~datumio.errors.printable` (a line
    break inside one of them is shown as ``\\n``, so a name cannot forge a line)."""
    return "\n".join(printable(line) for line in lines)


def json_text(obj: Any) -> str:
    """``obj`` as one line of JSON for stdout, exact (``json.loads`` gives it back).

    Non-ASCII text stays readable; every character that :func:`~datumio.errors.printable`
    escapes is written as a JSON ``\\uXXXX`` escape, also the C1 controls, bidi overrides
    and U+2028/U+2029 that ``json.dumps(..., ensure_ascii=False)`` leaves raw.
    """
    text = json.dumps(obj, ensure_ascii=False)
    if text.isprintable():
        return text
    import unicodedata  # only for text that needs a look at each character

    return "".join(
        _json_escape(ch) if unicodedata.category(ch) in ESCAPED_CATEGORIES else ch for ch in text
    )


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a UTF-16 surrogate pair, as JSON writes it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def plural(count: int, one: str, many: str = "") -> str:
    """``1 group``, ``2 groups``, ``1,000 extra copies``: a count with its noun."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def bar_chart(names: list[str], counts: list[int], width: int = _BAR_WIDTH) -> list[str]:
    """One line per class, sorted by count, with a proportional bar (names printable)."""
    names = [printable(name) for name in names]  # escaped first: the columns line up
    top = max(counts, default=0) or 1
    name_width = min(max((len(n) for n in names), default=4), 24)
    rows = sorted(zip(names, counts, strict=True), key=lambda nc: (-nc[1], nc[0]))
    return [
        f"  {name[:name_width]:<{name_width}} {count:>8}  {'#' * max(count * width // top, 0)}"
        for name, count in rows
    ]


def render_ingest(report: IngestReport) -> str:
    """A short human summary of an ingest run."""
    m = report.manifest
    stats = m.stats or Stats()
    rejects = m.rejects or RejectSummary()
    counts = list(m.class_counts)
    nonzero = [c for c in counts if c]
    ratio = max(nonzero) / min(nonzero) if nonzero else 0.0
    size = sum(s.file_bytes for s in m.shards)
    mean = None if stats.mean is None else list(stats.mean)
    std = None if stats.std is None else list(stats.std)
    lines = [
        f"{report.out}: {m.num_records} records, {m.num_classes} classes, "
        f"{len(m.shards)} {m.backend} shard(s), {human_bytes(size)}, "
        f"encoding {m.encoding}",
        f"  {report.files_seen} {'rows' if not m.has_images else 'files'} in "
        f"{report.seconds:.1f} s ({report.images_per_second:.0f} "
        f"{'rows' if not m.has_images else 'files'}/s); imbalance ratio {ratio:.1f}",
        *([f"  channel mean {mean}  std {std} (0-255)"] if m.has_images else []),
        "classes:",
        *bar_chart(list(m.class_names), counts),
    ]
    for empty in m.empty_classes:
        lines.append(f"  note: class {empty.name!r} has no records ({empty.why})")
    if report.rejects:
        lines.append(f"rejected {len(report.rejects)} file(s) (details in {rejects.file}):")
        for reason, n in rejects.by_reason.items():
            lines.append(f"  {n:>6}  {reason}")
    return lines_text(lines)
