"""Kept source JPEGs: the plain ones decode with OpenCV to Pillow's pixels, the rest
(EXIF-rotated, CMYK, 12-bit, not JPEG) are recognised and left to Pillow."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

import datumio
from datumio.augment import Transform, decode_for, opencv, sample_rng
from datumio.augment.jpeg import plain_components
from datumio.codec import decode

pytest.importorskip("cv2")
pytestmark = pytest.mark.timeout(60)


def _picture(h: int = 70, w: int = 90, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x * y) % 256], axis=-1).astype(np.uint8)
    img[h // 3 : h // 2, w // 4 : w // 2] = rng.integers(0, 256, 3)
    return img


def _jpeg(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **save)
    return buf.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


RGB = Image.fromarray(_picture())
PLAIN = {
    "baseline": _jpeg(RGB, quality=90),
    "progressive": _jpeg(RGB, quality=85, progressive=True),
    "444": _jpeg(RGB, quality=95, subsampling=0),
    "grey": _jpeg(RGB.convert("L"), quality=90),
    "exif upright": _jpeg(RGB, quality=90, exif=_exif(1)),
    "icc profile": _jpeg(RGB, quality=90, icc_profile=b"\x00" * 3000),
}
NOT_PLAIN = {
    "exif rotated": _jpeg(RGB, quality=90, exif=_exif(6)),
    "exif mirrored": _jpeg(RGB, quality=90, exif=_exif(2)),
    "cmyk": _jpeg(RGB.convert("CMYK"), quality=90),
    "adobe rgb": _jpeg(RGB, quality=90, keep_rgb=True),  # APP14 Adobe, no YCbCr transform
    "png": (lambda b: (RGB.save(b, format="PNG"), b.getvalue())[1])(io.BytesIO()),
    "empty": b"",
    "garbage": b"\xff\xd8\xff\xe0\x00",
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_a_plain_jpeg_decodes_with_opencv_to_pillows_pixels(name: str) -> None:
    data = PLAIN[name]
    components = plain_components(data)
    assert components == (1 if name == "grey" else 3)
    ours = opencv.decode_jpeg(data, gray=False, scale=1)
    assert ours is not None
    np.testing.assert_array_equal(ours, decode(data))  # Pillow, the module's rules


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_anything_else_is_left_to_pillow(name: str) -> None:
    assert plain_components(NOT_PLAIN[name]) is None


def test_a_twelve_bit_or_lossless_frame_is_not_plain() -> None:
    data = bytearray(PLAIN["baseline"])
    at = data.index(b"\xff\xc0")
    data[at + 4] = 12  # sample precision
    assert plain_components(bytes(data)) is None
    data[at + 4] = 8
    data[at + 1] = 0xC3  # lossless
    assert plain_components(bytes(data)) is None


def test_a_broken_exif_block_is_left_to_pillow() -> None:
    good = PLAIN["exif upright"]
    at = good.index(b"Exif\x00\x00") + 6
    broken = good[:at] + b"XX" + good[at + 2 :]  # not a TIFF header
    assert plain_components(broken) is None
    # An orientation of the wrong type is not guessed at either.
    tiff = bytearray(good[at:])
    (first,) = struct.unpack_from("<I", tiff, 4) if tiff[:2] == b"II" else (None,)
    if first is not None:
        struct.pack_into("<H", tiff, first + 2 + 2, 4)  # type LONG instead of SHORT
        assert plain_components(good[:at] + bytes(tiff)) is None


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every file above (bar the broken ones) ingested with ``encode="keep"``."""
    root = tmp_path_factory.mktemp("kept")
    others = ("exif rotated", "exif mirrored", "cmyk", "adobe rgb")
    files = {**PLAIN, **{k: NOT_PLAIN[k] for k in others}}
    for k, (name, data) in enumerate(sorted(files.items())):
        cls = root / "src" / ("plain" if name in PLAIN else "other")
        cls.mkdir(parents=True, exist_ok=True)
        (cls / f"{k:02d}.jpg").write_bytes(data)
    out = root / "out.lmdb"
    datumio.ingest(str(root / "src"), str(out), datumio.IngestOptions(workers=1, encode="keep"))
    return str(out)


@pytest.mark.parametrize("backend", ["auto", "opencv"])
def test_kept_records_give_the_pixels_of_their_upright_decoded_image(
    kept: str, backend: str
) -> None:
    """The reference is independent of the decode path: the record decoded by Pillow with
    the module's rules (EXIF applied), then the same transform on that array."""
    ds = datumio.open(kept)
    assert ds.encoding == "keep" and len(ds) == 10
    spec = Transform(
        size=(40, 48),
        rotation_range=(-20.0, 20.0),
        zoom_range=(0.9, 1.1),
        do_flip_lr=True,
        dtype="uint8",
        layout="HWC",
        backend=backend,
    )
    for i in range(len(ds)):
        payload, _, shape = ds.stored(i)
        upright = decode(bytes(payload))
        assert upright.shape == tuple(shape)
        got = decode_for(spec, payload, sample_rng(4, 0, i), encoding="keep", shape=shape)
        want = decode_for(spec, upright, sample_rng(4, 0, i))
        np.testing.assert_array_equal(got, want)
