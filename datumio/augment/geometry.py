"""Geometric operations composed into ONE affine map, applied once with Pillow.

Coordinates are continuous: pixel ``i`` covers ``[i, i + 1)``. An :class:`Affine` maps an
*output* point to the *input* point it samples (Pillow's ``Image.transform`` convention), so
composing operations is a matrix product and the image is resampled exactly once, whatever the
number of operations. The next augmentations (zoom, rotation, shear, translation, stretch,
random resized crop) are more factors of the same product.

When the composed map has no rotation or shear (this issue's resize + centre crop + flip), it
runs as Pillow's antialiased ``resize(box=...)`` and the flip as a free negative stride;
otherwise as ``Image.transform(AFFINE)``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from datumio.augment.spec import Transform

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
#: JPEG draft (DCT) scaling is used when the input is at least this many times the output.
DRAFT_MIN_FACTOR = 2.0


class Affine:
    """A 3x3 matrix mapping output coordinates to input coordinates."""

    __slots__ = ("m",)

    def __init__(self, m: np.ndarray) -> None:
        self.m = np.asarray(m, dtype=np.float64).reshape(3, 3)

    @classmethod
    def identity(cls) -> Affine:
        return cls(np.eye(3))

    @classmethod
    def scale_translate(cls, sx: float, sy: float, tx: float, ty: float) -> Affine:
        """``input = (sx * x + tx, sy * y + ty)``."""
        return cls(np.array([[sx, 0.0, tx], [0.0, sy, ty], [0.0, 0.0, 1.0]]))

    def then(self, inner: Affine) -> Affine:
        """The map that applies ``inner`` to output coordinates first, then this map."""
        return Affine(self.m @ inner.m)

    def rescale_input(self, fx: float, fy: float) -> Affine:
        """The same map on an input that was resized by (fx, fy) (JPEG draft decoding)."""
        return Affine(np.diag([fx, fy, 1.0]) @ self.m)

    @property
    def axis_aligned(self) -> bool:
        return self.m[0, 1] == 0.0 and self.m[1, 0] == 0.0

    def input_per_output(self) -> tuple[float, float]:
        """Input pixels per output pixel along x and y (the shrink factor)."""
        return float(math.hypot(self.m[0, 0], self.m[1, 0])), float(
            math.hypot(self.m[0, 1], self.m[1, 1])
        )


def resize_crop(spec: Transform, in_w: int, in_h: int) -> Affine:
    """Resize the shorter side to ``spec.resize`` (or just enough to cover), centre-crop."""
    out_h, out_w = spec.size
    if spec.resize is not None:
        s = spec.resize / min(in_w, in_h)
    else:
        s = max(out_w / in_w, out_h / in_h)
    ox = (in_w * s - out_w) / 2.0
    oy = (in_h * s - out_h) / 2.0
    return Affine.scale_translate(1.0 / s, 1.0 / s, ox / s, oy / s)


def hflip(out_w: int) -> Affine:
    """Mirror the output horizontally: ``x -> out_w - x``."""
    return Affine.scale_translate(-1.0, 1.0, float(out_w), 0.0)


def plan(spec: Transform, in_w: int, in_h: int, rng: np.random.Generator) -> Affine:
    """Draw this sample's geometric parameters and compose them into one map.

    The draws depend only on ``rng`` and the stored (upright) size, never on the decoded
    size, so draft decoding never changes which augmentation a sample gets.
    """
    m = resize_crop(spec, in_w, in_h)
    if spec.flip > 0.0 and rng.random() < spec.flip:
        m = m.then(hflip(spec.size[1]))
    return m


def draft_request(m: Affine, in_w: int, in_h: int) -> tuple[int, int] | None:
    """The smallest (w, h) a JPEG may be draft-decoded to, or None when not worth it."""
    fx, fy = m.input_per_output()
    if min(fx, fy) < DRAFT_MIN_FACTOR:
        return None
    return max(1, math.ceil(in_w / fx)), max(1, math.ceil(in_h / fy))


def _inside(
    box: tuple[float, float, float, float], w: float, h: float
) -> tuple[float, float, float, float] | None:
    """``box`` clamped to the image when it lies inside up to rounding, else None."""
    eps = 1e-6 * max(w, h)
    if box[0] < -eps or box[1] < -eps or box[2] > w + eps or box[3] > h + eps:
        return None  # samples outside the image: the general affine path fills them
    return (max(box[0], 0.0), max(box[1], 0.0), min(box[2], w), min(box[3], h))


def warp(img: Image.Image, m: Affine, spec: Transform) -> np.ndarray:
    """Resample ``img`` once through ``m`` to ``spec.size``; HxWxC uint8 (maybe a view)."""
    out_h, out_w = spec.size
    resample = _RESAMPLE[spec.resample]
    a = m.m
    x0, x1 = a[0, 2], a[0, 0] * out_w + a[0, 2]
    y0, y1 = a[1, 2], a[1, 1] * out_h + a[1, 2]
    box = _inside(
        (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), float(img.width), float(img.height)
    )
    if m.axis_aligned and box is not None:
        if box == (0.0, 0.0, float(img.width), float(img.height)) and img.size == (out_w, out_h):
            out = img
        else:
            out = img.resize((out_w, out_h), resample, box=box)
        arr = np.asarray(out, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if x1 < x0:
            arr = arr[:, ::-1]
        if y1 < y0:
            arr = arr[::-1]
        return arr
    data = tuple(float(v) for v in m.m[:2].ravel())
    out = img.transform((out_w, out_h), Image.Transform.AFFINE, data, resample)
    arr = np.asarray(out, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr
