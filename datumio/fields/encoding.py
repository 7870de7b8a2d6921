"""Field values <-> the bytes a shard stores, and the per-record CRC32 over them.

Every encoding is raw little-endian values of the field's dtype (``docs/format.md``,
section Fields), except masks, which are PNG files of a mode ``L`` image (lossless and
far smaller than raw). Nothing is pickled. Decoding follows the conventions of
``datumio.augment``: boxes float32 (k, 4) in stored-image pixels with int32 classes (k,),
keypoints float32 (k, 3), masks uint8 (H, W).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from datumio.fields.spec import FieldSpec, FieldValueError

_LENGTH = struct.Struct("<Q")
_CORRUPT = "corrupt field"


class Boxes(NamedTuple):
    """A boxes field: ``boxes`` float32 (k, 4) ``[x0, y0, x1, y1]`` in stored-image pixels
    (pixel i covers [i, i+1)), ``classes`` int32 (k,) or None for a field without classes."""

    boxes: np.ndarray
    classes: np.ndarray | None


def encode(spec: FieldSpec, value: Any) -> bytes:
    """The stored bytes of a canonical value (boxes and keypoints already in stored pixels,
    a mask as a uint8 (H, W) array, a multilabel field as ids)."""
    kind = spec.type
    if kind == "int":
        return np.asarray(value, dtype="<i8").tobytes()
    if kind == "float":
        return np.asarray(value, dtype="<f8").tobytes()
    if kind == "text":
        return str(value).encode("utf-8")
    if kind == "bytes":
        return bytes(value)
    if kind == "multilabel":
        return np.unique(np.asarray(value, dtype=np.int64)).astype("<i4").tobytes()
    if kind == "array":
        return np.ascontiguousarray(value, dtype=spec.dtype).tobytes()
    if kind == "keypoints":
        return np.ascontiguousarray(value, dtype="<f4").reshape(-1, 3).tobytes()
    if kind == "boxes":
        arr = np.asarray(value, dtype=np.float64).reshape(-1, spec.length or 4)
        out = np.ascontiguousarray(arr[:, :4], dtype="<f4").tobytes()
        if spec.length == 5:
            out += np.rint(arr[:, 4]).astype("<i4").tobytes()
        return out
    buf = io.BytesIO()  # mask
    Image.fromarray(np.ascontiguousarray(value, dtype=np.uint8), "L").save(
        buf, format="PNG", compress_level=6
    )
    return buf.getvalue()


def _values(spec: FieldSpec, data: bytes, dtype: str, per: int = 1) -> np.ndarray:
    size = np.dtype(dtype).itemsize * per
    if len(data) % size:
        raise FieldValueError(
            _CORRUPT, f"field {spec.name!r}: {len(data)} bytes is not a whole number of values"
        )
    return np.frombuffer(data, dtype=dtype).astype(np.dtype(dtype).newbyteorder("="))


def decode(spec: FieldSpec, data: bytes) -> Any:
    """The value of stored bytes: int, float, str, bytes, a numpy array or :class:`Boxes`.

    Raises:
        FieldValueError: the bytes do not hold a value of the field (reason ``corrupt field``).
    """
    kind = spec.type
    if kind in ("int", "float"):
        if len(data) != 8:
            raise FieldValueError(_CORRUPT, f"field {spec.name!r}: {len(data)} bytes, not 8")
        return (int if kind == "int" else float)(_values(spec, data, spec.dtype)[0])
    if kind == "text":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FieldValueError(_CORRUPT, f"field {spec.name!r}: {exc}") from None
    if kind == "bytes":
        return bytes(data)
    if kind in ("multilabel", "array"):
        arr = _values(spec, data, spec.dtype)
        if kind == "array" and spec.length is not None and arr.size != spec.length:
            raise FieldValueError(
                _CORRUPT, f"field {spec.name!r}: {arr.size} values, the field has {spec.length}"
            )
        return arr
    if kind == "keypoints":
        return _values(spec, data, "<f4", 3).reshape(-1, 3)
    if kind == "boxes":
        classes = spec.length == 5
        rows = _values(spec, data, "<f4", 5 if classes else 4)
        k = rows.size // (5 if classes else 4)
        boxes = np.frombuffer(data[: 16 * k], dtype="<f4").astype(np.float32).reshape(k, 4)
        ids = np.frombuffer(data[16 * k :], dtype="<i4").astype(np.int32) if classes else None
        return Boxes(boxes, ids)
    return decode_mask(spec, data)


def decode_mask(spec: FieldSpec, data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG" or img.mode != "L":
                raise FieldValueError(
                    _CORRUPT, f"field {spec.name!r}: not a mode L PNG ({img.format} {img.mode})"
                )
            return np.asarray(img, dtype=np.uint8)
    except FieldValueError:
        raise
    except Exception as exc:  # Pillow raises many types on damaged bytes
        detail = f"field {spec.name!r}: {type(exc).__name__}: {exc}"
        raise FieldValueError(_CORRUPT, detail) from None


def items_of(spec: FieldSpec, data: bytes) -> int:
    """How many values stored bytes hold (boxes, keypoints, ids, array elements; 1 else)."""
    if spec.type in ("multilabel", "array"):
        return len(data) // spec.numpy_dtype.itemsize
    if spec.type == "boxes":
        return len(data) // (20 if spec.length == 5 else 16)
    if spec.type == "keypoints":
        return len(data) // 12
    return 1


def fields_crc32(encodings: Sequence[bytes | None]) -> int:
    """CRC32 of one record's fields, in manifest order: per field ``b"\\x00"`` when the
    record lacks it, else ``b"\\x01"``, the length as ``<u8`` and the bytes."""
    crc = 0
    for data in encodings:
        if data is None:
            crc = zlib.crc32(b"\x00", crc)
        else:
            crc = zlib.crc32(_LENGTH.pack(len(data)), zlib.crc32(b"\x01", crc))
            crc = zlib.crc32(data, crc)
    return crc
