"""The optional OpenCV path: JPEG decode, affine warp and float32 normalisation.

Installed with ``pip install "datumio[opencv]"`` (``opencv-python-headless``) and then used
by ``Transform(backend="auto")``, the default: it decodes the JPEG records the ingest wrote
(bit-identical to Pillow), does the general affine warp (bilinear and bicubic; nearest when
the image is already an array) and the float32 CHW normalisation. Pillow decodes original
bytes and does the axis-aligned (antialiased) resizes.

Conventions match the Pillow path: the :class:`~datumio.augment.geometry.Affine` maps output
pixel centres (x + 0.5) to input coordinates with centres at i + 0.5; OpenCV puts centres at
integers, so the offset moves by ``0.5 * (a + b) - 0.5``. Fill modes map onto OpenCV's
borders (``reflect`` is ``BORDER_REFLECT_101``, numpy's reflect; ``symmetric`` is
``BORDER_REFLECT``). Pixels can differ from Pillow's by a grey level or so (OpenCV rounds
bilinear weights to 1/32; its bicubic uses a = -0.75, Pillow's -0.5); within one backend
the output is deterministic.

``cv2`` itself comes from :mod:`datumio.augment.opencv_probe` (single-threaded in workers).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from datumio.augment import jpeg_roi
from datumio.augment.opencv_probe import load

if TYPE_CHECKING:
    from datumio.augment.geometry import Affine

#: Nearest neighbour takes floor(x) in Pillow's coordinates, i.e. x - 0.5 rounded half up in
#: OpenCV's; OpenCV 5 rounds half to even, so exact halves are nudged up (1/256 px).
NEAREST_NUDGE = 1.0 / 256.0


def use_opencv(backend: str, resample: str, *, array: bool) -> bool:
    """Whether the warp of ``backend`` ("auto", "pillow" or "opencv") is OpenCV's here.

    ``auto`` takes OpenCV for bilinear and bicubic; for nearest only when the image is
    already a numpy ``array``: Pillow's nearest-neighbour affine has a fixed-point path
    as fast as OpenCV's, so for a PIL image the copy into an array would be the difference.
    """
    if backend == "auto" and resample == "nearest" and not array:
        return False
    return enabled(backend)


def enabled(backend: str) -> bool:
    """Whether OpenCV decodes datumio-written JPEG records and normalises under ``backend``.

    Its decode is bit-identical to Pillow's (both libjpeg-turbo, the same DCT scaling) and
    about 40% faster, with no copy out of a PIL image; ``"pillow"`` keeps Pillow and numpy.
    """
    return backend != "pillow" and load() is not None


def jpeg_scale(size: tuple[int, int], request: tuple[int, int] | None) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow's ``JpegImageFile.draft(size=request)`` picks."""
    if request is None:
        return 1
    fit = min(size[0] // request[0], size[1] // request[1])
    return next(s for s in (8, 4, 2, 1) if fit >= s)


def complete_jpeg(data: bytes | memoryview) -> bool:
    """Whether ``data`` ends with the JPEG EOI marker. OpenCV decodes a truncated file half
    grey without an error, so only complete payloads go to it (Pillow raises on the rest)."""
    return len(data) >= 4 and bytes(data[-2:]) == b"\xff\xd9"


def decode_jpeg(data: bytes | memoryview, *, gray: bool, scale: int) -> np.ndarray | None:
    """A JPEG decoded at 1/``scale`` (RGB, or 2-D grey), or None when it is not
    :func:`complete_jpeg` or does not decode."""
    cv2 = load()
    if cv2 is None or not complete_jpeg(data):
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    if gray:
        flag = (
            cv2.IMREAD_GRAYSCALE
            if scale == 1
            else getattr(cv2, f"IMREAD_REDUCED_GRAYSCALE_{scale}")
        )
        return cv2.imdecode(buf, flag)
    rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)
    if scale == 1 and rgb is not None:
        return cv2.imdecode(buf, rgb)
    flag = cv2.IMREAD_COLOR if scale == 1 else getattr(cv2, f"IMREAD_REDUCED_COLOR_{scale}")
    arr = cv2.imdecode(buf, flag)
    if arr is not None:
        cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)
    return arr


