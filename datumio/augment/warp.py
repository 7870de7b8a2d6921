"""Resample an image once through an :class:`~datumio.augment.geometry.Affine`, with Pillow.

* No rotation or shear, and every sample inside the image: Pillow's antialiased
  ``resize(box=...)``; or, for a bilinear resize of a whole-pixel box (a random resized
  crop) of an array (a JPEG record OpenCV decoded) with OpenCV enabled, ``cv2.resize`` of
  the cut box (:func:`datumio.augment.opencv.resize_box`: area when shrinking, about 4x
  faster). Flips are returned as flags (a free negative stride for the caller).
* Otherwise ``Image.transform(AFFINE)``, which does not antialias: when the map shrinks by
  2x or more, the image is first box-reduced by the integer factor (``Image.reduce``, folded
  into the matrix), so the affine itself never shrinks by 2x or more.
* With OpenCV installed, ``backend="opencv"``, or ``"auto"`` with bilinear/bicubic (or
  nearest on an array), makes the general affine ``cv2.warpAffine`` instead
  (:mod:`datumio.augment.opencv`): same matrix, fill modes as OpenCV borders, about 3x
  faster than Pillow's bilinear; it returns a numpy array.
* Fill modes: Pillow fills a constant only. For ``edge``/``reflect``/``symmetric``/``wrap``
  the part of the source the output samples is cut out and padded by ``numpy.pad`` with
  that mode, just enough to hold every sample point plus the filter's support, and the
  matrix is shifted to match; the warp then never samples outside.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from datumio.augment import opencv
from datumio.augment.geometry import Affine

RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
#: Extra source pixels kept around the sampled region, for the interpolation kernel.
_SUPPORT = {"nearest": 1, "bilinear": 2, "bicubic": 3}
#: Pre-reduce (box filter) when the map shrinks by at least this factor.
REDUCE_MIN_FACTOR = 2.0


def _inside(
    box: tuple[float, float, float, float], w: float, h: float
) -> tuple[float, float, float, float] | None:
    """``box`` clamped to the image when it lies inside up to rounding, else None."""
    eps = 1e-6 * max(w, h)
    if box[0] < -eps or box[1] < -eps or box[2] > w + eps or box[3] > h + eps:
        return None  # samples outside the image: the general affine path fills them
    return (max(box[0], 0.0), max(box[1], 0.0), min(box[2], w), min(box[3], h))


def fill_colour(mode: str, value: float | tuple[float, ...]) -> float | tuple[float, ...]:
    """Pillow's ``fillcolor`` for ``mode`` from a grey level or a per-channel tuple."""
    bands = Image.getmodebands(mode)
    values = (value,) * bands if isinstance(value, int | float) else tuple(value)
    if len(values) == 1:
        values = values * bands
    if len(values) != bands:
        raise ValueError(f"fill value {value!r} does not match the {bands} channels of {mode}")
    if mode in ("F", "I"):
        return float(values[0]) if mode == "F" else int(values[0])
    ints = tuple(round(v) for v in values)
    return ints[0] if bands == 1 else ints


