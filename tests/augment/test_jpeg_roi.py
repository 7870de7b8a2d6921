"""Region-of-interest JPEG decoding (``datumio.augment.jpeg_roi``, compiled ``_jpegroi``).

The rows and columns a crop needs, decoded alone, are the pixels a whole decode gives
there, bit for bit, on every JPEG layout: 4:4:4, 4:2:2, 4:2:0, grey, progressive, restart
markers, odd sizes, and at every DCT scale. What it cannot take (CMYK) is refused so that
the caller decodes the whole image; the Loader's crop path gives the same pixels with it.
"""

from __future__ import annotations

import io
import platform
import sys

import numpy as np
import pytest
from PIL import Image

import datumio
from datumio.augment import jpeg_roi
from datumio.augment.pipeline import apply, decode_for
from datumio.augment.seeds import sample_rng

needs_roi = pytest.mark.skipif(
    not jpeg_roi.available(), reason="region decoding is not built here (no C compiler)"
)

SCALES = {1: None, 2: "reduce2", 4: "reduce4", 8: "reduce8"}


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth gradients with noise and edges: chroma that upsampling has to interpolate."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    base[h // 3 : h // 2, w // 4 : w // 2] = (250, 20, 60)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _jpeg(array: np.ndarray, **save: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "JPEG", quality=88, **save)
    return out.getvalue()


LAYOUTS = {
    "444": {"subsampling": 0},
    "422": {"subsampling": 1},
    "420": {"subsampling": 2},
    "progressive": {"progressive": True},
    "restart markers": {"restart_marker_rows": 1},
}


def _whole(data: bytes, gray: bool, scale: int) -> np.ndarray:
    """Pillow's decode of the whole image at 1/scale (libjpeg-turbo's DCT scaling)."""
    img = Image.open(io.BytesIO(data))
    if scale > 1:
        img.draft(img.mode, (img.width // scale, img.height // scale))
    arr = np.asarray(img.convert("L" if gray else "RGB"))
    return arr[:, :, None] if gray else arr


def _boxes(h: int, w: int, rng: np.random.Generator, n: int) -> list[tuple[int, int, int, int]]:
    fixed = [(0, 0, w, h), (0, 0, 1, 1), (w - 1, h - 1, w, h), (16, 8, 32, 24), (1, 1, w - 1, h)]
    out = [b for b in fixed if b[2] <= w and b[3] <= h]
    for _ in range(n):
        x0, y0 = int(rng.integers(0, w - 1)), int(rng.integers(0, h - 1))
        out.append((x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))))
    return out


@needs_roi
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("size", [(120, 168), (97, 131)])  # whole iMCUs, and ragged edges
def test_a_region_is_the_whole_decodes_pixels(layout: str, size: tuple[int, int]) -> None:
    data = _jpeg(_photo(*size, seed=len(layout)), **LAYOUTS[layout])
    rng = np.random.default_rng(3)
    for scale in SCALES:
        whole = _whole(data, False, scale)
        h, w = whole.shape[:2]
        for box in _boxes(h, w, rng, 12):
            region, x0, y0, dims = jpeg_roi.decode_box(data, box, gray=False, scale=scale)
            left, top, right, bottom = box
            assert dims == (h, w) and x0 <= left and y0 == top
            got = region[:, left - x0 : right - x0]
            np.testing.assert_array_equal(got, whole[top:bottom, left:right], f"{box} 1/{scale}")


@needs_roi
def test_grey_images() -> None:
    """(A colour JPEG stored grey is not a region case: libjpeg's grey is the Y channel,
    Pillow's a weighted sum of RGB; the crop path decodes those whole.)"""
    rng = np.random.default_rng(5)
    for array in (_photo(90, 120, 1)[:, :, 0], _photo(97, 131, 2)[:, :, 1]):
        data = _jpeg(array)
        whole = _whole(data, True, 1)
        for box in _boxes(*array.shape, rng, 8):
            region, x0, _, _ = jpeg_roi.decode_box(data, box, gray=True)
            left, top, right, bottom = box
            assert region.shape[2] == 1
            np.testing.assert_array_equal(
                region[:, left - x0 : right - x0], whole[top:bottom, left:right]
            )


@needs_roi
def test_what_it_cannot_decode_is_refused_for_the_caller_to_decode_whole() -> None:
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 30), (10, 20, 30, 40)).save(cmyk, "JPEG")
    with pytest.raises(ValueError, match="region decode failed"):
        jpeg_roi.decode_box(cmyk.getvalue(), (0, 0, 10, 10), gray=False)
    data = _jpeg(_photo(40, 48, 0))
    with pytest.raises(ValueError, match="outside the decoded image"):
        jpeg_roi.decode_box(data, (0, 30, 10, 41), gray=False)
    with pytest.raises(ValueError, match="region decode failed"):
        jpeg_roi.decode_box(b"not a jpeg at all", (0, 0, 1, 1), gray=False)