def resize_box(
    arr: np.ndarray, box: tuple[int, int, int, int], out_w: int, out_h: int
) -> np.ndarray:
    """The whole-pixel ``box`` (x0, y0, x1, y1) of ``arr`` (HxW[xC] uint8) resized to
    out_w x out_h by ``cv2.resize``: ``INTER_AREA`` (exact pixel-area averaging, the
    antialiased shrink) when both sides shrink, else ``INTER_LINEAR``. The shrink is
    datumio's compiled area resampling where it is built (``datumio/_native/area.c``: the
    same filter within one grey level, rounding, at about half of OpenCV's cost).

    This is torchvision's ``RandomResizedCrop``: cut the box, then resize it. Against
    Pillow's antialiased ``resize(box=...)`` the pixels differ by about 0.25 grey levels on
    average, 99% within 1 (the outermost output rows and columns differ more: Pillow also
    weighs the pixels just outside the box), at a quarter of the cost.
    """
    x0, y0, x1, y1 = box
    crop = arr[y0:y1, x0:x1]
    if crop.shape[:2] == (out_h, out_w):
        return crop
    out = np.empty((out_h, out_w, *arr.shape[2:]), np.uint8)
    resize_box_into(arr, box, out, flip=False)
    return out


def resize_box_into(
    arr: np.ndarray, box: tuple[int, int, int, int], out: np.ndarray, *, flip: bool
) -> None:
    """:func:`resize_box` written straight into ``out`` (a C-contiguous HxW[xC] uint8 array
    of the output size, a batch slot), mirrored left-right when ``flip``: no intermediate
    image where the resize can write there itself."""
    cv2 = load()
    if cv2 is None:
        raise ImportError('OpenCV is not installed: pip install "datumio[opencv]"')
    out_h, out_w = out.shape[:2]
    x0, y0, x1, y1 = box
    shrink = x1 - x0 > out_w and y1 - y0 > out_h
    dst = out[:, :, 0] if out.ndim == 3 and out.shape[2] == 1 else out  # OpenCV's 1 channel
    if shrink and (native := _native_area()) is not None and _packed(arr):
        native(arr, x0, y0, x1, y1, out if arr.ndim == out.ndim else dst, flip)
        return
    crop = arr[y0:y1, x0:x1]
    if crop.shape[:2] == (out_h, out_w):
        resized = crop
    else:
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        if not flip:
            cv2.resize(crop, (out_w, out_h), dst=dst, interpolation=interp)
            return
        resized = cv2.resize(crop, (out_w, out_h), interpolation=interp)
    if flip:
        cv2.flip(resized, 1, dst=dst)
    else:
        np.copyto(out, resized.reshape(out.shape))


@functools.cache
def _native_area() -> Callable[[np.ndarray, int, int, int, int, np.ndarray, bool], None] | None:
    native = jpeg_roi.extension()
    return None if native is None else native.area


def _packed(arr: np.ndarray) -> bool:
    """uint8 with pixels packed along each row (what the compiled resampling reads)."""
    channels = arr.shape[2] if arr.ndim == 3 else 1
    return bool(
        arr.dtype == np.uint8
        and arr.strides[1] == channels
        and (arr.ndim == 2 or arr.strides[2] == 1)
        and arr.strides[0] > 0
    )


def warp_affine(
    arr: np.ndarray,
    m: Affine,
    out_w: int,
    out_h: int,
    *,
    resample: str,
    fill_mode: str,
    fill_value: float | tuple[float, ...],
) -> np.ndarray:
    """``arr`` (HxW or HxWxC, C <= 4, uint8 or float32) resampled through ``m``."""
    cv2 = load()
    if cv2 is None:
        raise ImportError('OpenCV is not installed: pip install "datumio[opencv]"')
    interp = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR}.get(
        resample, cv2.INTER_CUBIC
    )
    border = {
        "constant": cv2.BORDER_CONSTANT,
        "edge": cv2.BORDER_REPLICATE,
        "reflect": cv2.BORDER_REFLECT_101,
        "symmetric": cv2.BORDER_REFLECT,
        "wrap": cv2.BORDER_WRAP,
    }[fill_mode]
    a = m.m
    matrix = np.array(a[:2], dtype=np.float64)
    matrix[:, 2] += 0.5 * (a[:2, 0] + a[:2, 1]) - 0.5
    if interp == cv2.INTER_NEAREST:
        matrix[:, 2] += NEAREST_NUDGE
    values = (fill_value,) if isinstance(fill_value, int | float) else tuple(fill_value)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if len(values) == 1:
        values = values * channels
    out: np.ndarray = cv2.warpAffine(
        arr,
        matrix,
        (out_w, out_h),
        flags=interp | cv2.WARP_INVERSE_MAP,
        borderMode=border,
        borderValue=tuple(float(v) for v in values) + (0.0,) * (4 - len(values)),
    )
    if arr.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]  # OpenCV drops a single channel axis
    return out