def sampled_box(m: Affine, out_w: int, out_h: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the input region the output rectangle maps onto."""
    corners = m.apply(np.array([[0, 0], [out_w, 0], [0, out_h], [out_w, out_h]], float))
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def pad_source(
    img: Image.Image, m: Affine, out_w: int, out_h: int, mode: str, support: int
) -> tuple[Image.Image, Affine]:
    """Cut out and pad (``numpy.pad`` ``mode``) the source so that ``m`` samples inside it."""
    x0, y0, x1, y1 = sampled_box(m, out_w, out_h)
    w, h = img.size
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return img, m
    arr = np.asarray(img)
    pads, cuts = [], []
    for lo, hi, n in ((y0, y1, h), (x0, x1, w)):
        first, last = math.floor(lo) - support, math.ceil(hi) + support
        if lo < 0 or hi > n:
            # Padding on this axis: keep the whole axis so reflections see the true edges.
            cuts.append((0, n))
            pads.append((max(0, -first), max(0, last - n)))
        else:
            cuts.append((max(0, first), min(n, last)))
            pads.append((0, 0))
    (top, bottom), (left, right) = cuts
    arr = arr[top:bottom, left:right]
    width = pads + [(0, 0)] * (arr.ndim - 2)
    arr = np.pad(arr, width, mode=mode)  # type: ignore[call-overload]
    padded = Image.fromarray(np.ascontiguousarray(arr))
    return padded, m.shift_input(pads[1][0] - left, pads[0][0] - top)


def as_pil(img: Image.Image | np.ndarray) -> Image.Image:
    """``img`` as a PIL image (an HxWx1 array becomes mode L)."""
    if isinstance(img, Image.Image):
        return img
    return Image.fromarray(img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img)


def _whole(box: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
    """``box`` as whole pixels when its edges are whole (a random resized crop at the
    decoded scale), else None."""
    edges = tuple(round(v) for v in box)
    if any(abs(v - e) > 1e-6 for v, e in zip(box, edges, strict=True)):
        return None
    x0, y0, x1, y1 = edges
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _opencv_resize(backend: str, resample: str) -> bool:
    """Whether an axis-aligned bilinear resize of an array goes to ``cv2.resize``."""
    return resample == "bilinear" and opencv.use_opencv(backend, resample, array=True)


def _axis_aligned(
    m: Affine, size: tuple[int, int], out_w: int, out_h: int
) -> tuple[tuple[float, float, float, float], bool, bool] | None:
    """(box, flip_x, flip_y) when ``m`` maps the output onto a box inside an image of
    ``size`` (no rotation or shear), else None."""
    (a00, a01, a02), (a10, a11, a12) = m.m[:2].tolist()  # Python floats: cheaper here
    if a01 != 0.0 or a10 != 0.0:
        return None
    x0, x1 = a02, a00 * out_w + a02
    y0, y1 = a12, a11 * out_h + a12
    box = _inside((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), *map(float, size))
    return None if box is None else (box, x1 < x0, y1 < y0)


def resized_by_pillow(
    m: Affine, size: tuple[int, int], out_w: int, out_h: int, *, resample: str, backend: str
) -> bool:
    """Whether :func:`warp` of an array of ``size`` (w, h) ends in Pillow's
    ``resize(box=...)``, so that a decoder handing Pillow its image directly saves a copy."""
    axis = _axis_aligned(m, size, out_w, out_h)
    if axis is None:
        return False
    box = axis[0]
    if box == (0.0, 0.0, float(size[0]), float(size[1])) and size == (out_w, out_h):
        return False
    return not (_whole(box) and _opencv_resize(backend, resample))


def opencv_general_warp(
    m: Affine, size: tuple[int, int], out_w: int, out_h: int, *, resample: str, backend: str
) -> bool:
    """Whether :func:`warp` of an array of ``size`` (w, h) is one ``cv2.warpAffine`` of the
    array as it is (not axis-aligned, no box-reduce first): it then reads only the pixels
    around the mapped output, so a decoder may hand it just those."""
    if _axis_aligned(m, size, out_w, out_h) is not None:
        return False
    if _reduce_factor(m, size, resample) >= REDUCE_MIN_FACTOR:
        return False
    return opencv.use_opencv(backend, resample, array=True)


def _reduce_factor(m: Affine, size: tuple[int, int], resample: str) -> int:
    """The integer box-reduce :func:`warp` applies before a general warp that shrinks (it
    does when this is at least :data:`REDUCE_MIN_FACTOR`; never for nearest)."""
    return 0 if resample == "nearest" else int(min(min(m.input_per_output()), *size))


def warp(
    img: Image.Image | np.ndarray,
    m: Affine,
    out_w: int,
    out_h: int,
    *,
    resample: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float | tuple[float, ...] = 0,
    backend: str = "pillow",
) -> tuple[Image.Image | np.ndarray, bool, bool]:
    """Resample ``img`` (a PIL image or an HxW[xC] uint8 array) once through ``m``.

    ``backend``: ``"pillow"``; ``"opencv"`` for ``cv2.warpAffine``; ``"auto"``: OpenCV for
    bilinear/bicubic, and nearest on an array, when installed (the general affine only; it
    returns an HxW[xC] array).

    Returns:
        (image, flip_x, flip_y): the caller mirrors the pixels where a flag is set (the
        axis-aligned path leaves flips to a free negative stride).
    """
    size = img.size if isinstance(img, Image.Image) else (img.shape[1], img.shape[0])
    axis = _axis_aligned(m, size, out_w, out_h)
    if axis is not None:  # a resize of a box inside the image, flips as flags
        box, flip_x, flip_y = axis
        if box == (0.0, 0.0, float(size[0]), float(size[1])) and size == (out_w, out_h):
            out = img
        elif (
            (pixels := _whole(box))
            and isinstance(img, np.ndarray)
            and _opencv_resize(backend, resample)
        ):
            out = opencv.resize_box(img, pixels, out_w, out_h)
        else:
            out = as_pil(img).resize((out_w, out_h), RESAMPLE[resample], box=box)
        return out, flip_x, flip_y
    if (k := _reduce_factor(m, size, resample)) >= REDUCE_MIN_FACTOR:
        img = as_pil(img).reduce(k)
        m = m.rescale_input(1.0 / k, 1.0 / k)
    if opencv.use_opencv(backend, resample, array=isinstance(img, np.ndarray)):
        arr = opencv.warp_affine(
            img if isinstance(img, np.ndarray) else np.asarray(img),
            m,
            out_w,
            out_h,
            resample=resample,
            fill_mode=fill_mode,
            fill_value=fill_value,
        )
        return arr, False, False
    img = as_pil(img)
    if fill_mode != "constant":
        img, m = pad_source(img, m, out_w, out_h, fill_mode, _SUPPORT[resample])
    out = img.transform(
        (out_w, out_h),
        Image.Transform.AFFINE,
        m.data,
        RESAMPLE[resample],
        fillcolor=fill_colour(img.mode, fill_value),
    )
    return out, False, False
