"""Pillow's and OpenCV's warps agree, OpenCV decodes JPEG records bit-identically, ``auto``
picks OpenCV when installed, errors are clear."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, Slot, make_dataset
from PIL import Image

import datumio
from datumio.augment import Transform, decode_for, opencv, sample_rng
from datumio.augment.normalize import write
from datumio.augment.params import random_resized_crop
from datumio.augment.pipeline import apply
from datumio.errors import DecodeError, OptionError
from datumio.transforms import transform_image

cv2 = pytest.importorskip("cv2")
pytestmark = pytest.mark.timeout(30)


def _smooth(h: int = 60, w: int = 80) -> np.ndarray:
    """A smooth colour image: resampling differences stay small, misplacements do not."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [128 + 100 * np.sin(x / 9.0), 128 + 100 * np.cos(y / 7.0), 2.0 * (x + y)], axis=-1
    )
    return np.clip(img, 0, 255).astype(np.uint8)


def _spec(backend: str, **kw: object) -> Transform:
    base: dict[str, object] = {
        "size": (48, 48),
        "resize": 56,
        "rotation_range": (-25.0, 25.0),
        "zoom_range": (0.8, 1.25),
        "shear_range": (-10.0, 10.0),
        "translation_range": (-4.0, 4.0),
        "do_flip_lr": True,
        "dtype": "uint8",
        "layout": "HWC",
    }
    return Transform(**{**base, **kw, "backend": backend})


