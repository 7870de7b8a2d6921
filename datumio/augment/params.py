"""Drawing one sample's random geometric parameters, in the original datumio's order.

The draws use only the ``rng`` they are given (a per-sample Philox ``Generator`` in the
loader; ``numpy.random`` or a ``RandomState`` in :func:`datumio.transforms.perturb_image`),
so the same stream gives the same parameters in any process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Anything with ``uniform``: ``numpy.random``, a ``RandomState`` or a ``Generator``.
Rng = Any


@dataclass(frozen=True)
class AffineParams:
    """One sample's geometric parameters (the original ``transform_image`` arguments).

    ``zoom`` is (x, y); angles are degrees counter-clockwise; ``translation`` is (x, y) with
    positive x moving the content right and positive y moving it up.
    """

    zoom: tuple[float, float] = (1.0, 1.0)
    rotation: float = 0.0
    shear: float = 0.0
    translation: tuple[float, float] = (0.0, 0.0)
    flip_lr: bool = False
    flip_ud: bool = False


def coin(rng: Rng) -> bool:
    """A fair coin, drawn as the original did (``randint(2)``) where the rng has it."""
    if hasattr(rng, "integers"):
        return bool(rng.integers(2) > 0)
    return bool(rng.randint(2) > 0)


def draw_zoom(
    rng: Rng, zoom_range: tuple[float, float], allow_stretch: bool | float
) -> tuple[float, float]:
    """(zoom_x, zoom_y): log-uniform zoom; ``allow_stretch`` as in the original datumio."""
    log_lo, log_hi = math.log(zoom_range[0]), math.log(zoom_range[1])
    if isinstance(allow_stretch, bool):
        if allow_stretch:
            zx = math.exp(rng.uniform(log_lo, log_hi))
            return zx, math.exp(rng.uniform(log_lo, log_hi))
        z = math.exp(rng.uniform(log_lo, log_hi))
        return z, z
    zoom = math.exp(rng.uniform(log_lo, log_hi))
    s = abs(math.log(float(allow_stretch)))
    stretch = math.exp(rng.uniform(-s, s))
    return zoom * stretch, zoom / stretch


def draw_affine(
    rng: Rng,
    *,
    zoom_range: tuple[float, float] = (1.0, 1.0),
    rotation_range: tuple[float, float] = (0.0, 0.0),
    shear_range: tuple[float, float] = (0.0, 0.0),
    translation_range: tuple[float, float] = (0.0, 0.0),
    do_flip_lr: bool = False,
    do_flip_ud: bool = False,
    allow_stretch: bool | float = False,
    integer_translation: bool = False,
    skip_fixed: bool = False,
) -> AffineParams:
    """Draw (translation x, translation y, rotation, shear, flip lr, flip ud, zoom), in order.

    ``integer_translation`` truncates the shifts to whole pixels (the original did).
    ``skip_fixed`` skips the draws of ranges with low == high (the loader: cheaper); without
    it every range is drawn, so a ``RandomState`` seed gives the original's parameters.
    """

    def uniform(r: tuple[float, float]) -> float:
        if skip_fixed and r[0] == r[1]:
            return float(r[0])
        return float(rng.uniform(r[0], r[1]))

    tx, ty = uniform(translation_range), uniform(translation_range)
    if integer_translation:
        tx, ty = float(int(tx)), float(int(ty))
    rotation = uniform(rotation_range)
    shear = uniform(shear_range)
    flip_lr = coin(rng) if do_flip_lr else False
    flip_ud = coin(rng) if do_flip_ud else False
    fixed = zoom_range[0] == zoom_range[1] and (allow_stretch is False or allow_stretch is True)
    if skip_fixed and fixed:
        zoom = (float(zoom_range[0]), float(zoom_range[0]))
    else:
        zoom = draw_zoom(rng, zoom_range, allow_stretch)
    return AffineParams(zoom, rotation, shear, (tx, ty), flip_lr, flip_ud)


def random_resized_crop(
    rng: Rng,
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> tuple[int, int, int, int]:
    """(left, top, w, h) of a torchvision ``RandomResizedCrop`` box on a width x height image.

    Ten tries of an area fraction uniform in ``scale`` and an aspect ratio (w/h) log-uniform
    in ``ratio``; then the whole image, its ratio clamped to ``ratio``, centred.
    """
    area = float(width * height)
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(rng.uniform(scale[0], scale[1]))
        aspect = math.exp(float(rng.uniform(log_ratio[0], log_ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h
