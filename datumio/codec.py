"""Image bytes <-> uint8 pixel arrays, with one set of normalisation rules.

Ingest and every reader decode through :func:`decode`, so an image stored with
``encoding="keep"`` (the original bytes) comes back with exactly the pixels that
ingest checked. The rules, applied in this order:

* the format is sniffed from the content by Pillow, never from a file name;
* animated images (GIF, APNG, WebP, multi-page TIFF) give their first frame;
* the EXIF orientation tag is applied (the image is turned upright);
* 16-bit and 32-bit integer images are scaled to 8 bit (``v * 255 / 65535``,
  rounded), never clipped;
* 1-bit, palette, CMYK, YCbCr, LAB and HSV images are converted to RGB (or L);
* 16-bit RGB(A) PNGs keep each sample's high byte (``v >> 8``: Pillow has no 16-bit
  RGB mode), which is within 1 of the scaled value and never clips;
* transparency (RGBA, LA, PA, palette with a transparent colour, and the tRNS colour
  key of 1-bit, grayscale, 16-bit grayscale and RGB PNGs) is composited over
  ``background`` (white by default);
* the result is HxWxC uint8, C = 3 (RGB) or 1 (``gray=True``).

Images whose width*height exceeds ``max_pixels`` are refused as decompression
bombs before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from struct import error as struct_error
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from datumio.errors import DecodeError, FileLimitError, OptionError, out_of_files

#: Pillow's own default limit; ``--max-pixels`` changes it per run.
DEFAULT_MAX_PIXELS = 89_478_485
DEFAULT_BACKGROUND = (255, 255, 255)

Encoding = Literal["keep", "jpeg", "png", "webp", "raw"]
ENCODINGS: tuple[str, ...] = ("keep", "jpeg", "png", "webp", "raw")
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_CONVERT_TO_RGB = {"1", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"}
#: EXIF orientations (:func:`exif_orientation`) that turn the image by 90 degrees, so the
#: upright image has the stored width and height swapped (5-8 transpose; 1-4 do not).
SWAPS_AXES = frozenset({5, 6, 7, 8})


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``data`` lazily (header only), refusing non-images and decompression bombs."""
    if not data:
        raise DecodeError("empty file")
    with warnings.catch_warnings():
        # The bomb check is ours (max_pixels); Pillow's global limit would ignore the option.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise DecodeError("not an image", "no decoder recognises the content") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            if out_of_files(exc):  # Pillow loads a format's plugin on first use: no fd left
                raise FileLimitError(f"cannot decode: {exc}") from exc
            # A file cut inside its header is truncated, like one cut inside its pixels.
            reason = "truncated" if _reason_of(exc) == "truncated" else "corrupt header"
            raise DecodeError(reason, str(exc)) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    width, height = img.size
    if width < 1 or height < 1:
        raise DecodeError("empty image", f"size {width}x{height}")
    if width * height > max_pixels:
        raise DecodeError(
            "decompression bomb",
            f"{width}x{height} = {width * height} pixels > max_pixels={max_pixels}",
        )
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale high-bit-depth grayscale modes to 8 bit without clipping."""
    arr = np.asarray(img)
    if img.mode == "F":
        raise DecodeError("unsupported mode", "32-bit float images have no defined 8-bit scale")
    # "I" holds 16-bit PNG/TIFF data in most files; wider values are scaled by their own range.
    top = 65535 if arr.max(initial=0) <= 65535 else int(arr.max())
    scaled = (arr.astype(np.float64) * (255.0 / top)).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _flatten(img: Image.Image, gray: bool, background: tuple[int, int, int]) -> Image.Image:
    """Composite transparency over ``background`` and convert to RGB or L."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        key = img.info.get("transparency")
        gray8 = _to_8bit(img)
        if isinstance(key, int):
            # The tRNS key is a 16-bit value: find it before scaling merges neighbours.
            opaque = np.where(np.asarray(img) == key, 0, 255).astype(np.uint8)
            gray8.putalpha(Image.fromarray(opaque, mode="L"))
        img, mode = gray8, gray8.mode
    elif mode in ("1", "L", "RGB") and "transparency" in img.info:
        # A PNG tRNS colour key: pixels of exactly that value are fully transparent.
        img, mode = img.convert("RGBA"), "RGBA"
    if (mode == "P" and "transparency" in img.info) or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(base, rgba).convert("RGB")
        mode = "RGB"
    elif mode in _CONVERT_TO_RGB:
        img = img.convert("RGB")
        mode = "RGB"
    target = "L" if gray else "RGB"
    if mode != target:
        img = img.convert(target)
    # The pixels are flat now; a leftover key would be written again by a PNG re-encode.
    img.info.pop("transparency", None)
    return img


