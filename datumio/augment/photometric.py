"""Photometric ops on the output-sized uint8 image: brightness, contrast, saturation, grey.

Factors follow Pillow's ``ImageEnhance`` (1 keeps the image, 0 gives black / flat grey /
no colour, > 1 enhances) and are drawn uniformly from the spec's ranges, in this order:
brightness, contrast, saturation, then the grayscale coin; only the ops a spec enables draw.

Brightness and contrast are one lookup table (``Image.point``): the contrast pivot is the
mean grey level after brightness, computed exactly from the image's histogram, as
``ImageEnhance.Contrast`` does. Saturation blends with the image's grey version
(``Image.blend``, like ``ImageEnhance.Color``); grayscale keeps the channel count.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from datumio.augment.spec import Transform

#: ITU-R 601-2 luma weights, the ones Pillow's ``convert("L")`` uses.
_LUMA = np.array([0.299, 0.587, 0.114])
_LEVELS = np.arange(256, dtype=np.float64)


def _draw(rng: np.random.Generator, r: tuple[float, float]) -> float | None:
    if r == (1.0, 1.0):
        return None
    return r[0] if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


def _grey_mean(img: Image.Image, lut: np.ndarray) -> float:
    """Mean grey level of ``img`` after ``lut``, from its per-band histogram."""
    bands = len(img.getbands())
    hist = np.asarray(img.histogram(), dtype=np.float64).reshape(bands, 256)
    means = hist @ lut / max(hist[0].sum(), 1.0)
    if bands >= 3:
        return float(_LUMA @ means[:3])
    return float(means[0])


def brightness_contrast_lut(
    img: Image.Image, brightness: float | None, contrast: float | None
) -> np.ndarray:
    """The 256-entry table applying ``brightness`` then ``contrast`` (None: skip)."""
    lut = _LEVELS.copy()
    if brightness is not None:
        lut = np.clip(np.rint(lut * brightness), 0, 255)
    if contrast is not None:
        pivot = float(int(_grey_mean(img, lut) + 0.5))
        lut = np.clip(np.rint(pivot + (lut - pivot) * contrast), 0, 255)
    return lut.astype(np.uint8)


def adjust(img: Image.Image, spec: Transform, rng: np.random.Generator) -> Image.Image:
    """Apply the spec's photometric ops to ``img`` (mode L, RGB or RGBA)."""
    if not spec.has_photometric:
        return img
    brightness = _draw(rng, spec.brightness_range)
    contrast = _draw(rng, spec.contrast_range)
    saturation = _draw(rng, spec.saturation_range)
    grey = spec.grayscale > 0 and rng.random() < spec.grayscale
    colour = img.mode in ("RGB", "RGBA")
    if brightness is not None or contrast is not None:
        lut = brightness_contrast_lut(img, brightness, contrast)
        img = img.point(lut.tolist() * len(img.getbands()))
    if saturation is not None and colour:
        img = Image.blend(img.convert("L").convert(img.mode), img, saturation)
    if grey and colour:
        img = img.convert("L").convert(img.mode)
    return img
