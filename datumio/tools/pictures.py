"""Pictures of a dataset, drawn with Pillow alone: a contact sheet, a class histogram, a page.

No plotting library: the charts are rectangles and text on a Pillow canvas, in DejaVu Sans
(or another common TrueType font) when the system has one, else Pillow's bundled font.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from datumio.errors import DatumioError, printable
from datumio.shards.dataset import Dataset
from datumio.tools.annotate import draw as draw_annotations
from datumio.tools.annotate import has_annotations, record_annotations
from datumio.tools.field_text import field_lines, fields_header
from datumio.tools.render import human_bytes

THUMB = 72
GAP = 6
LABEL_WIDTH = 180
TITLE_HEIGHT = 34
#: Rows a contact sheet shows at most (the largest classes when there are more).
MAX_SHEET_CLASSES = 100

_BG = (250, 250, 250)
_INK = (34, 34, 34)
_MUTED = (120, 120, 120)
_TILE_BG = (228, 228, 228)
_NATURAL = (92, 124, 168)
_SAMPLED = (230, 140, 50)
_ERROR = (200, 60, 60)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


#: Tried in order: wide Unicode coverage first (class names are often not ASCII); Pillow's
#: bundled font, which lacks most accented letters, is the last resort.
_FONT_FILES = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf", "Arial.ttf")


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Font:
    for name in _FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError, TypeError):
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: Font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    """``text`` cut with an ellipsis so that it fits in ``width`` pixels."""
    if _text_width(draw, text, font) <= width:
        return text
    while text and _text_width(draw, text + "…", font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet_size(num_rows: int, per_class: int, thumb: int = THUMB) -> tuple[int, int]:
    """(width, height) of a contact sheet with ``num_rows`` class rows."""
    width = LABEL_WIDTH + per_class * (thumb + GAP) + GAP
    return width, TITLE_HEIGHT + num_rows * (thumb + GAP) + GAP


def _thumbnail(ds: Dataset, i: int, thumb: int, annotations: bool = False) -> Image.Image:
    tile = Image.new("RGB", (thumb, thumb), _TILE_BG)
    try:
        pixels = ds.image(i)
        ann = record_annotations(ds, i) if annotations else None
    except DatumioError:
        draw = ImageDraw.Draw(tile)
        draw.line((8, 8, thumb - 8, thumb - 8), fill=_ERROR, width=3)
        draw.line((8, thumb - 8, thumb - 8, 8), fill=_ERROR, width=3)
        return tile
    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
    # Small images are enlarged too, with crisp pixels, so every tile reads at the same size.
    grow = max(img.size) < thumb
    method = Image.Resampling.NEAREST if grow else Image.Resampling.LANCZOS
    img = ImageOps.contain(img, (thumb, thumb), method=method)
    if ann is not None:
        img = draw_annotations(img, ann, _font(10))
    tile.paste(img, ((thumb - img.width) // 2, (thumb - img.height) // 2))
    return tile


def contact_sheet(
    ds: Dataset,
    per_class: int = 8,
    seed: int = 0,
    *,
    thumb: int = THUMB,
    max_classes: int = MAX_SHEET_CLASSES,
    annotations: bool | None = None,
) -> Image.Image:
    """A labelled grid: one row per class, ``per_class`` random records of it.

    Each row starts with the class name, its id and record count; records are drawn without
    replacement with ``numpy.random.default_rng([seed, class id])`` (all of a smaller class)
    and shown in id order, scaled to fit a ``thumb`` square. A record that does not decode
    is shown as a red cross. Images are scaled to fit the square (small ones enlarged with
    nearest-neighbour). With more than ``max_classes`` classes the largest are shown.
    ``annotations`` draws each record's boxes, masks and keypoints over it
    (:mod:`datumio.tools.annotate`); None: when the dataset has such fields.
    """
    if annotations is None:
        annotations = has_annotations(ds)
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    counts = ds.counts
    classes = list(range(ds.num_classes))
    if len(classes) > max_classes:
        classes = sorted(sorted(classes, key=lambda c: -int(counts[c]))[:max_classes])
    sheet = Image.new("RGB", contact_sheet_size(len(classes), per_class, thumb), _BG)
    draw = ImageDraw.Draw(sheet)
    title, name_font, small = _font(16), _font(14), _font(12)
    shown = f" ({len(classes)} largest shown)" if len(classes) < ds.num_classes else ""
    shown_path = printable(ds.path.rstrip("/").split("/")[-1])
    head = f"{shown_path}: {len(ds)} records, {ds.num_classes} classes"
    draw.text((GAP + 4, 9), _fit(draw, head + shown, title, sheet.width - 12), _INK, font=title)
    for row, c in enumerate(classes):
        top = TITLE_HEIGHT + row * (thumb + GAP)
        if row % 2:
            draw.rectangle(
                (0, top - GAP // 2, sheet.width, top + thumb + GAP // 2), (240, 240, 240)
            )
        name = _fit(draw, printable(ds.class_names[c]), name_font, LABEL_WIDTH - 16)
        draw.text((GAP + 4, top + thumb // 2 - 17), name, _INK, font=name_font)
        draw.text(
            (GAP + 4, top + thumb // 2 + 3),
            f"#{c}  ·  {int(counts[c])} records",
            _MUTED,
            font=small,
        )
        ids = ds.class_index(c)
        if ids.size == 0:
            draw.text((LABEL_WIDTH, top + thumb // 2 - 7), "no records", _MUTED, font=small)
            continue
        rng = np.random.default_rng([seed, c])
        picked = np.sort(rng.choice(ids.size, size=min(per_class, ids.size), replace=False))
        for k, pos in enumerate(picked.tolist()):
            sheet.paste(
                _thumbnail(ds, int(ids[pos]), thumb, annotations),
                (LABEL_WIDTH + k * (thumb + GAP), top),
            )
    return sheet


_HIST_LABEL_WIDTH, _HIST_PLOT_WIDTH, _HIST_VALUE_WIDTH = 170, 460, 90


def _bar_layout(paired: bool) -> tuple[int, int, int]:
    """(bar height, row height, top margin) of a class histogram."""
    bar_h = 11 if paired else 16
    return bar_h, (2 * bar_h + 8 if paired else bar_h + 8), 58


def class_histogram_size(num_classes: int, paired: bool) -> tuple[int, int]:
    """(width, height) of a class histogram; ``paired`` when it has sampled counts."""
    _, row_h, top = _bar_layout(paired)
    width = _HIST_LABEL_WIDTH + _HIST_PLOT_WIDTH + _HIST_VALUE_WIDTH
    return width, top + row_h * num_classes + 16


def class_histogram(
    names: Sequence[str],
    natural_counts: Sequence[int],
    sampled_counts: Sequence[float] | None = None,
    *,
    title: str = "records per class",
    sampled_label: str = "sampled per epoch",
) -> Image.Image:
    """A horizontal bar chart of class counts, largest first; optional second bar per class.

    ``natural_counts`` are drawn in blue; ``sampled_counts`` (what the chosen sampling draws
    per epoch), when given, in orange beside them, on the same scale. Names are drawn
    :func:`~datumio.errors.printable` (a line break or a control shows as its escape).
    """
    if len(names) != len(natural_counts) or (
        sampled_counts is not None and len(sampled_counts) != len(names)
    ):
        raise ValueError("names, natural_counts and sampled_counts need one entry per class")
    names = [printable(name) for name in names]
    order = sorted(range(len(names)), key=lambda c: (-natural_counts[c], names[c]))
    pair = sampled_counts is not None
    bar_h, row_h, top = _bar_layout(pair)
    label_w, plot_w = _HIST_LABEL_WIDTH, _HIST_PLOT_WIDTH
    img = Image.new("RGB", class_histogram_size(len(names), pair), _BG)
    draw = ImageDraw.Draw(img)
    font, small = _font(13), _font(11)
    draw.text((12, 8), printable(title), _INK, font=_font(16))
    legend = [("natural", _NATURAL)] + ([(printable(sampled_label), _SAMPLED)] if pair else [])
    x = 12
    for text, colour in legend:
        draw.rectangle((x, 36, x + 12, 46), fill=colour)
        draw.text((x + 17, 34), text, _MUTED, font=small)
        x += 40 + _text_width(draw, text, small)
    top_value = max([*natural_counts, *(sampled_counts or [])], default=0) or 1
    scale = plot_w / top_value
    for row, c in enumerate(order):
        y = top + row * row_h
        name = _fit(draw, names[c], font, label_w - 20)
        draw.text(
            (label_w - 10 - _text_width(draw, name, font), y + row_h // 2 - 10),
            name,
            _INK,
            font=font,
        )
        bars: list[tuple[float, tuple[int, int, int]]] = [(float(natural_counts[c]), _NATURAL)]
        if sampled_counts is not None:
            bars.append((float(sampled_counts[c]), _SAMPLED))
        for k, (value, colour) in enumerate(bars):
            y0 = y + 3 + k * bar_h
            x1 = label_w + max(round(value * scale), 1 if value else 0)
            if value:
                draw.rectangle((label_w, y0, x1, y0 + bar_h - 2), fill=colour)
            text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
            draw.text((x1 + 4, y0 - 1), text, _MUTED, font=small)
    draw.line((label_w, top - 4, label_w, top + row_h * len(names)), fill=_MUTED)
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


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


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    def cell(tag: str, k: int, v: Any) -> str:
        cls = ' class="n"' if k in numeric else ""
        return f"<{tag}{cls}>{_esc(v)}</{tag}>"

    head = "".join(cell("th", k, h) for k, h in enumerate(header)) if any(header) else ""
    body = "".join(
        "<tr>" + "".join(cell("td", k, v) for k, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _span(d: Mapping[str, Any], digits: int = 0) -> str:
    lo, hi = f"{d['min']:.{digits}f}", f"{d['max']:.{digits}f}"
    return lo if lo == hi else f"{lo}–{hi} (median {d['median']:.{digits}f})"


def _plural(count: int, one: str, many: str = "") -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _overview(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    stats, ratio = s["channel_stats"], s["imbalance_ratio"]
    rows = [
        ("format", f"{s['format']} v{s['format_version']}, {s['backend']} backend"),
        ("encoding", s["encoding"]),
        ("records", f"{s['records']:,} in {_plural(s['shards']['count'], 'shard')}"),
        ("classes", f"{s['num_classes']:,}, imbalance ratio {'n/a' if ratio is None else ratio}"),
        ("bytes on disk", human_bytes(s["bytes"]["total"])),
    ]
    for label, size in (
        ("stored size", s["image"]["stored"]),
        ("source size", s["image"]["source"]),
    ):
        if size:
            rows.append(
                (
                    label,
                    f"width {_span(size['width'])}, height {_span(size['height'])}, "
                    f"aspect w/h {_span(size['aspect'], 2)}",
                )
            )
    if stats["mean"]:
        rows.append(
            (
                f"channel mean / std ({stats['scale']})",
                " ".join(f"{v:.1f}" for v in stats["mean"])
                + " / "
                + " ".join(f"{v:.1f}" for v in stats["std"]),
            )
        )
    return rows


def _duplicates_html(dup: Mapping[str, Any] | None) -> list[str]:
    if dup is None:
        return ['<p class="muted">not checked (--no-duplicates)</p>']
    within, across = dup["within_class"], dup["across_classes"]
    parts = [
        f"<p>{_plural(dup['groups'], 'group')} of identical records: "
        f"{_plural(within['redundant_records'], 'extra copy', 'extra copies')} within a class, "
        f"{_plural(across['groups'], 'group')} across classes. "
        f'<span class="muted">({_plural(dup["records_read"], "record")} sharing a CRC32 '
        "and shape compared byte for byte)</span></p>"
    ]
    rows = [
        (e["size"], ", ".join(sorted(set(e["classes"]))), " | ".join(e["sources"]))
        for e in dup["examples"]
    ]
    if rows:
        parts.append(_table(["copies", "classes", "sources"], rows, {0}))
    return parts


def _sampling_html(sp: Mapping[str, Any]) -> list[str]:
    how = "measured" if sp["exact"] else "expected values"
    rows = []
    for c in sorted(sp["classes"], key=lambda c: (-c["records"], c["name"])):
        ranks = [r["by_class"][c["id"]] for r in sp["per_rank"]]
        coverage = "–" if c["coverage"] is None else f"{c['coverage']:.0%}"
        rows.append(
            (
                c["name"],
                c["records"],
                c["draws_per_epoch"],
                f"{c['share']:.1%}",
                f"{c['repeats_per_epoch']:.2f}",
                f"{c['seen_after_epochs']} ({coverage})",
                f"{min(ranks)}–{max(ranks)}" if min(ranks) != max(ranks) else min(ranks),
            )
        )
    head = ["class", "records", "draws/epoch", "share", "repeats/epoch", "seen", "per rank"]
    return [
        f"<h2>Sampling: {_esc(sp['mode'])}, {_plural(sp['epochs'], 'epoch')}, "
        f"world size {sp['world_size']}</h2>",
        f"<p>{sp['epoch_size']:,} draws per epoch, {sp['rank_size']:,} per rank; "
        f"{sp['fraction_seen_per_epoch']:.1%} of records seen per epoch, "
        f"{sp['fraction_seen_total']:.1%} after all epochs ({how}). <i>seen</i>: distinct "
        "records drawn in all epochs; <i>per rank</i>: draws of the class on one rank.</p>",
        _table(head, rows, {1, 2, 3, 4, 5, 6}),
        *[f'<p class="muted">note: {_esc(n)}</p>' for n in sp["notes"]],
    ]


def html_report(summary: Mapping[str, Any], images: Mapping[str, Image.Image]) -> str:
    """One self-contained HTML page: the summary as tables, then ``images`` (title -> image)
    inlined as base64 PNGs, then the full summary JSON. Nothing is fetched from elsewhere.

    Text is shown :func:`~datumio.errors.printable`, then HTML-escaped; the summary JSON at
    the end (ASCII, ``\\u`` escapes) holds the exact names.
    """
    s = summary
    rejects = s["rejects"]
    classes = sorted(s["classes"], key=lambda c: (-c["count"], c["name"]))
    parts = [
        f"<h1>datumio inspect: {_esc(s['path'])}</h1>",
        _table(["", ""], _overview(s), set()),
        "<h2>Classes</h2>",
        _table(
            ["id", "class", "records", "rejected at ingest"],
            [(c["id"], c["name"], c["count"], c["rejected"]) for c in classes],
            {0, 2, 3},
        ),
        f"<h2>Rejected at ingest: {rejects['count']:,}</h2>",
    ]
    if rejects["by_reason"]:
        parts.append(_table(["reason", "files"], list(rejects["by_reason"].items()), {1}))
        sample = [
            (r.get("path", ""), r.get("reason", ""), r.get("detail", "")) for r in rejects["sample"]
        ]
        parts.append(_table(["first files", "reason", "detail"], sample, set()))
    parts += ["<h2>Duplicates</h2>", *_duplicates_html(s["duplicates"])]
    if s.get("fields"):
        lines = [fields_header(s["fields"], s["records"])]
        lines += [line for f in s["fields"] for line in field_lines(f)]
        parts += ["<h2>Fields</h2>", f"<pre>{chr(10).join(_esc(line) for line in lines)}</pre>"]
    if s["sampling"] is not None:
        parts += _sampling_html(s["sampling"])
    for title, img in images.items():
        data = base64.b64encode(png_bytes(img)).decode("ascii")
        parts.append(f"<h2>{_esc(title)}</h2>")
        parts.append(f'<img alt="{_esc(title)}" src="data:image/png;base64,{data}">')
    parts.append("<h2>Summary JSON</h2>")
    parts.append(
        f"<details><summary>show</summary><pre>{html.escape(json.dumps(s, indent=2))}</pre>"
        "</details>"
    )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>datumio inspect: {_esc(s['path'])}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