def load_normalised(
    data: bytes,
    *,
    gray: bool = False,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode ``data`` fully and return an upright 8-bit RGB (or L) Pillow image."""
    return normalise(open_image(data, max_pixels), gray=gray, background=background)


def normalise(
    img: Image.Image,
    *,
    gray: bool = False,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Load an opened image and apply the module's rules (first frame, EXIF, 8 bit, RGB/L).

    ``draft_size`` lets the JPEG decoder scale down by a power of two (DCT scaling) while
    keeping both sides (in stored, not EXIF-rotated, orientation) at least that large.
    """
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        if draft_size is not None and img.format == "JPEG":
            img.draft(img.mode if img.mode in ("RGB", "L") else None, draft_size)
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # no copy when already upright
        return _flatten(img, gray, background)
    except DecodeError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct_error) as exc:
        if out_of_files(exc):
            raise FileLimitError(f"cannot decode: {exc}") from exc
        raise DecodeError(_reason_of(exc), str(exc)) from exc


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation tag of an opened image (1 when absent or unreadable)."""
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block must not reject an otherwise good image
        return 1


def _reason_of(exc: BaseException) -> str:
    text = str(exc).lower()
    if "truncated" in text or isinstance(exc, EOFError):
        return "truncated"
    return "corrupt data"


def decode(
    data: bytes,
    *,
    gray: bool = False,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode image bytes to an HxWxC uint8 array following the module's rules."""
    img = load_normalised(data, gray=gray, background=background, max_pixels=max_pixels)
    return as_array(img)


def as_array(img: Image.Image) -> np.ndarray:
    """An HxWxC uint8 array of an RGB or L Pillow image (C = 1 for L)."""
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def encode(img: Image.Image, encoding: str, quality: int = 90) -> bytes:
    """Encode an RGB/L image as JPEG, PNG or WebP bytes, or raw row-major pixels."""
    if encoding == "raw":
        return as_array(img).tobytes()
    fmt = _PIL_FORMATS.get(encoding)
    if fmt is None:
        raise OptionError(
            f"encoding={encoding!r} cannot re-encode; use one of jpeg, png, webp, raw"
        )
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format=fmt, compress_level=6)
    elif fmt == "WEBP":
        img.save(buf, format=fmt, quality=quality, method=4)
    else:
        img.save(buf, format=fmt, quality=quality, subsampling=2 if quality < 95 else 0)
    return buf.getvalue()


def decode_record(
    payload: bytes | memoryview,
    encoding: str,
    shape: tuple[int, int, int],
    *,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> np.ndarray:
    """Decode one stored record back to pixels; ``shape`` is the stored (H, W, C)."""
    if encoding == "raw":
        arr = np.frombuffer(payload, dtype=np.uint8)
        if arr.size != shape[0] * shape[1] * shape[2]:
            raise DecodeError("corrupt data", f"{arr.size} raw bytes for shape {shape}")
        return arr.reshape(shape)
    arr = decode(bytes(payload), gray=shape[2] == 1, background=background, max_pixels=2**62)
    if arr.shape != tuple(shape):
        raise DecodeError("corrupt data", f"decoded shape {arr.shape} != stored shape {shape}")
    return arr
