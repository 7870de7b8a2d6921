"""A record's fields in the ingest worker: geometric ones mapped to the stored image, all encoded.

Boxes, keypoints and masks are given in SOURCE pixels of the upright (EXIF-rotated) image,
continuous coordinates where pixel i covers [i, i+1). The stored image is the region
``crop`` of the source (all of it, or the centred crop of ``size``) scaled to the stored
size, so a point maps as ``x' = (x - crop_x0) * stored_w / crop_w`` (without a crop:
``x * stored_w / src_w``). After a crop, boxes are clipped to the stored image (and dropped
when nothing is left) and keypoints outside it get visibility 0. Masks, label images of
the source's upright size (a file, PNG bytes, an array or a recipe drawn here), are
resized with nearest neighbour.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from datumio.fields.encoding import encode
from datumio.fields.spec import FieldSpec, FieldValueError


@dataclass(frozen=True)
class Geometry:
    """How the source (upright) image became the stored one."""

    #: Upright source (width, height).
    source: tuple[int, int]
    #: Stored (width, height).
    stored: tuple[int, int]
    #: The source region (x0, y0, x1, y1) that became the stored image.
    crop: tuple[float, float, float, float]

    @property
    def identity(self) -> bool:
        return self.source == self.stored and self.crop == (0, 0, *self.source)

    @property
    def cropped(self) -> bool:
        return self.crop != (0, 0, *self.source)

    def map(self, xy: np.ndarray) -> np.ndarray:
        """Source points (..., 2) -> stored points."""
        x0, y0, x1, y1 = self.crop
        scale = np.array([self.stored[0] / (x1 - x0), self.stored[1] / (y1 - y0)])
        return (xy - np.array([x0, y0])) * scale


def fit_crop(source: tuple[int, int], out: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centred source region ``PIL.ImageOps.fit`` scales to ``out`` (both (w, h))."""
    width, height = source
    ratio = out[0] / out[1]
    if width / height == ratio:
        crop_w, crop_h = float(width), float(height)
    elif width / height > ratio:
        crop_w, crop_h = ratio * height, float(height)
    else:
        crop_w, crop_h = float(width), width / ratio
    left, top = (width - crop_w) * 0.5, (height - crop_h) * 0.5
    return (left, top, left + crop_w, top + crop_h)


def _boxes(spec: FieldSpec, boxes: np.ndarray, geo: Geometry) -> np.ndarray:
    w, h = geo.source
    outside = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > w) | (boxes[:, 3] > h)
    if bool(outside.any()):
        box = boxes[int(np.flatnonzero(outside)[0]), :4].tolist()
        raise FieldValueError(
            "box outside the image", f"field {spec.name!r}: box {box} outside the {w}x{h} image"
        )
    out = boxes.copy()
    out[:, 0:2] = geo.map(boxes[:, 0:2])
    out[:, 2:4] = geo.map(boxes[:, 2:4])
    if geo.cropped:
        sw, sh = geo.stored
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, sw)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, sh)
        out = out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]
    return out


def _keypoints(spec: FieldSpec, points: np.ndarray, geo: Geometry) -> np.ndarray:
    w, h = geo.source
    x, y, v = points[:, 0], points[:, 1], points[:, 2]
    outside = (v > 0) & ((x < 0) | (y < 0) | (x > w) | (y > h))
    if bool(outside.any()):
        point = points[int(np.flatnonzero(outside)[0])].tolist()
        raise FieldValueError(
            "keypoint outside the image",
            f"field {spec.name!r}: visible keypoint {point} outside the {w}x{h} image",
        )
    out = points.copy()
    out[:, 0:2] = geo.map(points[:, 0:2])
    sw, sh = geo.stored
    gone = (out[:, 0] < 0) | (out[:, 1] < 0) | (out[:, 0] > sw) | (out[:, 1] > sh)
    out[gone, 2] = 0
    return out


#: Pillow modes of a single-channel label image (file or PNG bytes).
_LABEL_MODES = ("L", "P", "1", "I", "I;16", "I;16B", "I;16L")


def _mask(spec: FieldSpec, value: Any, root: str, geo: Geometry) -> np.ndarray:
    """A mask at the stored image's size from any form it is given in: the path of a label
    image below ``root``, the bytes of an encoded one (PNG), a numpy label array, or a
    recipe (``render(width, height)``, :class:`datumio.ingest.samples.MaskRecipe`) drawn
    at the source's upright size. Each must give labels 0..255 of the source's size."""
    where = f"{value}: " if isinstance(value, str) else ""

    def bad(detail: str) -> FieldValueError:
        return FieldValueError("bad mask", f"field {spec.name!r}: {where}{detail}")

    if isinstance(value, str | bytes | bytearray | memoryview):
        arr = _label_image(value, root, bad)
    elif callable(getattr(value, "render", None)):
        try:
            arr = np.asarray(value.render(*geo.source))
        except FieldValueError as exc:  # a recipe that cannot be drawn (a broken RLE)
            raise bad(exc.detail) from None
    else:
        arr = np.asarray(value)
    if arr.ndim != 2 or arr.dtype.kind not in "biu":
        raise bad(f"not a label image (an array of {arr.dtype} with shape {arr.shape})")
    if (arr.shape[1], arr.shape[0]) != geo.source:
        w, h = geo.source
        raise bad(f"{arr.shape[1]}x{arr.shape[0]}, the image is {w}x{h}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
        raise bad("label values outside 0..255")
    labels = arr.astype(np.uint8)
    if geo.identity:
        return labels
    nearest = Image.Resampling.NEAREST
    resized = Image.fromarray(labels, "L").resize(geo.stored, nearest, box=geo.crop)
    return np.asarray(resized, dtype=np.uint8)


def _label_image(
    value: str | bytes | bytearray | memoryview, root: str, bad: Callable[[str], FieldValueError]
) -> np.ndarray:
    """The pixels of a label image file (a path below ``root``) or of its encoded bytes."""
    source = os.path.join(root, value) if isinstance(value, str) else io.BytesIO(value)
    try:
        with Image.open(source) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise bad(f"unreadable ({type(exc).__name__}: {exc})") from None
    if mode not in _LABEL_MODES:
        raise bad(f"not a single-channel label image (mode {mode})")
    return arr


def encode_fields(
    specs: tuple[FieldSpec, ...], values: Mapping[str, Any], geo: Geometry, root: str
) -> list[bytes | None]:
    """Each field's stored bytes (None where the record lacks it), in ``specs`` order.

    Raises:
        FieldValueError: a box or visible keypoint outside the source image, a mask that is
            unreadable, of another size or not a label image.
    """
    out: list[bytes | None] = []
    for spec in specs:
        value = values.get(spec.name)
        if value is None:
            out.append(None)
            continue
        if spec.type == "boxes":
            value = _boxes(spec, np.asarray(value, dtype=np.float64), geo)
        elif spec.type == "keypoints":
            value = _keypoints(spec, np.asarray(value, dtype=np.float64).reshape(-1, 3), geo)
        elif spec.type == "mask":
            value = _mask(spec, value, root, geo)
        out.append(encode(spec, value))
    return out