def _unflipped(image: np.ndarray) -> tuple[np.ndarray, int | None] | None:
    """(the C-contiguous array ``image`` is a flipped view of, its ``cv2.flip`` code) for an
    HxWxC ``image``; the code is None when ``image`` is not flipped. None when neither."""
    if image.ndim != 3 or image.strides[2] < 0:
        return None
    flip_y, flip_x = image.strides[0] < 0, image.strides[1] < 0
    base = image[:: -1 if flip_y else 1, :: -1 if flip_x else 1]
    if not base.flags.c_contiguous:
        return None
    code = -1 if flip_x and flip_y else 1 if flip_x else 0 if flip_y else None
    return base, code


def copy_planes(image: np.ndarray, out: np.ndarray) -> bool:
    """``out[c] = image[:, :, c]``: an HxWxC uint8 ``image`` (or a flipped view of a
    C-contiguous one) into CxHxW ``out`` by ``cv2.split`` straight into the planes (8x
    faster than numpy's transposing copy). False, with nothing written, when OpenCV is
    missing or the arrays do not suit it.
    """
    cv2 = load()
    found = _unflipped(image)
    if cv2 is None or found is None or out.shape != (image.shape[2], *image.shape[:2]):
        return False
    channels = image.shape[2]
    if image.dtype != out.dtype or not 1 <= channels <= 4:
        return False
    if not all(out[c].flags.c_contiguous for c in range(channels)):
        return False
    base, code = found
    if code is not None:
        base = cv2.flip(base, code)
        if base.ndim == 2:
            base = base[:, :, None]
    if channels == 1:
        np.copyto(out[0], base[:, :, 0])
    else:
        cv2.split(base, [out[c] for c in range(channels)])
    return True


def copy_flipped(image: np.ndarray, out: np.ndarray) -> bool:
    """``out[...] = image`` for an HxWxC uint8 ``image`` that is a flipped view (negative
    strides) of a C-contiguous array, by ``cv2.flip`` (about 40x faster than numpy's strided
    copy). False, with nothing written, when OpenCV is missing or the arrays do not suit it.
    """
    cv2 = load()
    found = _unflipped(image)
    if cv2 is None or found is None or found[1] is None or image.shape != out.shape:
        return False
    if image.dtype != out.dtype or image.shape[2] > 4 or not out.flags.c_contiguous:
        return False
    base, code = found
    if image.shape[2] == 1:
        cv2.flip(base[:, :, 0], code, dst=out[:, :, 0])
    else:
        cv2.flip(base, code, dst=out)
    return True


def normalize_planes(
    image: np.ndarray, scale: np.ndarray, offset: np.ndarray, out: np.ndarray
) -> bool:
    """``out[c] = image[:, :, c] * scale[c] + offset[c]``: HxWxC uint8 to CxHxW float32 in
    one pass per channel (numpy needs two over the whole output). False, with nothing
    written, when OpenCV is missing or the arrays do not suit it (the caller uses numpy).
    """
    cv2 = load()
    if cv2 is None or image.ndim != 3 or out.dtype != np.float32 or min(image.strides) < 0:
        return False  # a flipped view: OpenCV would copy it first
    channels = image.shape[2]
    if not 1 <= channels <= 4 or not all(out[c].flags.c_contiguous for c in range(channels)):
        return False
    planes = cv2.split(image) if channels > 1 else (image[:, :, 0],)
    for c in range(channels):
        plane = planes[c]
        cv2.addWeighted(
            plane, float(scale[c]), plane, 0.0, float(offset[c]), dst=out[c], dtype=cv2.CV_32F
        )
    return True
