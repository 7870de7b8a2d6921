"""Field values as a labels file gives them -> checked values ready to store.

:func:`infer_type` names the type of a JSON (or Parquet) value, :func:`coerce` turns one
raw value into the field's canonical value or raises :class:`FieldValueError` with the
reject reason. A CSV/TSV cell is text: numbers are parsed, lists are ``;``-separated
(multilabel names, array numbers) and boxes and keypoints are JSON text
(``[[1, 2, 30, 40]]``). ``None`` (JSON null, an empty cell, a missing key) is no value:
the record lacks the field.

Canonical values: int, float, str (text; a mask's path), bytes, a list of names or of ids
(multilabel, before the vocabulary turns names into ids), and float64 arrays (k, 4|5) for
boxes, (k, 3) for keypoints, an array of the field's dtype for arrays.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

import numpy as np

from datumio.fields.spec import FieldSpec, FieldValueError

_INTEGER = re.compile(r"\s*[-+]?[0-9]+\s*")
_INT64 = (-(2**63), 2**63 - 1)
_BAD = "bad field value"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def infer_type(value: Any) -> str | None:
    """The declaration a JSON value implies (``int``, ``boxes`` ...), or None when it says
    nothing (null, an empty list) or fits no type."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bytes):
        return "bytes"
    if not isinstance(value, list | tuple) or not value:
        return None
    if all(isinstance(v, str) for v in value):
        return "multilabel"
    if all(_is_number(v) for v in value):
        return "array"
    if all(isinstance(v, list | tuple) and all(_is_number(x) for x in v) for v in value):
        widths = {len(v) for v in value}
        if widths <= {4, 5}:
            return "boxes"
        if widths == {3}:
            return "keypoints"
    return None


def merge_types(a: str, b: str) -> str | None:
    """The type two values of one column share (int and float: float), or None."""
    if a == b:
        return a
    if {a, b} == {"int", "float"}:
        return "float"
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong(spec: FieldSpec, value: Any, expected: str) -> FieldValueError:
    return FieldValueError(_BAD, f"field {spec.name!r}: expected {expected}, got {_show(value)}")


def coerce(spec: FieldSpec, raw: Any, text: bool) -> Any:
    """The canonical value of ``raw`` for ``spec`` (None: the record lacks the field).

    Args:
        spec: the field.
        raw: a JSON/Parquet value, or a CSV cell (``text=True``).
        text: ``raw`` is a CSV/TSV cell.

    Raises:
        FieldValueError: the value does not fit the field (reason and detail for the reject).
    """
    if raw is None or (text and isinstance(raw, str) and not raw.strip()):
        return None
    kind = spec.type
    if kind == "int":
        return _int(spec, raw, text)
    if kind == "float":
        return _float(spec, raw, text)
    if kind in ("text", "mask"):
        if not isinstance(raw, str) or (kind == "mask" and not raw.strip()):
            raise _wrong(spec, raw, "a path" if kind == "mask" else "a text")
        return raw.strip() if kind == "mask" else raw
    if kind == "bytes":
        return _bytes(spec, raw)
    if kind == "multilabel":
        return _multilabel(spec, raw, text)
    if kind == "array":
        return _array(spec, raw, text)
    return _points(spec, raw, text)


def _int(spec: FieldSpec, raw: Any, text: bool) -> int:
    if text and isinstance(raw, str) and _INTEGER.fullmatch(raw):
        value = int(raw)
    elif not text and isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise _wrong(spec, raw, "an integer")
    if not _INT64[0] <= value <= _INT64[1]:
        raise FieldValueError(_BAD, f"field {spec.name!r}: {value} does not fit int64")
    return value


def _float(spec: FieldSpec, raw: Any, text: bool) -> float:
    if text and isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise _wrong(spec, raw, "a number") from None
    if not _is_number(raw):
        raise _wrong(spec, raw, "a number")
    return float(raw)


