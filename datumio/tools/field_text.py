"""The text form of field statistics and of one record's fields (``datumio inspect``)."""

from __future__ import annotations

from typing import Any

from datumio.tools.render import json_text

#: Characters of one line at most (long lists and values are cut).
_WIDTH = 160
#: Mask label values shown, largest share first.
_MASK_VALUES = 10


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pairs(pairs: list[list[Any]], sep: str = " ") -> str:
    return ", ".join(f"{key}{sep}{n}" for key, n in pairs)


def _cut(text: str) -> str:
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def fields_header(fields: list[dict[str, Any]], num_records: int) -> str:
    """``fields: K (...)``: where the statistics come from, and whether records were sampled."""
    read = [f["records_read"] + f.get("unreadable", 0) for f in fields if f["from"] == "records"]
    parts = []
    if any(f["from"] == "index" for f in fields):
        parts.append("int and multilabel fields from the global index")
    if read:
        n = max(read)
        if n < num_records:
            parts.append(f"others from a sample of {n:,} of {num_records:,} records")
        else:
            parts.append(f"others from all {num_records:,} records")
    return f"fields: {len(fields)}" + (f" ({'; '.join(parts)})" if parts else "")


def field_lines(f: dict[str, Any]) -> list[str]:
    """One field's statistics: a line, and indented lines for boxes."""
    head = f"  {f['name']:<14} {f['type']:<10} {_count(f['records'], 'record')}"
    if "per_record" in f:
        head += f", {f['per_record']:g} per record"
    kind, more, extra = f["type"], [], []
    if kind == "int" and f["distinct"]:
        more.append(f"{f['distinct']:,} distinct, {f['min']}..{f['max']}")
    if kind in ("int", "multilabel") and f["top"]:
        more.append("top: " + _pairs(f["top"]))
    if kind == "multilabel":
        more.append(f"{_count(f['no_labels'], 'record')} with none")
    if kind in ("float", "array") and f["seen"]:
        more.append(f"min {_g(f['min'])}, mean {_g(f['mean'])}, max {_g(f['max'])}")
        if f.get("non_finite"):
            more.append(f"{f['non_finite']:,} not finite")
    if kind in ("text", "bytes") and f["seen"]:
        span = f["length"]
        unit = "characters" if kind == "text" else "bytes"
        more.append(f"length mean {span['mean']:.1f} {unit} ({span['min']:.0f}-{span['max']:.0f})")
    if kind == "keypoints" and f["seen"]:
        v = ", ".join(f"v={key}: {n}" for key, n in f["visibility"])
        more.append(f"{_count(f['points'], 'point')}, {f['visible_fraction']:.1%} visible ({v})")
    if kind == "mask" and f["pixels"]:
        shares = sorted(f["pixel_share"], key=lambda p: (-p[1], p[0]))[:_MASK_VALUES]
        more.append("pixels: " + ", ".join(f"{v} {share:.1%}" for v, share in shares))
    if kind == "boxes" and f["seen"]:
        more.append(_count(f["boxes"], "box", "boxes"))
        extra = _box_lines(f)
    if f.get("unreadable"):
        more.append(f"{_count(f['unreadable'], 'record')} unreadable")
    return [_cut(head + ("; " + "; ".join(more) if more else "")), *extra]


def _box_lines(f: dict[str, Any]) -> list[str]:
    per, area = f["per_image"], f["area"]
    hist = per["histogram"]
    last = max((k for k, (_, n) in enumerate(hist) if n), default=0)
    lines = [
        f"{'':19}per image  mean {per['mean']:.2f}, max {per['max']}; "
        + _pairs(hist[: last + 1], ": "),
        f"{'':19}size       mean {area['mean'] or 0:.1%} of the image; "
        + _pairs(area["histogram"], ": "),
    ]
    if f.get("classes"):
        lines.append(f"{'':19}classes    " + _pairs(f["classes"], ": "))
    return [_cut(line) for line in lines]


def record_field_lines(info: dict[str, Any]) -> list[str]:
    """The ``fields`` lines of ``datumio inspect --record N``."""
    if "fields_error" in info:
        return [_cut(f"  fields    cannot be read: {info['fields_error']}")]
    fields = info.get("fields")
    if not fields:
        return []
    lines = ["  fields"]
    for name, value in fields.items():
        shown = "(none)" if value is None else json_text(value)
        lines.append(_cut(f"    {name:<14} {shown}"))
    return lines
