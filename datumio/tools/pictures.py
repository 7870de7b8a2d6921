"""Pictures of a dataset, drawn with Pillow alone: a contact sheet and a class histogram
(:mod:`datumio.tools.inspect_html` puts them in a page).

No plotting library: the charts are rectangles and text on a Pillow canvas, in DejaVu Sans
(or another common TrueType font) when the system has one, else Pillow's bundled font.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from datumio.errors import DatumioError, printable
from datumio.shards.dataset import Dataset
from datumio.tools.annotate import draw as draw_annotations
from datumio.tools.annotate import has_annotations, record_annotations

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
