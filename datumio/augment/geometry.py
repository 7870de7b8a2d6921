"""Geometric operations composed into ONE affine map, applied once (see :mod:`.warp`).

Coordinates are continuous: pixel ``i`` covers ``[i, i + 1)``. An :class:`Affine` maps an
*output* point to the *input* point it samples (Pillow's ``Image.transform`` convention), so
composing operations is a matrix product and the image is resampled exactly once, whatever the
number of operations.

The map of one sample is ``base @ augment``:

* ``base`` maps the *view* (an image of the output size, in output pixels) into the stored
  image: resize the shorter side and centre-crop (default), the stored scale centred
  (``keep_scale``, the original datumio's ``output_shape``), or a random resized crop;
* ``augment`` is the original datumio's augmentation about the view's centre ``c``:
  ``input = c + A F (q - c) + t`` with ``A = R(rotation) Shear(shear) diag(1/zoom_x,
  1/zoom_y)``, ``F`` the flips and ``t = (-tx, ty)`` (content moves right by ``tx``, up by
  ``ty``), exactly the matrix the original built with scikit-image (in its pixel-centre
  coordinates), so ``transform_image`` keeps its pixels where it is sampled the same way.
"""

from __future__ import annotations

import math

import numpy as np

from datumio.augment.params import AffineParams, draw_affine, random_resized_crop
from datumio.augment.spec import Transform

#: JPEG draft (DCT) scaling is used when the input is at least this many times the output.
DRAFT_MIN_FACTOR = 2.0


class Affine:
    """A 3x3 matrix mapping output coordinates to input coordinates."""

    __slots__ = ("m",)

    def __init__(self, m: np.ndarray) -> None:
        self.m = np.asarray(m, dtype=np.float64).reshape(3, 3)

    def __repr__(self) -> str:
        return f"Affine({self.m[:2].round(6).tolist()})"

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
        """The same map on an input that was resized by (fx, fy) (draft decoding, reduce)."""
        return Affine(np.diag([fx, fy, 1.0]) @ self.m)

    def shift_input(self, dx: float, dy: float) -> Affine:
        """The same map on an input whose origin moved to (-dx, -dy) (crop and padding)."""
        return Affine(Affine.scale_translate(1.0, 1.0, dx, dy).m @ self.m)

    @property
    def axis_aligned(self) -> bool:
        return self.m[0, 1] == 0.0 and self.m[1, 0] == 0.0

    def input_per_output(self) -> tuple[float, float]:
        """Input pixels per output pixel along output x and y (the shrink factor)."""
        return float(math.hypot(self.m[0, 0], self.m[1, 0])), float(
            math.hypot(self.m[0, 1], self.m[1, 1])
        )

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Input coordinates of output ``points`` (N x 2, x then y)."""
        pts = np.asarray(points, dtype=np.float64)
        return pts @ self.m[:2, :2].T + self.m[:2, 2]

    @property
    def data(self) -> tuple[float, float, float, float, float, float]:
        """The six coefficients Pillow's ``Image.transform(AFFINE)`` takes."""
        a, b, c, d, e, f = (float(v) for v in self.m[:2].ravel())
        return a, b, c, d, e, f


def augment(out_w: float, out_h: float, p: AffineParams) -> Affine:
    """The original datumio's augmentation of a view of out_w x out_h about its centre."""
    zx, zy = p.zoom
    r, s = math.radians(p.rotation), math.radians(p.shear)
    rot = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    shear = np.array([[1.0, -math.sin(s)], [0.0, math.cos(s)]])
    flips = np.diag([-1.0 if p.flip_lr else 1.0, -1.0 if p.flip_ud else 1.0])
    a = rot @ shear @ np.diag([1.0 / zx, 1.0 / zy]) @ flips
    c = np.array([out_w / 2.0, out_h / 2.0])
    t = np.array([-p.translation[0], p.translation[1]])
    m = np.eye(3)
    m[:2, :2] = a
    m[:2, 2] = c + t - a @ c
    return Affine(m)


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


def keep_scale(out_w: int, out_h: int, in_w: int, in_h: int) -> Affine:
    """Centre the output on the input at the input's own scale."""
    return Affine.scale_translate(1.0, 1.0, (in_w - out_w) / 2.0, (in_h - out_h) / 2.0)


def hflip(out_w: int) -> Affine:
    """Mirror the output horizontally: ``x -> out_w - x``."""
    return Affine.scale_translate(-1.0, 1.0, float(out_w), 0.0)


def crop_view(box: tuple[int, int, int, int], out_w: int, out_h: int) -> Affine:
    """The output view of a (left, top, w, h) box of the input (a random resized crop)."""
    left, top, w, h = box
    return Affine.scale_translate(w / out_w, h / out_h, float(left), float(top))


def base_view(spec: Transform, in_w: int, in_h: int, rng: np.random.Generator) -> Affine:
    """The map from the output-sized view into the stored image (before augmentation)."""
    out_h, out_w = spec.size
    if spec.crop_scale is not None:
        left, top, w, h = random_resized_crop(rng, in_w, in_h, spec.crop_scale, spec.crop_ratio)
        return crop_view((left, top, w, h), out_w, out_h)
    if spec.keep_scale:
        return keep_scale(out_w, out_h, in_w, in_h)
    return resize_crop(spec, in_w, in_h)


def plan(spec: Transform, in_w: int, in_h: int, rng: np.random.Generator) -> Affine:
    """Draw this sample's geometric parameters and compose them into one map.

    The draws depend only on ``rng`` and the stored (upright) size, never on the decoded
    size, so draft decoding never changes which augmentation a sample gets. Order of draws:
    ``flip``, the random resized crop, then :func:`~datumio.augment.params.draw_affine`.
    """
    out_h, out_w = spec.size
    flip = spec.flip > 0.0 and rng.random() < spec.flip
    m = base_view(spec, in_w, in_h, rng)
    if spec.has_affine:
        p = draw_affine(
            rng,
            zoom_range=spec.zoom_range,
            rotation_range=spec.rotation_range,
            shear_range=spec.shear_range,
            translation_range=spec.translation_range,
            do_flip_lr=spec.do_flip_lr,
            do_flip_ud=spec.do_flip_ud,
            allow_stretch=spec.allow_stretch,
            skip_fixed=True,
        )
        m = m.then(augment(out_w, out_h, p))
    if flip:
        m = m.then(hflip(out_w))
    return m


def draft_request(m: Affine, in_w: int, in_h: int) -> tuple[int, int] | None:
    """The smallest (w, h) a JPEG may be draft-decoded to, or None when not worth it."""
    f = min(m.input_per_output())
    if f < DRAFT_MIN_FACTOR:
        return None
    return max(1, math.ceil(in_w / f)), max(1, math.ceil(in_h / f))
