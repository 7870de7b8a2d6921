"""Draw awkward and broken input files in code, so no binary fixture is committed.

Every function writes one file at ``path`` (creating parent folders) and returns the
path. Images are tiny on purpose; only the bombs claim large sizes, and they are cheap
on disk because their rows compress to nothing.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

MARKER = (255, 0, 0)
FIELD = (0, 0, 255)


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def encoded(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def save(img: Image.Image, path: Path, fmt: str, **params: object) -> Path:
    return write_bytes(path, encoded(img, fmt, **params))


def noise_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def png_bytes(
    width: int, height: int, colour_type: int, bit_depth: int, rows: list[bytes]
) -> bytes:
    """A PNG written by hand (Pillow cannot write every PNG flavour); rows unfiltered."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


# -- broken files -------------------------------------------------------------------------


def zero_byte(path: Path) -> Path:
    return write_bytes(path, b"")


def truncated(path: Path, fmt: str) -> Path:
    """A noisy 64x64 JPEG or PNG cut in half (inside the pixel data, after the header)."""
    data = encoded(noise_rgb(64, 64), fmt)
    return write_bytes(path, data[: len(data) // 2])


def text_file(path: Path) -> Path:
    return write_bytes(path, b"label notes: these are not pixels\n")


def random_bytes(path: Path, size: int = 2048, seed: int = 1) -> Path:
    return write_bytes(path, np.random.default_rng(seed).bytes(size))


def bomb_png(path: Path, width: int, height: int) -> Path:
    """An all-black 1-bit PNG: a few hundred bytes on disk, width*height pixels decoded."""
    row = bytes((width + 7) // 8)
    return write_bytes(path, png_bytes(width, height, 0, 1, [row] * height))


# -- awkward but valid images ------------------------------------------------------------


def cmyk_jpeg(path: Path) -> Path:
    arr = np.zeros((12, 16, 4), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, 16, dtype=np.uint8)[None, :]
    arr[..., 1] = np.linspace(255, 0, 12, dtype=np.uint8)[:, None]
    arr[..., 2] = 60
    arr[..., 3] = 30
    return save(Image.fromarray(arr, "CMYK"), path, "JPEG", quality=95)


def gray16_png(path: Path, values: np.ndarray) -> Path:
    """A 16-bit grayscale PNG (Pillow mode I;16) of the uint16 array ``values``."""
    return save(Image.fromarray(values.astype(np.uint16)), path, "PNG")


def rgb16_png(path: Path, values: np.ndarray) -> Path:
    """A 16-bit RGB PNG of the HxWx3 uint16 ``values`` (hand-made: Pillow cannot write it)."""
    height, width, _ = values.shape
    big_endian = values.astype(">u2")
    return write_bytes(
        path, png_bytes(width, height, 2, 16, [big_endian[y].tobytes() for y in range(height)])
    )


def one_bit_png(path: Path) -> Path:
    """An 8x6 1-bit checkerboard (white where x + y is even)."""
    img = Image.new("1", (8, 6), 0)
    for y in range(6):
        for x in range(8):
            if (x + y) % 2 == 0:
                img.putpixel((x, y), 1)
    return save(img, path, "PNG")


def palette_png(path: Path, alpha: list[int] | int) -> Path:
    """4x1 palette image of indices 0..3 = (1,2,3), red, green, blue; ``alpha`` is tRNS."""
    img = Image.new("P", (4, 1))
    img.putpalette([1, 2, 3, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    img.putdata([0, 1, 2, 3])
    transparency = bytes(alpha) if isinstance(alpha, list) else alpha
    return save(img, path, "PNG", transparency=transparency)


def rgba_png(path: Path) -> Path:
    """3x1: fully transparent (10,20,30), opaque (200,100,50), half-transparent black."""
    img = Image.new("RGBA", (3, 1))
    img.putdata([(10, 20, 30, 0), (200, 100, 50, 255), (0, 0, 0, 128)])
    return save(img, path, "PNG")


def la_png(path: Path) -> Path:
    """2x1 gray + alpha: (40, transparent), (40, opaque)."""
    img = Image.new("LA", (2, 1))
    img.putdata([(40, 0), (40, 255)])
    return save(img, path, "PNG")


def colour_key_png(path: Path, mode: str) -> Path:
    """3x1 PNG of ``mode`` (1, L, I;16, RGB) whose first pixel is the tRNS colour key.

    Pixels: 1 -> (0, 1, 1); L -> (7, 100, 200); I;16 -> (7, 1000, 65535);
    RGB -> ((1, 2, 3), (200, 100, 50), (9, 9, 9)). The key is the first pixel's value.
    """
    if mode == "RGB":
        img = Image.new("RGB", (3, 1))
        img.putdata([(1, 2, 3), (200, 100, 50), (9, 9, 9)])
        return save(img, path, "PNG", transparency=(1, 2, 3))
    values = {"1": [0, 1, 1], "L": [7, 100, 200], "I;16": [7, 1000, 65535]}[mode]
    dtype = np.uint16 if mode == "I;16" else np.uint8
    img = Image.fromarray(np.array([values], dtype=dtype))
    if mode == "1":
        img = img.point(lambda v: 255 * v).convert("1")
    return save(img, path, "PNG", transparency=values[0])


def marker_image(width: int, height: int) -> Image.Image:
    """A FIELD-coloured image with a MARKER square in the top-left corner."""
    img = Image.new("RGB", (width, height), FIELD)
    img.paste(MARKER, (0, 0, width // 3, height // 3))
    return img


def exif_jpeg(path: Path, orientation: int, size: tuple[int, int] = (24, 16)) -> Path:
    """A JPEG stored ``size`` (w, h) with the marker top-left and EXIF orientation set."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(marker_image(*size), path, "JPEG", quality=95, exif=exif.tobytes())


def animated_gif(path: Path, colours: list[tuple[int, int, int]]) -> Path:
    """A 6x4 GIF with one solid frame per colour."""
    frames = [Image.new("RGB", (6, 4), c) for c in colours]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return write_bytes(path, buf.getvalue())
