"""The original datumio functions: shapes, dtypes, conventions, parameter draws."""

from __future__ import annotations

import numpy as np
import pytest
from augment_support import checker

from datumio.augment import Transform, decode_for, sample_rng
from datumio.augment.params import draw_affine
from datumio.errors import OptionError
from datumio.transforms import (
    build_augmentation_transform,
    build_random_augmentation_transform,
    perturb_image,
    transform_image,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 3), (20, 30, 4), (20, 30, 5)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_shapes_and_dtypes(shape: tuple[int, ...], dtype: type) -> None:
    img = (np.random.default_rng(0).random(shape) * 255).astype(dtype)
    out = transform_image(img, output_shape=(10, 12), rotation=15)
    assert out.dtype == np.float32 and out.shape == (10, 12, *shape[2:])
    same = transform_image(img)
    np.testing.assert_allclose(same, img.astype(np.float32), atol=1e-3)
    assert perturb_image(img, rotation_range=(-5, 5)).shape == shape


def test_float_images_keep_their_value_scale() -> None:
    img = np.random.default_rng(1).random((16, 16, 3)) * 0.01
    out = transform_image(img, rotation=33, zoom=1.3)
    assert out.max() <= 0.0101 and out.dtype == np.float32


def test_perturb_image_draws_like_the_original() -> None:
    img = checker(24)
    kw = {
        "zoom_range": (0.8, 1.25),
        "rotation_range": (-30, 30),
        "shear_range": (-5, 5),
        "translation_range": (-3, 3),
        "do_flip_lr": True,
        "do_flip_ud": True,
    }
    a = perturb_image(img, rng=np.random.RandomState(7), **kw)  # type: ignore[arg-type]
    b = perturb_image(img, rng=np.random.RandomState(7), **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a, b)
    # The original's order: shift x, shift y (whole pixels), rotation, shear, flips, zoom.
    rs = np.random.RandomState(3)
    p = draw_affine(np.random.RandomState(3), integer_translation=True, allow_stretch=False, **kw)  # type: ignore[arg-type]
    tx, ty = int(rs.uniform(-3, 3)), int(rs.uniform(-3, 3))
    rot, shear = rs.uniform(-30, 30), rs.uniform(-5, 5)
    lr, ud = rs.randint(2) > 0, rs.randint(2) > 0
    zoom = np.exp(rs.uniform(np.log(0.8), np.log(1.25)))
    assert p.translation == (tx, ty) and p.rotation == rot and p.shear == shear
    assert (p.flip_lr, p.flip_ud) == (lr, ud) and p.zoom == pytest.approx((zoom, zoom))


def test_allow_stretch_semantics() -> None:
    rng = np.random.default_rng(0)
    same = draw_affine(rng, zoom_range=(0.5, 2.0))
    assert same.zoom[0] == same.zoom[1]
    free = draw_affine(rng, zoom_range=(0.5, 2.0), allow_stretch=True)
    assert free.zoom[0] != free.zoom[1]
    for _ in range(50):
        zx, zy = draw_affine(rng, zoom_range=(1.0, 1.0), allow_stretch=1.5).zoom
        assert zx * zy == pytest.approx(1.0) and 1 / 1.5 - 1e-9 <= zx <= 1.5 + 1e-9


def test_transform_image_equals_the_loader_spec_with_keep_scale() -> None:
    img = checker(30)
    ref = transform_image(
        img,
        output_shape=(20, 24),
        zoom=1.2,
        rotation=17,
        shear=4,
        translation=(2, -1),
        flip_lr=True,
    )
    spec = Transform.from_original(
        output_shape=(20, 24),
        zoom_range=(1.2, 1.2),
        rotation_range=(17, 17),
        shear_range=(4, 4),
        translation_range=(2, 2),
        dtype="uint8",
    )
    assert spec.keep_scale and spec.size == (20, 24)
    tf = build_augmentation_transform(img.shape, (20, 24), 1.2, 17, 4, (2, 2))
    np.testing.assert_array_equal(
        decode_for(spec, img, sample_rng(0, 0, 0)), transform_image(img, (20, 24), tf=tf)
    )
    assert ref.shape == (20, 24, 3)


def test_warp_kwargs_and_errors() -> None:
    img = checker(12)
    spec = Transform.from_original(
        input_shape=img.shape, warp_kwargs={"order": 3, "mode": "nearest", "cval": 5}
    )
    assert (spec.resample, spec.fill_mode, spec.fill_value, spec.size) == (
        "bicubic",
        "edge",
        5,
        (12, 12),
    )
    with pytest.raises(OptionError, match="order"):
        transform_image(img, warp_kwargs={"order": 2})
    with pytest.raises(OptionError, match="unknown"):
        transform_image(img, warp_kwargs={"prefilter": True})
    tf = build_random_augmentation_transform(
        img.shape, rotation_range=(-9, 9), rng=np.random.default_rng(0)
    )
    assert transform_image(img, tf=tf).shape == img.shape
