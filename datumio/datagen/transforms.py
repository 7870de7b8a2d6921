"""The original datumio transform functions on in-memory numpy images, on the new engine.

``transform_image`` applies fixed parameters, ``perturb_image`` draws them, with the names,
conventions and return type of the original datumio (``longubu/datumio``,
``datumio/transforms.py``): images are HxWxC (or HxW) arrays, uint8 or float; the result is
float32 with the input's value scale (0-255 stays 0-255), centre-cropped to
``output_shape`` (default: the input's height and width) without resizing.

Conventions (pictures in ``docs/augment.md``): angles in degrees; positive ``rotation`` and
``shear`` turn the content counter-clockwise (``rotation=90`` equals ``np.rot90``); ``zoom``
> 1 zooms in (a pair is (zoom_x, zoom_y)); ``translation=(x, y)`` moves the content right by
x and up by y pixels, before rotation and zoom about the centre; flips mirror the result.
``perturb_image`` draws zoom log-uniform (``allow_stretch`` as the original), rotation, shear
and whole-pixel translations uniformly, each flip with probability 1/2, in the original's
order, so a ``RandomState`` seed gives the original's parameters.

The warp is one affine resampling (uint8 images in 8 bits; other dtypes per channel in
float32), with ``warp_kwargs`` ``order`` 0/1/3 (nearest, bilinear, bicubic), ``mode``
(``constant``, ``edge``/``nearest``, ``reflect``, ``symmetric``, ``wrap``), ``cval`` and
``backend`` (``"auto"``: OpenCV's ``warpAffine`` when installed, else Pillow's affine
transform; ``"pillow"``; ``"opencv"``), the same warp as the loader's :class:`Transform`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from datumio.augment import geometry
from datumio.augment.geometry import Affine
from datumio.augment.params import AffineParams, Rng, draw_affine
from datumio.augment.spec import warp_options
from datumio.augment.warp import warp
from datumio.errors import OptionError

__all__ = [
    "build_augmentation_transform",
    "build_random_augmentation_transform",
    "fast_warp",
    "perturb_image",
    "transform_image",
]

_PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _shapes(
    input_shape: Sequence[int], output_shape: Sequence[int] | None
) -> tuple[int, int, int, int]:
    in_h, in_w = (int(v) for v in input_shape[:2])
    out_h, out_w = (in_h, in_w) if output_shape is None else (int(v) for v in output_shape[:2])
    if min(in_h, in_w, out_h, out_w) < 1:
        raise OptionError(f"image shape {input_shape} / output_shape {output_shape} must be >= 1")
    return in_w, in_h, out_w, out_h


def build_augmentation_transform(
    input_shape: Sequence[int],
    output_shape: Sequence[int] | None = None,
    zoom: float | Sequence[float] = (1.0, 1.0),
    rotation: float = 0.0,
    shear: float = 0.0,
    translation: Sequence[float] = (0, 0),
    flip_lr: bool = False,
    flip_ud: bool = False,
) -> Affine:
    """The map (output -> input coordinates) of :func:`transform_image`'s parameters."""
    in_w, in_h, out_w, out_h = _shapes(input_shape, output_shape)
    zx, zy = (float(zoom), float(zoom)) if np.isscalar(zoom) else (float(z) for z in zoom)  # type: ignore[arg-type, union-attr]
    if zx <= 0 or zy <= 0:
        raise OptionError(f"zoom={zoom}; must be > 0")
    tx, ty = (float(t) for t in translation)
    p = AffineParams(
        (zx, zy), float(rotation), float(shear), (tx, ty), bool(flip_lr), bool(flip_ud)
    )
    return geometry.keep_scale(out_w, out_h, in_w, in_h).then(geometry.augment(out_w, out_h, p))


def build_random_augmentation_transform(
    input_shape: Sequence[int],
    output_shape: Sequence[int] | None = None,
    zoom_range: Sequence[float] = (1.0, 1.0),
    rotation_range: Sequence[float] = (0.0, 0.0),
    shear_range: Sequence[float] = (0.0, 0.0),
    translation_range: Sequence[float] = (0, 0),
    do_flip_lr: bool = False,
    do_flip_ud: bool = False,
    allow_stretch: bool | float = False,
    rng: Rng = None,
) -> Affine:
    """Draw :func:`perturb_image`'s parameters from ``rng`` and build their map."""
    p = draw_affine(
        np.random if rng is None else rng,
        zoom_range=(float(zoom_range[0]), float(zoom_range[1])),
        rotation_range=(float(rotation_range[0]), float(rotation_range[1])),
        shear_range=(float(shear_range[0]), float(shear_range[1])),
        translation_range=(float(translation_range[0]), float(translation_range[1])),
        do_flip_lr=do_flip_lr,
        do_flip_ud=do_flip_ud,
        allow_stretch=allow_stretch,
        integer_translation=True,
    )
    return build_augmentation_transform(
        input_shape, output_shape, p.zoom, p.rotation, p.shear, p.translation, p.flip_lr, p.flip_ud
    )


