"""Determinism (in process and through the Loader), photometric ranges, normalisation axes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from augment_support import checker
from PIL import Image

from datumio.augment import Transform, apply, decode_for, normalize_batch, sample_rng
from datumio.augment.normalize import layout_axes
from datumio.errors import OptionError
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(40)

AUG = Transform(
    size=(32, 32),
    rotation_range=(-20, 20),
    zoom_range=(0.9, 1.1),
    shear_range=(-5, 5),
    translation_range=(-3, 3),
    do_flip_lr=True,
    fill_mode="reflect",
    brightness_range=(0.8, 1.2),
    contrast_range=(0.8, 1.2),
    saturation_range=(0.5, 1.5),
    grayscale=0.2,
    mean=(120.0, 120.0, 120.0),
    std=(60.0, 60.0, 60.0),
)


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_same_stream_same_pixels_and_streams_differ() -> None:
    payload = _jpeg(checker(60))
    out = [np.empty(AUG.output_shape(3), np.float32) for _ in range(3)]
    apply(AUG, payload, sample_rng(4, 2, 9), out[0])
    apply(AUG, payload, sample_rng(4, 2, 9), out[1])
    apply(AUG, payload, sample_rng(4, 2, 10), out[2])
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2])


def test_loader_gives_the_same_augmented_pixels_on_one_or_two_workers(tiny_lmdb: Path) -> None:
    spec = Transform(
        **{**{k: getattr(AUG, k) for k in AUG.__dataclass_fields__}, "batch_zmuv": True}
    )
    batches = {}
    for workers in (1, 2):
        with Loader(tiny_lmdb, 4, transform=spec, workers=workers, seed=5, copy=True) as ld:
            batches[workers] = [images for images, _ in ld]
    assert len(batches[1]) == len(batches[2]) == 2
    for a, b in zip(batches[1], batches[2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_brightness_contrast_saturation_grayscale() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 40
    base = {"size": (8, 8), "keep_scale": True, "dtype": "uint8"}

    def run(seed: int = 0, **kw: object) -> np.ndarray:
        return decode_for(Transform(**base, **kw), img, sample_rng(seed, 0, 0))  # type: ignore[arg-type]

    np.testing.assert_array_equal(run(brightness_range=(0.5, 0.5))[0, 0], [100, 50, 20])
    flat = run(contrast_range=(0.0, 0.0))
    assert len(np.unique(flat)) == 1  # contrast 0: the mean grey everywhere
    grey = run(saturation_range=(0.0, 0.0))
    assert len(set(grey[0, 0].tolist())) == 1
    assert len(set(run(grayscale=1.0)[0, 0].tolist())) == 1
    for seed in range(20):
        value = run(seed, brightness_range=(0.5, 1.5))[0, 0, 0]
        assert 100 <= value <= 255
    drawn = {int(run(seed, brightness_range=(0.5, 1.0))[0, 0, 1]) for seed in range(20)}
    assert len(drawn) > 5 and min(drawn) >= 50 and max(drawn) <= 100


def test_sample_zmuv_axes_and_dataset_normalisation() -> None:
    img = checker(20)
    for layout in ("HWC", "CHW"):
        spec = Transform(
            size=(20, 20),
            keep_scale=True,
            normalize=False,
            sample_zmuv=True,
            sample_axis=(0, 1),
            layout=layout,
        )
        out = np.empty(spec.output_shape(3), np.float32)
        apply(spec, img, sample_rng(0, 0, 0), out)
        hwc = out if layout == "HWC" else out.transpose(1, 2, 0)
        np.testing.assert_allclose(hwc.mean(axis=(0, 1)), 0, atol=1e-5)
        np.testing.assert_allclose(hwc.std(axis=(0, 1)), 1, atol=1e-4)
    spec = Transform(
        size=(20, 20),
        keep_scale=True,
        dataset_zmuv=True,
        mean=(1, 2, 3),
        std=(2, 2, 2),
        chw_order=False,
    )
    assert spec.layout == "HWC" and spec.normalize and spec.chw_order is None
    out = np.empty(spec.output_shape(3), np.float32)
    apply(spec, img, sample_rng(0, 0, 0), out)
    np.testing.assert_allclose(out, (img - np.array([1, 2, 3])) / 2, atol=1e-5)


@pytest.mark.parametrize("axis", [None, 0, (0, 1, 2), (1, 2)])
def test_normalize_batch_axes_are_nhwc_in_any_layout(axis: object) -> None:
    rng = np.random.default_rng(0)
    nhwc = rng.normal(50, 20, (4, 5, 6, 3)).astype(np.float32)
    ref = nhwc - nhwc.mean(axis=axis, keepdims=True)  # type: ignore[call-overload]
    ref /= ref.std(axis=axis, keepdims=True) + 1e-12  # type: ignore[call-overload]
    for layout in ("HWC", "CHW"):
        spec = Transform(size=(5, 6), batch_zmuv=True, batch_axis=axis, layout=layout)  # type: ignore[arg-type]
        batch = nhwc.copy() if layout == "HWC" else np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
        normalize_batch(batch, spec)
        got = batch if layout == "HWC" else batch.transpose(0, 2, 3, 1)
        np.testing.assert_allclose(got, ref, atol=1e-4)
    assert layout_axes((0, 3), "CHW", batch=True) == (0, 1)


def test_spec_validation_names_the_field() -> None:
    for kwargs, match in [
        ({"zoom_range": (0.0, 1.0)}, "zoom_range"),
        ({"rotation_range": (10, -10)}, "rotation_range"),
        ({"fill_mode": "mirror"}, "fill_mode"),
        ({"flip": 0.5, "do_flip_lr": True}, "flip"),
        ({"resize": 40, "keep_scale": True}, "base view"),
        ({"crop_scale": (0.5, 1.5)}, "crop_scale"),
        ({"sample_zmuv": True, "dtype": "uint8"}, "sample_zmuv"),
        ({"batch_axis": 4}, "batch_axis"),
        ({"fill_value": 300}, "fill_value"),
    ]:
        with pytest.raises(OptionError, match=match):
            Transform(size=(8, 8), **kwargs)  # type: ignore[arg-type]


def test_large_shrink_with_rotation_is_antialiased() -> None:
    # A 1-pixel checkerboard shrunk 8x must come out mid-grey, not aliased stripes.
    board = ((np.indices((512, 512)).sum(axis=0) % 2) * 255).astype(np.uint8)
    img = np.repeat(board[:, :, None], 3, axis=2)
    spec = Transform(size=(64, 64), resize=64, rotation_range=(10, 10), dtype="uint8")
    out = decode_for(spec, img, sample_rng(0, 0, 0))
    centre = out[16:48, 16:48].astype(float)
    assert abs(centre.mean() - 127.5) < 6 and centre.std() < 12
