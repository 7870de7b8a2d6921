"""Decode only the part of a JPEG that a crop needs (the optional ``datumio._jpegroi``).

libjpeg-turbo can skip the rows above and below a region (``jpeg_skip_scanlines``: no
inverse DCT, no colour conversion) and decode only the iMCU columns it covers
(``jpeg_crop_scanline``). A RandomResizedCrop keeps about half of an image's area on
average, so a worker decodes about half the pixels. The pixels of the region are the ones
a whole decode gives (``tests/augment/test_jpeg_roi.py`` checks it on every layout).

The extension is built at install time where a C compiler exists and loads the
libjpeg-turbo that Pillow's wheel ships (else the system's ``libjpeg.so.62``) on first use.
Without either (or with ``DATUMIO_JPEG_ROI=0`` in the environment), :func:`available` is
False and callers decode whole images; the pixels are the same either way.

Thread/fork/pickle: the library is loaded once per process; decoding releases the GIL.
"""

from __future__ import annotations

import ctypes.util
import functools
import glob
import os
from types import ModuleType

import numpy as np

__all__ = ["TALLY", "Tally", "available", "decode_box", "extension", "library"]

#: Columns decoded on each side of the box beyond it (clipped to the image by the caller's
#: box check in the extension; see :func:`decode_box`).
_MARGIN = 2


class Tally:
    """How the crop recipe's JPEGs were decoded in this process so far: ``regions`` (the
    crop alone) and ``whole`` (the whole image: no extension, or a JPEG it refused). The
    Loader reports the counts of its workers in ``loader.stats``."""

    def __init__(self) -> None:
        self.regions = 0
        self.whole = 0


#: This process's :class:`Tally`.
TALLY = Tally()


@functools.cache
def extension() -> ModuleType | None:
    """The compiled ``datumio._jpegroi`` (region decoding and the area shrink of
    :func:`datumio.augment.opencv.resize_box`), None where it was not built."""
    try:
        from datumio import _jpegroi
    except ImportError:
        return None
    return _jpegroi


@functools.cache
def library() -> str | None:
    """The libjpeg-turbo shared library in use (None: none, no extension, or switched off
    with the environment variable ``DATUMIO_JPEG_ROI=0``)."""
    native = extension()
    if native is None or os.environ.get("DATUMIO_JPEG_ROI", "1") == "0":
        return None
    for path in _candidates():
        if native.load(path):
            return path
    return None


def _candidates() -> list[str]:
    found = []
    try:
        import PIL

        libs = os.path.join(os.path.dirname(os.path.dirname(PIL.__file__)), "pillow.libs")
        found += sorted(glob.glob(os.path.join(libs, "libjpeg-*.so*")))
    except ImportError:
        pass
    system = ctypes.util.find_library("jpeg")
    return [*found, *([system] if system else []), "libjpeg.so.62"]


def available() -> bool:
    """Whether region decoding works in this process."""
    return library() is not None


def decode_box(
    source: bytes | memoryview, box: tuple[int, int, int, int], gray: bool, scale: int = 1
) -> tuple[np.ndarray, int, int, tuple[int, int]]:
    """The pixels covering ``box`` = (left, top, right, bottom) of the image decoded at
    ``1/scale``: an HxWxC uint8 array, the (x, y) of its top-left corner in that image
    (its columns are widened to the JPEG's iMCU grid; its rows are the box's), and the
    (height, width) of the whole image at that scale, for the caller to check.

    Raises:
        ValueError: the data does not decode, or the box is outside the image.
    """
    native = extension()
    if native is None or library() is None:
        raise ValueError("region decoding is not available here (see available())")
    left, top, right, bottom = box
    # Two columns more on each side (the region then starts at the iMCU boundary at or
    # before them): the 2:1 chroma upsampling of a pixel at the region's edge reads the
    # chroma sample beyond it, which a region starting right at the box would not have.
    buf, x0, y0, width, height, full_w, full_h = native.decode(
        source, max(left - _MARGIN, 0), top, right + _MARGIN, bottom, scale, gray
    )
    channels = 1 if gray else 3
    arr = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, channels)
    return arr, x0, y0, (full_h, full_w)