def fast_warp(
    img: np.ndarray,
    tf: Affine,
    output_shape: Sequence[int] | None = None,
    order: int = 1,
    mode: str = "constant",
    cval: float = 0.0,
    backend: str = "auto",
) -> np.ndarray:
    """Resample ``img`` through ``tf`` (output -> input) once: float32 (H, W[, C])."""
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise OptionError(f"image of shape {arr.shape}; give HxW or HxWxC")
    _, _, out_w, out_h = _shapes(arr.shape, output_shape)
    opts = warp_options({"order": order, "mode": mode, "cval": 0, "backend": backend})
    kw: dict[str, Any] = {k: opts[k] for k in ("resample", "fill_mode", "backend")}
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if arr.dtype == np.uint8 and channels in _PIL_MODES:
        src = arr if arr.ndim == 2 or channels > 1 else arr[:, :, 0]
        pil = Image.fromarray(np.ascontiguousarray(src))
        fill = int(np.clip(round(float(cval)), 0, 255))
        out_img, fx, fy = warp(pil, tf, out_w, out_h, fill_value=fill, **kw)
        out = np.asarray(out_img, dtype=np.float32)
        out = out[:, ::-1] if fx else out
        out = out[::-1] if fy else out
        if arr.ndim == 3 and out.ndim == 2:
            out = out[:, :, None]
        return np.ascontiguousarray(out)
    planes = arr[:, :, None] if arr.ndim == 2 else arr
    result = np.empty((out_h, out_w, channels), dtype=np.float32)
    for k in range(channels):
        plane = Image.fromarray(np.ascontiguousarray(planes[:, :, k], dtype=np.float32))
        out_img, fx, fy = warp(plane, tf, out_w, out_h, fill_value=float(cval), **kw)
        out = np.asarray(out_img, dtype=np.float32)
        out = out[:, ::-1] if fx else out
        result[:, :, k] = out[::-1] if fy else out
    return result[:, :, 0] if arr.ndim == 2 else result


def _warp_args(warp_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    kw = dict(warp_kwargs or {})
    warp_options(kw)  # validates the names and values
    return kw


def transform_image(
    img: np.ndarray,
    output_shape: Sequence[int] | None = None,
    tf: Affine | None = None,
    zoom: float | Sequence[float] = (1.0, 1.0),
    rotation: float = 0.0,
    shear: float = 0.0,
    translation: Sequence[float] = (0, 0),
    flip_lr: bool = False,
    flip_ud: bool = False,
    warp_kwargs: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Zoom, rotate, shear, translate and flip ``img`` about its centre; centre-crop.

    Args:
        img: HxW or HxWxC array (uint8 or float).
        output_shape: (rows, cols) of the centre crop; None: the input's.
        tf: a map from :func:`build_augmentation_transform`; overrides the parameters.
        zoom: > 1 zooms in; a pair is (zoom_x, zoom_y).
        rotation: degrees, counter-clockwise.
        shear: degrees, counter-clockwise.
        translation: (x, y) pixels; positive x moves the content right, positive y up.
        flip_lr, flip_ud: mirror the result left-right / up-down.
        warp_kwargs: ``order`` (0, 1, 3), ``mode``, ``cval`` (see the module docstring).

    Returns:
        float32 array of ``output_shape`` (plus the channel axis when ``img`` has one).
    """
    arr = np.asarray(img)
    if tf is None:
        tf = build_augmentation_transform(
            arr.shape, output_shape, zoom, rotation, shear, translation, flip_lr, flip_ud
        )
    return fast_warp(arr, tf, output_shape, **_warp_args(warp_kwargs))


def perturb_image(
    img: np.ndarray,
    output_shape: Sequence[int] | None = None,
    zoom_range: Sequence[float] = (1.0, 1.0),
    rotation_range: Sequence[float] = (0.0, 0.0),
    shear_range: Sequence[float] = (0.0, 0.0),
    translation_range: Sequence[float] = (0, 0),
    do_flip_lr: bool = False,
    do_flip_ud: bool = False,
    allow_stretch: bool | float = False,
    rng: Rng = None,
    warp_kwargs: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """:func:`transform_image` with parameters drawn from ``rng``.

    ``zoom_range`` is drawn log-uniform; ``allow_stretch`` True draws x and y zooms
    separately, a number s draws a stretch log-uniform in [1/s, s] (x zoom times it, y zoom
    divided by it); ``rotation_range``/``shear_range`` (degrees) and ``translation_range``
    (pixels, truncated to whole pixels, drawn for x then y) uniformly; each ``do_flip_*``
    flips half of the time. ``rng``: ``numpy.random`` (None, the default), a ``RandomState``
    or a ``Generator``.
    """
    arr = np.asarray(img)
    tf = build_random_augmentation_transform(
        arr.shape,
        output_shape,
        zoom_range,
        rotation_range,
        shear_range,
        translation_range,
        do_flip_lr,
        do_flip_ud,
        allow_stretch,
        rng,
    )
    return fast_warp(arr, tf, output_shape, **_warp_args(warp_kwargs))
