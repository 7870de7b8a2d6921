"""``datumio inspect --html``: one self-contained page of the summary, pictures and JSON."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence

from PIL import Image

from datumio.errors import printable
from datumio.inspect.duplicates import Duplicates
from datumio.inspect.sampling import SamplingReport
from datumio.inspect.splits import SplitSummary
from datumio.inspect.summary import ChannelStats, DatasetSummary, Rejects, Spread
from datumio.tools.field_text import field_lines, fields_header
from datumio.tools.pictures import png_bytes
from datumio.tools.render import human_bytes, plural

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.15em;
margin-top:2em;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0}
td,th{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;
border:1px solid #ddd}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}
.muted{color:#777}
"""


def _esc(value: object) -> str:
    """``value`` as HTML text: :func:`~datumio.errors.printable`, then HTML-escaped."""
    return html.escape(printable(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
    def cell(tag: str, k: int, v: object) -> str:
        cls = ' class="n"' if k in numeric else ""
        return f"<{tag}{cls}>{_esc(v)}</{tag}>"

    head = "".join(cell("th", k, h) for k, h in enumerate(header)) if any(header) else ""
    body = "".join(
        "<tr>" + "".join(cell("td", k, v) for k, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _span(spread: Spread, digits: int = 0) -> str:
    lo, hi = f"{spread.min:.{digits}f}", f"{spread.max:.{digits}f}"
    return lo if lo == hi else f"{lo}–{hi} (median {spread.median:.{digits}f})"


def _channels(stats: ChannelStats) -> list[tuple[str, str]]:
    if not stats.mean:
        return []
    mean = " ".join(f"{v:.1f}" for v in stats.mean)
    std = " ".join(f"{v:.1f}" for v in stats.std or ())
    return [(f"channel mean / std ({stats.scale})", f"{mean} / {std}")]


def _overview(s: DatasetSummary) -> list[tuple[str, str]]:
    ratio = s.imbalance_ratio
    rows = [
        ("format", f"{s.format} v{s.format_version}, {s.backend} backend"),
        ("encoding", s.encoding),
        ("records", f"{s.records:,} in {plural(s.shards.count, 'shard')}"),
        ("classes", f"{s.num_classes:,}, imbalance ratio {'n/a' if ratio is None else ratio}"),
        ("bytes on disk", human_bytes(s.on_disk.total)),
    ]
    for label, size in (("stored size", s.image.stored), ("source size", s.image.source)):
        if size is not None:
            rows.append(
                (
                    label,
                    f"width {_span(size.width)}, height {_span(size.height)}, "
                    f"aspect w/h {_span(size.aspect, 2)}",
                )
            )
    return rows + _channels(s.channel_stats)


def _rejects_html(rejects: Rejects) -> list[str]:
    parts = [f"<h2>Rejected at ingest: {rejects.count:,}</h2>"]
    if rejects.by_reason:
        parts.append(_table(["reason", "files"], list(rejects.by_reason.items()), {1}))
        sample = [(r.path or "", r.reason or "", r.detail or "") for r in rejects.sample]
        parts.append(_table(["first files", "reason", "detail"], sample, set()))
    return parts


def _duplicates_html(dup: Duplicates | None) -> list[str]:
    if dup is None:
        return ['<p class="muted">not checked (--no-duplicates)</p>']
    within, across = dup.within_class, dup.across_classes
    parts = [
        f"<p>{plural(dup.groups, 'group')} of identical records: "
        f"{plural(within.redundant_records, 'extra copy', 'extra copies')} within a class, "
        f"{plural(across.groups, 'group')} across classes. "
        f'<span class="muted">({plural(dup.records_read, "record")} sharing a CRC32 '
        "and shape compared byte for byte)</span></p>"
    ]
    rows = [
        (e.size, ", ".join(sorted(set(e.classes))), " | ".join(e.sources)) for e in dup.examples
    ]
    if rows:
        parts.append(_table(["copies", "classes", "sources"], rows, {0}))
    return parts


def _splits_html(sp: SplitSummary, class_names: Sequence[str]) -> list[str]:
    head = ["class", *(c.name for c in sp.by_split)]
    rows = [(name, *(c.classes[k] for c in sp.by_split)) for k, name in enumerate(class_names)]
    rows.append(("all classes", *(f"{c.records:,} ({c.share:.1%})" for c in sp.by_split)))
    numeric = set(range(1, len(head)))
    parts = [
        "<h2>Splits</h2>",
        f'<p class="muted">{_esc(sp.dir)}: {_esc(json.dumps(dict(sp.how)))}</p>',
        _table(head, rows, numeric),
    ]
    if sp.unassigned:
        parts.append(f"<p>{plural(sp.unassigned, 'record')} in no split</p>")
    parts += [f"<p><b>problem:</b> {_esc(text)}</p>" for text in sp.problems]
    return parts


def _sampling_html(sp: SamplingReport) -> list[str]:
    how = "measured" if sp.exact else "expected values"
    ranks = sp.by_rank
    rows = []
    for c in sorted(sp.by_class, key=lambda c: (-c.records, c.name)):
        per_rank = [r.by_class[c.id] for r in ranks]
        fewest, most = min(per_rank), max(per_rank)
        coverage = "–" if c.coverage is None else f"{c.coverage:.0%}"
        rows.append(
            (
                c.name,
                c.records,
                c.draws_per_epoch,
                f"{c.share:.1%}",
                f"{c.repeats_per_epoch:.2f}",
                f"{c.seen_after_epochs} ({coverage})",
                f"{fewest}–{most}" if fewest != most else fewest,
            )
        )
    head = ["class", "records", "draws/epoch", "share", "repeats/epoch", "seen", "per rank"]
    return [
        f"<h2>Sampling: {_esc(sp.plan.mode)}, {plural(sp.epochs, 'epoch')}, "
        f"world size {sp.world_size}</h2>",
        f"<p>{sp.plan.epoch_size:,} draws per epoch, {sp.plan.rank_size:,} per rank; "
        f"{sp.fraction_seen_per_epoch:.1%} of records seen per epoch, "
        f"{sp.fraction_seen_total:.1%} after all epochs ({how}). <i>seen</i>: distinct "
        "records drawn in all epochs; <i>per rank</i>: draws of the class on one rank.</p>",
        _table(head, rows, {1, 2, 3, 4, 5, 6}),
        *[f'<p class="muted">note: {_esc(n)}</p>' for n in sp.notes],
    ]


def html_report(summary: DatasetSummary, images: Mapping[str, Image.Image]) -> str:
    """One self-contained HTML page: the summary as tables, then ``images`` (title -> image)
    inlined as base64 PNGs, then the full summary JSON. Nothing is fetched from elsewhere.

    Text is shown :func:`~datumio.errors.printable`, then HTML-escaped; the summary JSON at
    the end (ASCII, ``\\u`` escapes) holds the exact names.
    """
    s = summary
    classes = sorted(s.classes, key=lambda c: (-c.count, c.name))
    parts = [
        f"<h1>datumio inspect: {_esc(s.path)}</h1>",
        _table(["", ""], _overview(s), set()),
        "<h2>Classes</h2>",
        _table(
            ["id", "class", "records", "rejected at ingest"],
            [(c.id, c.name, c.count, c.rejected) for c in classes],
            {0, 2, 3},
        ),
        *_rejects_html(s.rejects),
        "<h2>Duplicates</h2>",
        *_duplicates_html(s.duplicates),
    ]
    if s.splits is not None:
        parts += _splits_html(s.splits, [c.name for c in s.classes])
    if s.fields:
        lines = [fields_header(s.fields, s.records)]
        lines += [line for f in s.fields for line in field_lines(f)]
        parts += ["<h2>Fields</h2>", f"<pre>{chr(10).join(_esc(line) for line in lines)}</pre>"]
    if s.sampling is not None:
        parts += _sampling_html(s.sampling)
    for title, img in images.items():
        data = base64.b64encode(png_bytes(img)).decode("ascii")
        parts.append(f"<h2>{_esc(title)}</h2>")
        parts.append(f'<img alt="{_esc(title)}" src="data:image/png;base64,{data}">')
    parts.append("<h2>Summary JSON</h2>")
    parts.append(
        "<details><summary>show</summary>"
        f"<pre>{html.escape(json.dumps(s.to_json(), indent=2))}</pre></details>"
    )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>datumio inspect: {_esc(s.path)}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
