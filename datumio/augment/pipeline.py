"""Run a :class:`Transform` on one record and write the result into an output view."""

from __future__ import annotations

import signal
from typing import Literal, cast, overload

import numpy as np
from PIL import Image

from datumio.augment import geometry, jpeg_roi, opencv, photometric
from datumio.augment.jpeg import plain_components
from datumio.augment.normalize import write
from datumio.augment.params import random_resized_crop
from datumio.augment.spec import Transform, UserFn
from datumio.augment.warp import as_pil, opencv_general_warp, resized_by_pillow, warp
from datumio.codec import (
    DEFAULT_BACKGROUND,
    SWAPS_AXES,
    decode_record,
    exif_orientation,
    normalise,
    open_image,
)
from datumio.errors import DecodeError, OptionError, TransformError


def decode_for(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    *,
    encoding: str = "keep",
    shape: tuple[int, int, int] | None = None,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> np.ndarray:
    """Decode ``source``, warp it once and apply the photometric ops: HxWxC uint8 at ``spec.size``.

    ``source`` is a stored payload (``encoding`` and the stored ``shape`` say how to read it)
    or an already decoded HxWxC uint8 array.

    Raises:
        DecodeError: the payload does not decode to the stored shape.
    """
    return _decode(spec, source, rng, encoding=encoding, shape=shape, background=background)[0]


def _decode(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    *,
    encoding: str,
    shape: tuple[int, int, int] | None,
    background: tuple[int, int, int],
) -> tuple[np.ndarray, geometry.Affine]:
    """:func:`decode_for`, and the map it warped with in the stored (upright) image's
    coordinates: before any rescaling for a draft (DCT-scaled) decode."""
    if isinstance(source, np.ndarray) or encoding == "raw":
        if isinstance(source, np.ndarray):
            arr = source if source.ndim == 3 else source[:, :, None]
        else:
            if shape is None:
                raise OptionError("decoding a raw payload needs its stored shape")
            arr = decode_record(source, "raw", shape)
        arr = np.ascontiguousarray(arr, dtype=np.uint8)
        m = geometry.plan(spec, arr.shape[1], arr.shape[0], rng)
        out = _finish(spec, arr, m, rng)
        # Never hand out a view of the caller's array (a user_fn may write into its input).
        return (out.copy() if np.may_share_memory(out, arr) else out), m
    if shape is not None and opencv_decodes(spec, source, encoding, shape):
        decoded = _decode_jpeg_opencv(spec, source, shape, rng)
        if decoded is not None:
            return decoded
    img = open_image(bytes(source), max_pixels=2**62)
    stored_w, stored_h = img.size
    swaps = exif_orientation(img) in SWAPS_AXES
    up_w, up_h = (stored_h, stored_w) if swaps else (stored_w, stored_h)
    stored = m = geometry.plan(spec, up_w, up_h, rng)
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
    return _finish(spec, img, m, rng), stored


def opencv_decodes(
    spec: Transform, source: bytes | memoryview, encoding: str, shape: tuple[int, int, int]
) -> bool:
    """Whether OpenCV decodes this record to Pillow's pixels: every JPEG datumio wrote, and
    a kept source file that is a plain JPEG (:mod:`datumio.augment.jpeg`) of a compatible
    colour layout (grey to RGB replicates in both; RGB to grey does not match)."""
    if not opencv.enabled(spec.backend):
        return False
    if encoding == "jpeg":
        return True
    if encoding != "keep":
        return False
    components = plain_components(source)
    return components is not None and (shape[2] == 3 or components == 1)


def _decode_jpeg_opencv(
    spec: Transform,
    source: bytes | memoryview,
    shape: tuple[int, int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, geometry.Affine] | None:
    """A JPEG record written by datumio, or a kept plain JPEG (no EXIF rotation, RGB or
    grey), decoded with OpenCV (bit-identical to Pillow's decode), or with Pillow when the
    warp ends in Pillow's resize anyway (a fractional box: the array would be copied into a
    PIL image, which costs more than OpenCV's decode saves). None (nothing drawn from
    ``rng``): a truncated file, for :func:`decode_for`'s Pillow path to report. With the
    image, the map in stored-image coordinates (before the DCT rescale)."""
    if not opencv.complete_jpeg(source):
        return None  # truncated: Pillow says so
    up_h, up_w = int(shape[0]), int(shape[1])
    stored = m = geometry.plan(spec, up_w, up_h, rng)
    request = geometry.draft_request(m, up_w, up_h)
    scale = opencv.jpeg_scale((up_w, up_h), request)
    h, w = -(-up_h // scale), -(-up_w // scale)
    if scale > 1:
        m = m.rescale_input(w / up_w, h / up_h)
    out_h, out_w = spec.size
    img: Image.Image | np.ndarray | None
    if resized_by_pillow(m, (w, h), out_w, out_h, resample=spec.resample, backend=spec.backend):
        opened = open_image(bytes(source), max_pixels=2**62)  # checked at ingest
        img = normalise(opened, gray=shape[2] == 1, draft_size=request)
        got: tuple[int, ...] | None = (img.height, img.width)
    elif (region := _warp_region(spec, source, m, (w, h), shape[2] == 1, scale)) is not None:
        img, m = region  # only the part the warp samples was decoded
        got = (h, w)
    else:
        img = opencv.decode_jpeg(source, gray=shape[2] == 1, scale=scale)
        got = None if img is None else img.shape[:2]
    if img is None or got != (h, w):
        raise DecodeError("corrupt data", f"decoded shape {got} != stored {shape} at 1/{scale}")
    return _finish(spec, img, m, rng), stored


#: Pixels around the mapped output that the warp's filter may read (bicubic: 2), plus one.
_WARP_MARGIN = 3


def _warp_region(
    spec: Transform,
    source: bytes | memoryview,
    m: geometry.Affine,
    size: tuple[int, int],
    gray: bool,
    scale: int,
) -> tuple[np.ndarray, geometry.Affine] | None:
    """The part of a JPEG (decoded at ``1/scale``, ``size`` = (w, h)) that the general
    warp through ``m`` samples, decoded alone, with the map onto it; None where the warp
    needs the whole image (an axis-aligned resize, a box-reduce first, a ``reflect`` or
    ``wrap`` fill reaching past the image, a box that is the whole image) or where region
    decoding is unavailable. The warp reads the same pixels either way: the region holds
    every filter tap, and where it is cut at the image's edge, the edge is the image's."""
    w, h = size
    out_h, out_w = spec.size
    if not opencv_general_warp(m, size, out_w, out_h, resample=spec.resample, backend=spec.backend):
        return None
    corners = m.apply(np.array([[0, 0], [out_w, 0], [0, out_h], [out_w, out_h]], np.float64))
    low = np.floor(corners.min(axis=0)) - _WARP_MARGIN
    high = np.ceil(corners.max(axis=0)) + _WARP_MARGIN
    inside = low[0] >= 0 and low[1] >= 0 and high[0] <= w and high[1] <= h
    if not inside and spec.fill_mode not in ("constant", "edge"):
        return None  # reflect, symmetric, wrap: the fill reads pixels beyond the box
    left, top = max(int(low[0]), 0), max(int(low[1]), 0)
    right, bottom = min(int(high[0]), w), min(int(high[1]), h)
    if right <= left or bottom <= top or (right - left, bottom - top) == (w, h):
        return None
    region = _region(source, (left, top, right, bottom), (h, w, 1 if gray else 3), scale)
    if region is None:
        return None
    arr, (x0, y0) = region
    return arr, m.shift_input(-x0, -y0)


def _finish(
    spec: Transform, img: Image.Image | np.ndarray, m: geometry.Affine, rng: np.random.Generator
) -> np.ndarray:
    """Warp once, photometric ops, then the uint8 HxWxC array (flips as free strides)."""
    out_h, out_w = spec.size
    out, flip_x, flip_y = warp(
        img,
        m,
        out_w,
        out_h,
        resample=spec.resample,
        fill_mode=spec.fill_mode,
        fill_value=spec.fill_value,
        backend=spec.backend,
    )
    if spec.has_photometric:
        out = photometric.adjust(as_pil(out), spec, rng)
    arr = np.asarray(out, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if flip_x:
        arr = arr[:, ::-1]
    if flip_y:
        arr = arr[::-1]
    return arr


#: :func:`_plain_crop` of the Transforms seen, by identity (hashing a Transform per sample,
#: as a cache keyed by value does, costs more than the answer).
_PLAIN_CROP: dict[int, tuple[Transform, bool]] = {}


def _plain_crop(spec: Transform) -> bool:
    """Whether ``spec`` is a random resized crop + flip and nothing else that touches the
    geometry or the pixels (the ImageNet training recipe), with OpenCV enabled."""
    hit = _PLAIN_CROP.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    if len(_PLAIN_CROP) >= 16:
        _PLAIN_CROP.clear()
    answer = _PLAIN_CROP[id(spec)] = (spec, _is_plain_crop(spec))
    return answer[1]


def _is_plain_crop(spec: Transform) -> bool:
    return bool(
        spec.crop_scale is not None
        and not spec.has_affine
        and not spec.has_photometric
        and spec.user_fn is None
        and spec.resample == "bilinear"
        and opencv.enabled(spec.backend)
    )


def _crop_fast(
    spec: Transform,
    source: bytes | memoryview,
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    out: np.ndarray,
) -> tuple[np.ndarray | None, tuple[int, int, int, int], bool]:
    """:func:`decode_for` of a :func:`_plain_crop` spec on a JPEG record that is never
    DCT-scaled (smaller than twice the output): the same draws, box, decode and resize,
    without the affine matrix and the general warp (about 25 us less per image). A uint8
    HWC ``out`` gets the resize (and flip) straight from it.

    Returns:
        (image, (left, top, w, h) box, flip): the image for :func:`write`, None when it is
        already in ``out``; :func:`_crop_affine` makes the map of the last two, for a
        caller that asks.
    """
    h, w, channels = shape
    out_h, out_w = spec.size
    scale = cast(tuple[float, float], spec.crop_scale)  # set: _plain_crop
    flip = spec.flip > 0.0 and rng.random() < spec.flip
    left, top, bw, bh = random_resized_crop(rng, w, h, scale, spec.crop_ratio)
    box = (left, top, left + bw, top + bh)
    region = _region(source, box, shape)
    if region is not None:  # only the rows and columns of the box were decoded
        arr, (x0, y0) = region
        box = (left - x0, top - y0, left - x0 + bw, top - y0 + bh)
    else:
        whole = opencv.decode_jpeg(source, gray=channels == 1, scale=1)
        if whole is None or whole.shape[:2] != (h, w):
            got = None if whole is None else whole.shape
            raise DecodeError("corrupt data", f"decoded shape {got} != stored {shape} at 1/1")
        arr = whole
    if (
        spec.dtype == "uint8"
        and spec.layout == "HWC"
        and out.shape == (out_h, out_w, channels)
        and out.flags.c_contiguous
    ):
        opencv.resize_box_into(arr, box, out, flip=flip)
        return None, (left, top, bw, bh), flip
    image = opencv.resize_box(arr, box, out_w, out_h)
    if image.ndim == 2:
        image = image[:, :, None]
    return (image[:, ::-1] if flip else image), (left, top, bw, bh), flip


def _region(
    source: bytes | memoryview,
    box: tuple[int, int, int, int],
    shape: tuple[int, int, int],
    scale: int = 1,
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The pixels of ``box`` decoded alone (:mod:`datumio.augment.jpeg_roi`) at ``1/scale``
    (``shape``: the image's at that scale) and the corner they start at, or None where
    region decoding is unavailable or fails (the caller decodes the whole image, which
    also says what is wrong with a bad record)."""
    tally = jpeg_roi.TALLY
    if not jpeg_roi.available():
        tally.whole += 1
        return None
    try:
        arr, x0, y0, whole = jpeg_roi.decode_box(source, box, gray=shape[2] == 1, scale=scale)
    except ValueError:
        whole = None
    if whole != tuple(shape[:2]):
        tally.whole += 1
        return None
    tally.regions += 1
    return arr, (x0, y0)


def _crop_affine(spec: Transform, box: tuple[int, int, int, int], flip: bool) -> geometry.Affine:
    """The map of a :func:`_crop_fast` sample: :func:`geometry.plan`'s for the same draws."""
    out_h, out_w = spec.size
    m = geometry.crop_view(box, out_w, out_h)
    return m.then(geometry.hflip(out_w)) if flip else m


@overload
def apply(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    out: np.ndarray,
    *,
    encoding: str = ...,
    shape: tuple[int, int, int] | None = ...,
    background: tuple[int, int, int] = ...,
    return_affine: Literal[True],
) -> geometry.Affine: ...


@overload
def apply(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    out: np.ndarray,
    *,
    encoding: str = ...,
    shape: tuple[int, int, int] | None = ...,
    background: tuple[int, int, int] = ...,
    return_affine: bool = ...,
) -> geometry.Affine | None: ...


def apply(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    out: np.ndarray,
    *,
    encoding: str = "keep",
    shape: tuple[int, int, int] | None = None,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    return_affine: bool = False,
) -> geometry.Affine | None:
    """Decode, transform and write one sample into ``out`` (``spec.output_shape``, ``dtype``).

    ``spec`` must be resolved (mean/std filled) when it normalises; see
    :meth:`Transform.resolved`.

    ``return_affine=True`` returns the :class:`~datumio.augment.geometry.Affine` the image
    was warped with, from output pixels to the stored (upright) image's pixels, whatever
    the decode path (a draft-scaled decode's rescale is not in it): what boxes, keypoints
    and masks follow (:mod:`datumio.augment.annotations`). ``user_fn`` is not in it.

    Raises:
        DecodeError: the record does not decode (the loader replaces it).
        TransformError: ``spec.user_fn`` raised or returned a wrong array (never replaced).
    """
    if (
        shape is not None
        and not isinstance(source, np.ndarray)
        and _plain_crop(spec)
        and (shape[1] < 2 * spec.size[1] or shape[0] < 2 * spec.size[0])  # never DCT-scaled
        and opencv_decodes(spec, source, encoding, shape)  # JPEG records, plain kept JPEGs
        and opencv.complete_jpeg(source)  # else Pillow says what is wrong
    ):
        image, box, flip = _crop_fast(spec, source, rng, shape, out)
        if image is not None:
            write(spec, image, out)
        return _crop_affine(spec, box, flip) if return_affine else None
    image, m = _decode(spec, source, rng, encoding=encoding, shape=shape, background=background)
    if spec.user_fn is not None:
        image = run_user_fn(spec.user_fn, image, rng)
    write(spec, image, out)
    return m if return_affine else None


def run_user_fn(fn: UserFn, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``fn(image, rng)`` as uint8, checked; its failures become :class:`TransformError`.

    A failure here is the user's code, not the record: replacing the record with another
    of its class (what the loader does with a :class:`DecodeError`) would hide the bug.
    ``sys.exit`` in the function, and a ``KeyboardInterrupt`` it raises where SIGINT is
    ignored (a loader worker: it cannot be Ctrl-C), are such failures too, not a worker
    that dies.
    """
    qualname = getattr(fn, "__qualname__", None)
    name = f"{fn.__module__}.{qualname}" if qualname else repr(fn)  # repr: a partial
    try:
        result = fn(image, rng)
    except SystemExit as exc:
        raise TransformError(
            f"Transform(user_fn={name}) called sys.exit({exc.code!r}); a transform must "
            "return the image (raise an exception to fail the batch), never end the process"
        ) from exc
    except KeyboardInterrupt as exc:
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            raise  # this process takes Ctrl-C: it may be one
        raise TransformError(
            f"Transform(user_fn={name}) raised KeyboardInterrupt; fix the function (its "
            "traceback is this error's cause) or drop user_fn"
        ) from exc
    except Exception as exc:
        raise TransformError(
            f"Transform(user_fn={name}) raised {type(exc).__qualname__}: {exc}; fix the "
            "function (its traceback is this error's cause) or drop user_fn"
        ) from exc
    if not isinstance(result, np.ndarray) or result.shape != image.shape:
        got = getattr(result, "shape", type(result).__name__)
        raise TransformError(
            f"Transform(user_fn={name}) returned {got}; it must return an array of the "
            f"shape it was given, {image.shape} (HxWxC uint8)"
        )
    if result.dtype != np.uint8:
        _check_uint8_range(name, result)
    return result.astype(np.uint8, copy=False)


def _check_uint8_range(name: str, result: np.ndarray) -> None:
    """A ``user_fn`` result of another dtype must hold whole-image values in 0-255: a cast
    would wrap 300 to 44 and -1 to 255, and turn NaN into an arbitrary grey, silently.

    Raises:
        TransformError: the values found, and what to do.
    """
    kind = result.dtype.kind
    if kind == "b":
        return
    fix = (
        "clip and cast it yourself (np.clip(x, 0, 255).astype(np.uint8)) or return uint8; "
        "normalisation comes after user_fn"
    )
    if kind not in "uif":
        raise TransformError(
            f"Transform(user_fn={name}) returned dtype {result.dtype}; return a numeric "
            f"array of 0-255 values: {fix}"
        )
    if result.size == 0:
        return
    if kind == "f" and not bool(np.isfinite(result).all()):
        bad = int(np.count_nonzero(~np.isfinite(result)))
        raise TransformError(
            f"Transform(user_fn={name}) returned {result.dtype} values with {bad} NaN or "
            f"infinite value(s); return finite values in 0-255: {fix}"
        )
    low, high = result.min(), result.max()
    if low < 0 or high > 255:
        raise TransformError(
            f"Transform(user_fn={name}) returned {result.dtype} values in [{low}, {high}], "
            f"outside the 0-255 of the uint8 image it must return: {fix}"
        )