def _bytes(spec: FieldSpec, raw: Any) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if not isinstance(raw, str):
        raise _wrong(spec, raw, "base64 text")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _wrong(spec, raw, "base64 text") from None


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(";") if part.strip()]


def _multilabel(spec: FieldSpec, raw: Any, text: bool) -> list[str] | list[int]:
    if text and isinstance(raw, str):
        return _split(raw)
    if isinstance(raw, list | tuple):
        if all(isinstance(v, str) for v in raw):
            return list(raw)
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw):
            return [int(v) for v in raw]
    raise _wrong(spec, raw, "a list of class names, or of ids >= 0 (not both)")


def _array(spec: FieldSpec, raw: Any, text: bool) -> np.ndarray:
    values: Any = raw
    if text and isinstance(raw, str):
        parts = raw.replace(";", " ").split()
        try:
            values = [int(p) if _INTEGER.fullmatch(p) else float(p) for p in parts]
        except ValueError:
            raise _wrong(spec, raw, "numbers separated by ';'") from None
    if not isinstance(values, list | tuple) or not all(_is_number(v) for v in values):
        raise _wrong(spec, raw, "a list of numbers")
    if spec.length is not None and len(values) != spec.length:
        raise FieldValueError(
            _BAD, f"field {spec.name!r}: {len(values)} numbers, the field has {spec.length}"
        )
    dtype = spec.numpy_dtype
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not all(isinstance(v, int) or float(v).is_integer() for v in values):
            raise _wrong(spec, raw, f"whole numbers for {dtype.name}")
        if any(not info.min <= int(v) <= info.max for v in values):
            raise FieldValueError(
                _BAD, f"field {spec.name!r}: a value outside {dtype.name}'s {info.min}..{info.max}"
            )
        return np.asarray([int(v) for v in values], dtype=dtype)
    arr = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = arr.astype(dtype)
    if bool(np.any(np.isfinite(arr) & ~np.isfinite(out))):
        raise FieldValueError(_BAD, f"field {spec.name!r}: a value too large for {dtype.name}")
    return out


def _points(spec: FieldSpec, raw: Any, text: bool) -> np.ndarray:
    """Boxes (k, 4|5) or keypoints (k, 3) as float64, checked."""
    boxes = spec.type == "boxes"
    what = "a list of [x0, y0, x1, y1(, class)]" if boxes else "a list of [x, y, visibility]"
    value = raw
    if text and isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise _wrong(spec, raw, f"{what} as JSON") from None
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, list | tuple) and all(_is_number(x) for x in v) for v in value
    ):
        raise _wrong(spec, raw, what)
    widths = {len(v) for v in value}
    width = spec.length if spec.length is not None else (min(widths) if widths else 4)
    if widths - {width} or width not in ((4, 5) if boxes else (3,)):
        reason = "bad box" if boxes else _BAD
        raise FieldValueError(
            reason, f"field {spec.name!r}: entries of {sorted(widths)} numbers, expected {width}"
        )
    arr = np.asarray(value, dtype=np.float64).reshape(-1, width)
    if not bool(np.isfinite(arr).all()):
        raise FieldValueError("bad box" if boxes else _BAD, f"field {spec.name!r}: not finite")
    if boxes:
        for row in arr:
            if row[2] <= row[0] or row[3] <= row[1]:
                raise FieldValueError(
                    "bad box",
                    f"field {spec.name!r}: box {row[:4].tolist()} has x1 <= x0 or y1 <= y0",
                )
            if width == 5 and (row[4] < 0 or not math.isclose(row[4], round(row[4]))):
                raise FieldValueError(
                    "bad box", f"field {spec.name!r}: class {row[4]} is not an id >= 0"
                )
    elif bool((arr[:, 2] < 0).any()):
        raise FieldValueError(_BAD, f"field {spec.name!r}: a keypoint visibility below 0")
    return arr
