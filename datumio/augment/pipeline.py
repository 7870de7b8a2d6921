"""Run a :class:`Transform` on one record and write the result into an output view."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from datumio.augment import geometry
from datumio.augment.spec import Transform
from datumio.codec import (
    DEFAULT_BACKGROUND,
    decode_record,
    exif_orientation,
    normalise,
    open_image,
)
from datumio.errors import DecodeError, OptionError

_SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image by 90 degrees


def _pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def decode_for(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    *,
    encoding: str = "keep",
    shape: tuple[int, int, int] | None = None,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> np.ndarray:
    """Decode ``source`` and apply the geometric part of ``spec``: HxWxC uint8 at ``spec.size``.

    ``source`` is a stored payload (``encoding`` and the stored ``shape`` say how to read it)
    or an already decoded HxWxC uint8 array.

    Raises:
        DecodeError: the payload does not decode to the stored shape.
    """
    if isinstance(source, np.ndarray) or encoding == "raw":
        if isinstance(source, np.ndarray):
            arr = source if source.ndim == 3 else source[:, :, None]
        else:
            if shape is None:
                raise OptionError("decoding a raw payload needs its stored shape")
            arr = decode_record(source, "raw", shape)
        img = _pil(np.ascontiguousarray(arr, dtype=np.uint8))
        m = geometry.plan(spec, img.width, img.height, rng)
        return geometry.warp(img, m, spec)
    img = open_image(bytes(source), max_pixels=2**62)
    stored_w, stored_h = img.size
    swaps = exif_orientation(img) in _SWAPS_AXES
    up_w, up_h = (stored_h, stored_w) if swaps else (stored_w, stored_h)
    m = geometry.plan(spec, up_w, up_h, rng)
    request = geometry.draft_request(m, up_w, up_h) if img.format == "JPEG" else None
    if request is not None and swaps:
        request = (request[1], request[0])
    gray = shape is not None and shape[2] == 1
    img = normalise(img, gray=gray, background=background, draft_size=request)
    if img.size != (up_w, up_h):
        if request is None:
            raise DecodeError("corrupt data", f"decoded size {img.size} != stored {(up_w, up_h)}")
        m = m.rescale_input(img.width / up_w, img.height / up_h)
    if shape is not None and request is None and (up_h, up_w) != tuple(shape[:2]):
        raise DecodeError("corrupt data", f"decoded shape {(up_h, up_w)} != stored {shape}")
    return geometry.warp(img, m, spec)


@functools.lru_cache(maxsize=16)
def _norm_constants(
    mean: tuple[float, ...], std: tuple[float, ...], layout: str
) -> tuple[np.ndarray, np.ndarray]:
    shape = (-1, 1, 1) if layout == "CHW" else (1, 1, -1)
    m = np.asarray(mean, dtype=np.float32).reshape(shape)
    inv = (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32).reshape(shape)
    return m, inv


def write(spec: Transform, image: np.ndarray, out: np.ndarray) -> None:
    """Write an HxWxC uint8 ``image`` into ``out`` with the spec's normalisation and layout."""
    src = image.transpose(2, 0, 1) if spec.layout == "CHW" else image
    if src.shape != out.shape:
        raise DecodeError("bad output", f"image {src.shape} does not fit the output {out.shape}")
    if spec.dtype == "uint8":
        np.copyto(out, src)
    elif spec.normalize and spec.mean is not None and spec.std is not None:
        mean, inv_std = _norm_constants(spec.mean, spec.std, spec.layout)
        np.subtract(src, mean, out=out, dtype=np.float32)
        np.multiply(out, inv_std, out=out)
    else:
        np.copyto(out, src, casting="unsafe")


def apply(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    out: np.ndarray,
    *,
    encoding: str = "keep",
    shape: tuple[int, int, int] | None = None,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> None:
    """Decode, transform and write one sample into ``out`` (``spec.output_shape``, ``dtype``).

    ``spec`` must be resolved (mean/std filled) when it normalises; see
    :meth:`Transform.resolved`.
    """
    image = decode_for(spec, source, rng, encoding=encoding, shape=shape, background=background)
    if spec.user_fn is not None:
        result = spec.user_fn(image, rng)
        if not isinstance(result, np.ndarray) or result.shape != image.shape:
            raise DecodeError(
                "bad user_fn result",
                f"user_fn must return an array of shape {image.shape}, got "
                f"{getattr(result, 'shape', type(result).__name__)}",
            )
        image = result.astype(np.uint8, copy=False)
    write(spec, image, out)
