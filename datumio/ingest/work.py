"""The per-file work of ingest, run in worker processes: read, decode, check, resize, encode.

Everything here is a top-level function of picklable arguments, so any
``concurrent.futures.Executor`` (local processes, Dask, ...) can run it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from datumio import codec
from datumio._process import die_with_parent
from datumio.errors import DecodeError
from datumio.fields.spec import FieldSpec, FieldValueError
from datumio.ingest.field_work import Geometry, encode_fields, fit_crop

_RESAMPLE = Image.Resampling.BICUBIC


@dataclass(frozen=True)
class WorkSpec:
    """The parts of the ingest options a worker needs (small, picklable)."""

    root: str
    encoding: str
    quality: int
    max_side: int | None
    short_side: int | None
    #: (height, width), as ``IngestOptions.size``.
    size: tuple[int, int] | None
    gray: bool
    background: tuple[int, int, int]
    max_pixels: int
    min_side: int
    #: The records' fields, in storage order.
    fields: tuple[FieldSpec, ...] = ()
    #: False: the items are rows of a table (a label and fields, no file to read).
    images: bool = True


@dataclass(frozen=True)
class Accepted:
    """A file that became a record."""

    payload: bytes
    crc: int
    shape: tuple[int, int, int]
    source_size: tuple[int, int]
    histogram: np.ndarray  # uint64 [C, 256] counts of the stored pixels
    source_format: str
    #: Stored bytes of each field of ``WorkSpec.fields`` (None: the record lacks it).
    fields: tuple[bytes | None, ...] = ()


@dataclass(frozen=True)
class Rejected:
    """A file that did not."""

    reason: str
    detail: str


Outcome = Accepted | Rejected


def init_worker() -> None:
    """Worker initialiser: die with the parent, leave Ctrl-C to the parent (a forked worker
    inherits the tool's handlers: SIGTERM goes back to its default, ending the worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()


def process_file(
    rel: str,
    spec: WorkSpec,
    values: Mapping[str, Any] | None = None,
    data: bytes | np.ndarray | None = None,
) -> Outcome:
    """Read and fully decode one file (or the image ``data`` given in its place: encoded
    bytes, or a uint8 array), then produce its stored payload (and the bytes of its field
    ``values``, mapped to the stored image)."""
    if data is None:
        path = os.path.join(spec.root, rel)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return Rejected("unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
    try:
        outcome, geometry = _convert(data, spec)
        if spec.fields and isinstance(outcome, Accepted) and geometry is not None:
            fields = encode_fields(spec.fields, values or {}, geometry, spec.root)
            outcome = dataclasses.replace(outcome, fields=tuple(fields))
        return outcome
    except FieldValueError as exc:
        return Rejected(exc.reason, exc.detail)
    except DecodeError as exc:
        return Rejected(exc.reason, exc.detail)
    except MemoryError:
        return Rejected("out of memory", "the decoded image does not fit in memory")
    except Exception as exc:  # a decoder bug on one file must not stop the run
        return Rejected("decoder error", f"{type(exc).__name__}: {exc}")


def process_row(spec: WorkSpec, values: Mapping[str, Any] | None) -> Outcome:
    """A table row (no image): an empty payload of shape (0, 0, 0) and its fields' bytes."""
    try:
        fields = encode_fields(spec.fields, values or {}, _NO_GEOMETRY, spec.root)
    except FieldValueError as exc:
        return Rejected(exc.reason, exc.detail)
    return Accepted(
        payload=b"",
        crc=zlib.crc32(b""),
        shape=(0, 0, 0),
        source_size=(0, 0),
        histogram=np.zeros((0, 256), dtype=np.uint64),
        source_format="none",
        fields=tuple(fields),
    )


#: Never used to map anything: a table has no geometric field (refused when listing).
_NO_GEOMETRY = Geometry(source=(0, 0), stored=(0, 0), crop=(0.0, 0.0, 0.0, 0.0))


def _target_scale(width: int, height: int, spec: WorkSpec) -> float | None:
    """Scale factor the resize options ask for (upright size), or None for no resize."""
    if spec.max_side is not None:
        longest = max(width, height)
        return spec.max_side / longest if longest > spec.max_side else None
    if spec.short_side is not None:
        return spec.short_side / min(width, height)
    if spec.size is not None:
        out_height, out_width = spec.size
        return max(out_width / width, out_height / height)
    return None


def _open(data: bytes | np.ndarray, spec: WorkSpec) -> Image.Image:
    """The image of encoded bytes (opened lazily) or of a uint8 array (HxW, HxWxC)."""
    if not isinstance(data, np.ndarray):
        return codec.open_image(data, spec.max_pixels)
    array = data[:, :, 0] if data.ndim == 3 and data.shape[2] == 1 else data
    height, width = array.shape[:2]
    if height < 1 or width < 1:
        raise DecodeError("empty image", f"array of shape {data.shape}")
    if height * width > spec.max_pixels:
        raise DecodeError(
            "decompression bomb",
            f"{width}x{height} = {width * height} pixels > max_pixels={spec.max_pixels}",
        )
    return Image.fromarray(np.ascontiguousarray(array))


def _convert(data: bytes | np.ndarray, spec: WorkSpec) -> tuple[Outcome, Geometry | None]:
    img = _open(data, spec)
    array = isinstance(data, np.ndarray)
    source_format = "array" if array else img.format or "unknown"
    stored_w, stored_h = img.size
    upright = (stored_h, stored_w) if codec.exif_orientation(img) in codec.SWAPS_AXES else img.size
    scale = _target_scale(upright[0], upright[1], spec)
    draft = None
    if scale is not None and scale <= 0.5 and spec.encoding != "keep":
        draft = (math.ceil(stored_w * scale), math.ceil(stored_h * scale))
    img = codec.normalise(img, gray=spec.gray, background=spec.background, draft_size=draft)
    if min(img.size) < spec.min_side:
        too_small = f"{img.size[0]}x{img.size[1]} < min_side={spec.min_side}"
        return Rejected("too small", too_small), None
    img = _resize(img, spec, scale, upright)
    cropped = scale is not None and spec.size is not None
    whole = (0.0, 0.0, float(upright[0]), float(upright[1]))
    crop = fit_crop(upright, img.size) if cropped else whole
    geometry = Geometry(source=upright, stored=img.size, crop=crop)
    if spec.encoding == "keep":
        # An array has no original bytes: it is kept losslessly, as PNG.
        payload = codec.encode(img, "png") if array else bytes(data)
    else:
        payload = codec.encode(img, spec.encoding, spec.quality)
    channels = 1 if img.mode == "L" else 3
    hist = np.asarray(img.histogram(), dtype=np.uint64).reshape(channels, 256)
    return Accepted(
        payload=payload,
        crc=zlib.crc32(payload),
        shape=(img.size[1], img.size[0], channels),
        source_size=upright,
        histogram=hist,
        source_format=source_format,
    ), geometry


def _resize(
    img: Image.Image, spec: WorkSpec, scale: float | None, upright: tuple[int, int]
) -> Image.Image:
    if scale is None:
        return img
    if spec.size is not None:
        out_height, out_width = spec.size  # Pillow takes (width, height)
        return ImageOps.fit(img, (out_width, out_height), method=_RESAMPLE, centering=(0.5, 0.5))
    new = (max(1, round(upright[0] * scale)), max(1, round(upright[1] * scale)))
    if new == img.size:
        return img
    return img.resize(new, _RESAMPLE, reducing_gap=3.0)