@needs_roi
@pytest.mark.parametrize("layout", ["420", "progressive"])
def test_the_crop_path_gives_the_pixels_of_a_whole_decode(tmp_path, layout: str) -> None:
    """Kept JPEGs through the Loader's crop recipe: the region path (``apply``) equals the
    general path (``decode_for``: the whole image decoded, then cut and resized)."""
    with datumio.Writer(tmp_path / "kept.lmdb") as writer:
        for i in range(4):
            writer.add(_jpeg(_photo(150 + 7 * i, 200 - 9 * i, i), **LAYOUTS[layout]), i % 2)
    ds = datumio.open(tmp_path / "kept.lmdb")
    spec = datumio.Transform(size=96, crop_scale=(0.08, 1.0), flip=0.5, dtype="uint8")
    spec = spec.resolved({"mean": [0.0] * 3, "std": [1.0] * 3}, 3)
    for i in range(len(ds)):
        payload, _, shape = ds.stored(i)
        for position in range(6):
            fast = np.zeros(spec.output_shape(3), np.uint8)
            apply(spec, payload, sample_rng(1, 0, position), fast, encoding="keep", shape=shape)
            image = decode_for(
                spec, payload, sample_rng(1, 0, position), encoding="keep", shape=shape
            )
            np.testing.assert_array_equal(fast, np.ascontiguousarray(image.transpose(2, 0, 1)))


@pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"), reason="Linux x86-64 only"
)
def test_the_default_install_has_the_fast_path_on_linux_x86_64() -> None:
    assert jpeg_roi.library() is not None


@needs_roi
def test_the_loader_counts_how_its_crops_were_decoded(tmp_path) -> None:
    with datumio.Writer(tmp_path / "kept.lmdb") as writer:
        for i in range(6):
            writer.add(_jpeg(_photo(120, 150, i)), i % 2)
    spec = datumio.Transform(size=64, crop_scale=(0.08, 1.0), flip=0.5)
    with datumio.Loader(tmp_path / "kept.lmdb", 3, transform=spec, workers=1) as loader:
        for _ in loader:
            pass
        assert loader.stats.jpeg_regions == loader.stats.samples == 6
        assert loader.stats.jpeg_whole == 0
    resize = datumio.Transform(size=64)  # no random crop: whole decodes, not counted
    with datumio.Loader(tmp_path / "kept.lmdb", 3, transform=resize, workers=1) as loader:
        for _ in loader:
            pass
        assert loader.stats.jpeg_regions == loader.stats.jpeg_whole == 0


@needs_roi
@pytest.mark.parametrize(
    ("fill_mode", "resample"),
    [("constant", "bilinear"), ("edge", "bicubic"), ("reflect", "bilinear"), ("wrap", "bicubic")],
)
@pytest.mark.parametrize("layout", ["420", "444", "progressive", "grey"])
def test_the_affine_recipe_decodes_only_what_its_warp_samples(
    tmp_path, layout: str, fill_mode: str, resample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotation, zoom, translation and flips through one warp: the part of the JPEG the
    warp samples, decoded alone (at DCT scale for the large images), gives the pixels of
    the whole image decoded, and most samples take that path."""
    gray = layout == "grey"
    with datumio.Writer(tmp_path / "kept.lmdb") as writer:
        for i, (h, w) in enumerate([(150, 200), (201, 157), (410, 530), (97, 260)]):
            photo = _photo(h, w, i)
            writer.add(_jpeg(photo[:, :, 0] if gray else photo, **LAYOUTS.get(layout, {})), i % 2)
    ds = datumio.open(tmp_path / "kept.lmdb")
    channels = ds.stored(0)[2][2]
    spec = datumio.Transform(
        size=96,
        rotation_range=(-25.0, 25.0),
        zoom_range=(0.8, 1.2),
        translation_range=(-12.0, 12.0),
        do_flip_lr=True,
        fill_mode=fill_mode,
        resample=resample,
        dtype="uint8",
    ).resolved({"mean": [0.0] * 3, "std": [1.0] * 3}, channels)
    before = jpeg_roi.TALLY.regions
    outputs = []
    for i in range(len(ds)):
        payload, _, shape = ds.stored(i)
        for position in range(8):
            out = np.zeros(spec.output_shape(channels), np.uint8)
            apply(spec, payload, sample_rng(2, 0, position), out, encoding="keep", shape=shape)
            outputs.append(out)
    regions = jpeg_roi.TALLY.regions - before
    monkeypatch.setattr(jpeg_roi, "available", lambda: False)
    differ = total = 0
    for k, (i, position) in enumerate((i, p) for i in range(len(ds)) for p in range(8)):
        payload, _, shape = ds.stored(i)
        whole = np.zeros(spec.output_shape(channels), np.uint8)
        apply(spec, payload, sample_rng(2, 0, position), whole, encoding="keep", shape=shape)
        diff = np.abs(outputs[k].astype(int) - whole.astype(int))
        assert diff.max() <= 1, (i, position)
        differ, total = differ + int((diff > 0).sum()), total + diff.size
    # The region's pixels are the whole decode's; the warp's matrix, moved by the region's
    # corner, rounds its fixed-point coordinates differently once in a while.
    assert differ <= total / 1000, (differ, total)
    assert regions >= (16 if fill_mode in ("constant", "edge") else 2), regions  # others: inside
