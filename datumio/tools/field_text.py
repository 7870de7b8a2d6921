"""The text form of field statistics and of one record's fields (``datumio inspect``)."""

from __future__ import annotations

from collections.abc import Sequence

from datumio.inspect.field_stats import (
    BoxValues,
    FieldStats,
    FloatValues,
    IntValues,
    KeypointValues,
    LabelValues,
    LengthValues,
    MaskValues,
)
from datumio.inspect.record import RecordInfo
from datumio.tools.render import json_text, plural

#: Characters of one line at most (long lists and values are cut).
_WIDTH = 160
#: Mask label values shown, largest share first.
_MASK_VALUES = 10


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pairs(pairs: Sequence[tuple[object, object]], sep: str = " ") -> str:
    return ", ".join(f"{key}{sep}{n}" for key, n in pairs)


def _cut(text: str) -> str:
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def fields_header(fields: Sequence[FieldStats], num_records: int) -> str:
    """``fields: K (...)``: where the statistics come from, and whether records were sampled."""
    read = [f.records_read + f.unreadable for f in fields if f.counted_from == "records"]
    parts = []
    if any(f.counted_from == "index" for f in fields):
        parts.append("int and multilabel fields from the global index")
    if read:
        n = max(read)
        if n < num_records:
            parts.append(f"others from a sample of {n:,} of {num_records:,} records")
        else:
            parts.append(f"others from all {num_records:,} records")
    return f"fields: {len(fields)}" + (f" ({'; '.join(parts)})" if parts else "")


def _value_text(f: FieldStats) -> list[str]:
    """What one field's values add to its line (nothing when no record had the field)."""
    v = f.values
    if isinstance(v, IntValues):
        more = [f"{v.distinct:,} distinct, {v.min}..{v.max}"] if v.distinct else []
        return more + (["top: " + _pairs(v.top)] if v.top else [])
    if isinstance(v, LabelValues):
        top = ["top: " + _pairs(v.top)] if v.top else []
        return [*top, f"{plural(v.no_labels, 'record')} with none"]
    if not f.seen:
        return []
    if isinstance(v, FloatValues):  # an ArrayValues too
        spans = [f"min {_g(v.min)}, mean {_g(v.mean)}, max {_g(v.max)}"]
        return spans + ([f"{v.non_finite:,} not finite"] if v.non_finite else [])
    if isinstance(v, LengthValues):
        unit = "characters" if f.type == "text" else "bytes"
        span = v.length
        return [
            f"length mean {span.mean or 0:.1f} {unit} ({span.min or 0:.0f}-{span.max or 0:.0f})"
        ]
    if isinstance(v, KeypointValues):
        shown = ", ".join(f"v={key}: {n}" for key, n in v.visibility)
        return [f"{plural(v.points, 'point')}, {v.visible_fraction:.1%} visible ({shown})"]
    if isinstance(v, BoxValues):
        return [plural(v.boxes, "box", "boxes")]
    return []


def _mask_text(v: MaskValues) -> list[str]:
    if not v.pixels:
        return []
    shares = sorted(v.pixel_share, key=lambda p: (-p[1], p[0]))[:_MASK_VALUES]
    return ["pixels: " + ", ".join(f"{value} {share:.1%}" for value, share in shares)]


def field_lines(f: FieldStats) -> list[str]:
    """One field's statistics: a line, and indented lines for boxes."""
    head = f"  {f.name:<14} {f.type:<10} {plural(f.records, 'record')}"
    if f.per_record is not None:
        head += f", {f.per_record:g} per record"
    v = f.values
    more = _mask_text(v) if isinstance(v, MaskValues) else _value_text(f)
    extra = _box_lines(v) if isinstance(v, BoxValues) and f.seen else []
    if f.unreadable:
        more.append(f"{plural(f.unreadable, 'record')} unreadable")
    return [_cut(head + ("; " + "; ".join(more) if more else "")), *extra]


def _box_lines(v: BoxValues) -> list[str]:
    per, area = v.per_image, v.area
    hist = per.histogram
    last = max((k for k, (_, n) in enumerate(hist) if n), default=0)
    lines = [
        f"{'':19}per image  mean {per.mean or 0:.2f}, max {per.max}; "
        + _pairs(hist[: last + 1], ": "),
        f"{'':19}size       mean {area.mean or 0:.1%} of the image; "
        + _pairs(area.histogram, ": "),
    ]
    if v.classes:
        lines.append(f"{'':19}classes    " + _pairs(v.classes, ": "))
    return [_cut(line) for line in lines]


def record_field_lines(info: RecordInfo) -> list[str]:
    """The ``fields`` lines of ``datumio inspect --record N``."""
    if info.fields_error is not None:
        return [_cut(f"  fields    cannot be read: {info.fields_error}")]
    if not info.fields:
        return []
    lines = ["  fields"]
    for name, value in info.fields.items():
        shown = "(none)" if value is None else json_text(value)
        lines.append(_cut(f"    {name:<14} {shown}"))
    return lines