@pytest.mark.parametrize("resample", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("fill_mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
def test_opencv_and_pillow_warps_agree(resample: str, fill_mode: str) -> None:
    img = _smooth()
    for pos in range(6):
        a, b = (
            decode_for(_spec(k, resample=resample, fill_mode=fill_mode), img, sample_rng(3, 0, pos))
            for k in ("pillow", "opencv")
        )
        diff = np.abs(a.astype(int) - b.astype(int))
        inner = diff[4:-4, 4:-4]
        # OpenCV blends the last half pixel with a constant fill, Pillow does not.
        loose = resample == "nearest" or fill_mode == "constant"
        assert a.shape == b.shape == (48, 48, 3)
        assert diff.mean() < (2.0 if loose else 1.0), (pos, diff.mean())
        assert np.percentile(inner, 99) <= (12 if resample == "nearest" else 3), pos


def test_auto_uses_opencv_when_installed_and_pillow_pins_it() -> None:
    img = _smooth()
    rng = lambda: sample_rng(0, 1, 2)  # noqa: E731
    auto = decode_for(_spec("auto"), img, rng())
    np.testing.assert_array_equal(auto, decode_for(_spec("opencv"), img, rng()))
    assert not np.array_equal(auto, decode_for(_spec("pillow"), img, rng()))
    # nearest: OpenCV only for arrays (Pillow's nearest is as fast on a PIL image)
    assert opencv.use_opencv("auto", "nearest", array=True)
    assert not opencv.use_opencv("auto", "nearest", array=False)
    assert opencv.use_opencv("auto", "bilinear", array=False)
    assert not opencv.use_opencv("pillow", "bilinear", array=True)


def test_float_and_grey_images_warp_on_opencv() -> None:
    img = _smooth().astype(np.float32) / 255.0
    kw = {"rotation": 17.0, "zoom": 1.3, "output_shape": (40, 40)}
    a, b = (transform_image(img, warp_kwargs={"backend": k}, **kw) for k in ("pillow", "opencv"))
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (40, 40, 3)
    assert np.abs(a - b)[2:-2, 2:-2].max() < 2.0 / 255.0
    grey = _smooth()[:, :, 0]
    a, b = (transform_image(grey, warp_kwargs={"backend": k}, **kw) for k in ("pillow", "opencv"))
    assert a.shape == b.shape == (40, 40) and np.abs(a - b)[2:-2, 2:-2].max() <= 2


def test_a_bad_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(OptionError, match="backend"):
        Transform(size=(8, 8), backend="cuda")
    with pytest.raises(OptionError, match="backend"):
        transform_image(_smooth(), warp_kwargs={"backend": "skimage"})


def _rotated(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(Image.fromarray(_smooth(slot.height, slot.width)).rotate(17 * slot.k))


#: 6 smooth pictures, each side 120..199 pixels, turned 17 degrees more from one to the next.
ROTATED = Drawing({"a": 3, "b": 3}, size=range(120, 200), picture=_rotated, names="{k}", seed=7)


@pytest.fixture(scope="module", params=["RGB", "L"])
def jpeg_dataset(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Records re-encoded as JPEG by the ingest (colour, or grey with ``gray=True``)."""
    root = tmp_path_factory.mktemp("jpeg-records")
    return make_dataset(root, ROTATED, encode="jpeg", gray=request.param == "L")


def test_opencv_jpeg_decode_is_bit_identical_to_pillow(jpeg_dataset: Path) -> None:
    ds = datumio.open(jpeg_dataset)
    assert ds.encoding == "jpeg"
    for i in range(len(ds)):
        h, w, channels = ds.shape(i)
        for scale in (1, 2, 4, 8):
            request = (w // scale, h // scale)
            assert opencv.jpeg_scale((w, h), request) == scale
            img = Image.open(io.BytesIO(ds.read(i)))
            img.draft(img.mode, request)
            assert img.size == (-(-w // scale), -(-h // scale))  # Pillow picked that scale
            ours = opencv.decode_jpeg(ds.read(i), gray=channels == 1, scale=scale)
            assert ours is not None
            np.testing.assert_array_equal(ours, np.asarray(img.convert(img.mode)))


@pytest.mark.parametrize("size", [(96, 96), (40, 40), (20, 20)])  # 20: DCT-scaled decode
def test_records_decoded_by_opencv_give_pillows_pixels(jpeg_dataset: Path, size: tuple) -> None:
    """Without a general warp (resize, crop, flip) ``auto`` decodes with OpenCV
    (bit-identical) and resizes a box with fractional edges with Pillow, exactly as
    ``pillow`` does; a box with whole-pixel edges goes to ``cv2.resize``, within a grey level
    or so (these test images are rotated: their black wedges are sharp edges)."""
    ds = datumio.open(jpeg_dataset)
    same = 0
    for i in range(len(ds)):
        got = {}
        for backend in ("pillow", "auto"):
            spec = Transform(size=size, flip=0.5, dtype="uint8", backend=backend)
            got[backend] = decode_for(
                spec, ds.read(i), sample_rng(1, 0, i), encoding="jpeg", shape=ds.shape(i)
            )
        assert got["auto"].shape == got["pillow"].shape == (*size, ds.shape(i)[2])
        diff = np.abs(got["auto"].astype(int) - got["pillow"].astype(int))
        same += int(diff.max() == 0)
        assert diff.mean() < 1.2 and np.percentile(diff, 95) <= 4, (i, diff.mean())
    assert same >= 2  # the fractional boxes are Pillow's own


def test_opencv_resize_of_a_random_crop_is_within_a_grey_level_of_pillow() -> None:
    """The RandomResizedCrop fast path (whole-pixel box, ``cv2.resize``, area when
    shrinking) against Pillow's antialiased ``resize(box=...)`` on a textured image."""
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(noise).resize((341, 256), Image.Resampling.BICUBIC))
    diffs = []
    for _ in range(40):
        left, top, w, h = random_resized_crop(rng, 341, 256, (0.08, 1.0), (3 / 4, 4 / 3))
        box = (left, top, left + w, top + h)
        ours = opencv.resize_box(image, box, 224, 224)
        ref = np.asarray(Image.fromarray(image).resize((224, 224), Image.BILINEAR, box=box))
        assert ours.shape == ref.shape == (224, 224, 3)
        diffs.append(np.abs(ours.astype(int) - ref.astype(int))[1:-1, 1:-1].ravel())
    diff = np.concatenate(diffs)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())


def test_flipped_uint8_hwc_output_is_written_by_opencv_exactly() -> None:
    image = np.random.default_rng(4).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    for view in (image[:, ::-1], image[::-1], image[::-1, ::-1]):
        out = np.zeros_like(image)
        assert opencv.copy_flipped(view, out)
        np.testing.assert_array_equal(out, view)
        out = np.zeros_like(image)
        write(Transform(size=(30, 20), layout="HWC", dtype="uint8"), view, out)
        np.testing.assert_array_equal(out, view)
    assert not opencv.copy_flipped(image, np.zeros_like(image))  # not flipped: numpy copies


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_uint8_chw_output_is_split_by_opencv_exactly(channels: int) -> None:
    image = np.random.default_rng(5).integers(0, 256, (30, 20, channels), dtype=np.uint8)
    for view in (image, image[:, ::-1], image[::-1], image[::-1, ::-1]):
        out = np.zeros((channels, 30, 20), np.uint8)
        assert opencv.copy_planes(view, out)
        np.testing.assert_array_equal(out, view.transpose(2, 0, 1))
        out = np.zeros((channels, 30, 20), np.uint8)
        write(Transform(size=(30, 20), dtype="uint8"), view, out)
        np.testing.assert_array_equal(out, view.transpose(2, 0, 1))


def test_a_truncated_jpeg_record_still_fails_to_decode(jpeg_dataset: Path) -> None:
    ds = datumio.open(jpeg_dataset)
    data = ds.read(0)[:-500]
    for backend in ("pillow", "auto"):
        spec = Transform(size=(32, 32), backend=backend, dtype="uint8")
        with pytest.raises(DecodeError):
            decode_for(spec, data, sample_rng(0, 0, 0), encoding="jpeg", shape=ds.shape(0))


@pytest.mark.parametrize("channels", [1, 3])
def test_opencv_normalisation_equals_numpy(channels: int) -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (24, 20, channels), dtype=np.uint8)
    mean, std = (120.0, 110.0, 100.0)[:channels], (50.0, 60.0, 70.0)[:channels]
    for view in (image, image[:, ::-1]):  # a flipped view takes numpy's path
        got = {}
        for backend in ("pillow", "auto"):
            spec = Transform(size=(24, 20), mean=mean, std=std, backend=backend)
            got[backend] = np.full((channels, 24, 20), np.nan, np.float32)
            write(spec, view, got[backend])
        expected = (view.transpose(2, 0, 1) - np.reshape(mean, (-1, 1, 1))) / np.reshape(
            std, (-1, 1, 1)
        )
        np.testing.assert_allclose(got["auto"], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["auto"], got["pillow"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["pillow", "auto"])
def test_the_output_never_aliases_an_input_array(backend: str) -> None:
    img = _smooth(48, 48)
    spec = Transform(size=(48, 48), keep_scale=True, dtype="uint8", backend=backend)
    out = decode_for(spec, img, sample_rng(0, 0, 0))  # identity: no resampling at all
    np.testing.assert_array_equal(out, img)
    out[:] = 0  # what an in-place user_fn does
    assert img.any(), "writing into the output changed the caller's array"


@pytest.mark.parametrize(("dtype", "encoding"), [("uint8", "jpeg"), ("float32", "keep")])
def test_the_random_resized_crop_fast_path_gives_the_general_paths_pixels(
    jpeg_dataset: Path, dtype: str, encoding: str
) -> None:
    """``apply`` takes a short cut for the ImageNet recipe (crop + flip, no matrix) on
    JPEG records and on kept plain JPEGs (the same bytes as ``keep``); its output must be
    the general path's (``decode_for`` + ``write``), bit for bit."""
    ds = datumio.open(jpeg_dataset)
    spec = Transform(size=(96, 96), crop_scale=(0.08, 1.0), flip=0.5, dtype=dtype)
    channels = ds.shape(0)[2]
    spec = spec.resolved({"mean": [120.0] * channels, "std": [60.0] * channels}, channels)
    flips = 0
    for i in range(len(ds)):
        for position in range(8):
            shape = ds.shape(i)
            fast = np.full(spec.output_shape(shape[2]), 7, spec.numpy_dtype)
            rng = sample_rng(2, 0, position)
            apply(spec, ds.read(i), rng, fast, encoding=encoding, shape=shape)
            image = decode_for(
                spec, ds.read(i), sample_rng(2, 0, position), encoding=encoding, shape=shape
            )
            general = np.full_like(fast, 9)
            write(spec, image, general)
            np.testing.assert_array_equal(fast, general)
            flips += int(image.strides[1] < 0)
    assert flips > 0  # both sides of the coin were compared
