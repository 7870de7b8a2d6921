"""Normalisation and layout: dataset mean/std, per-sample and per-batch zmuv, HWC/CHW.

Axes follow the original datumio: a sample axis indexes the HxWxC image and a batch axis the
NxHxWxC batch, whatever the output layout (the original transposed to CHW last, with
``chw_order``). Zero-mean unit-variance is ``x = x - mean; x = x / (std + 1e-12)`` over the
axes, in place in the output.
"""

from __future__ import annotations

import functools

import numpy as np

from datumio.augment import opencv
from datumio.augment.spec import Axis, Transform
from datumio.errors import DecodeError

#: Added to the standard deviation, as the original did, so a flat image does not divide by 0.
ZMUV_EPS = 1e-12
_TO_CHW = {0: 1, 1: 2, 2: 0}  # HWC axis -> CHW axis
_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}  # NHWC axis -> NCHW axis


@functools.lru_cache(maxsize=16)
def _norm_constants(
    mean: tuple[float, ...], std: tuple[float, ...], layout: str
) -> tuple[np.ndarray, np.ndarray]:
    shape = (-1, 1, 1) if layout == "CHW" else (1, 1, -1)
    m = np.asarray(mean, dtype=np.float32).reshape(shape)
    inv = (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32).reshape(shape)
    return m, inv


def layout_axes(axis: Axis, layout: str, batch: bool) -> int | tuple[int, ...] | None:
    """An HWC-ordered (NHWC for a batch) ``axis`` as axes of an array in ``layout``."""
    if axis is None or layout == "HWC":
        return axis
    ndim, table = (4, _TO_NCHW) if batch else (3, _TO_CHW)
    if isinstance(axis, int):
        return table[axis % ndim]
    return tuple(table[a % ndim] for a in axis)


def zmuv(x: np.ndarray, axis: int | tuple[int, ...] | None) -> None:
    """In place: ``x -= mean(x, axis); x /= std(x, axis) + 1e-12`` (float arrays)."""
    mean = x.mean(axis=axis, keepdims=True, dtype=np.float64)
    np.subtract(x, mean.astype(x.dtype), out=x)
    var = np.square(x).mean(axis=axis, keepdims=True, dtype=np.float64)
    np.divide(x, (np.sqrt(var) + ZMUV_EPS).astype(x.dtype), out=x)


def write(spec: Transform, image: np.ndarray, out: np.ndarray) -> None:
    """Write an HxWxC uint8 ``image`` into ``out`` with the spec's normalisation and layout.

    Dataset mean/std first (``normalize``, float32 only; with OpenCV and CHW, one pass per
    channel plane, equal to numpy's up to float rounding), then per-sample zmuv.
    """
    src = image.transpose(2, 0, 1) if spec.layout == "CHW" else image
    if src.shape != out.shape:
        raise DecodeError("bad output", f"image {src.shape} does not fit the output {out.shape}")
    if spec.dtype == "uint8":
        copy = opencv.copy_flipped if spec.layout == "HWC" else opencv.copy_planes
        fused = opencv.enabled(spec.backend) and copy(image, out)
        if not fused:
            np.copyto(out, src)
        return
    if spec.normalize and spec.mean is not None and spec.std is not None:
        mean, inv_std = _norm_constants(spec.mean, spec.std, spec.layout)
        fused = (
            spec.layout == "CHW"
            and opencv.enabled(spec.backend)
            and opencv.normalize_planes(image, inv_std.ravel(), -(mean * inv_std).ravel(), out)
        )
        if not fused:
            np.subtract(src, mean, out=out, dtype=np.float32)
            np.multiply(out, inv_std, out=out)
    else:
        np.copyto(out, src, casting="unsafe")
    if spec.sample_zmuv:
        zmuv(out, layout_axes(spec.sample_axis, spec.layout, batch=False))


def normalize_batch(batch: np.ndarray, spec: Transform) -> None:
    """Per-batch zero-mean unit-variance of a written batch, in place (no-op unless
    ``spec.batch_zmuv``).

    ``batch`` holds only the filled samples (``images[:n]``) in the spec's layout; the axes
    are ``spec.batch_axis``, NHWC-ordered. Call it once the whole batch is written.
    """
    if not spec.batch_zmuv or batch.shape[0] == 0:
        return
    if batch.dtype.kind != "f":
        raise DecodeError("bad output", f"batch_zmuv needs a float batch, got {batch.dtype}")
    zmuv(batch, layout_axes(spec.batch_axis, spec.layout, batch=True))
