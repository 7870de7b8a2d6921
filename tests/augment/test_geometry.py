"""Geometry against exact expectations: rotation direction, flips, zoom, translation, fills."""

from __future__ import annotations

import numpy as np
import pytest
from augment_support import checker

from datumio.augment import Transform, decode_for, sample_rng
from datumio.augment.geometry import Affine, augment
from datumio.augment.params import AffineParams, random_resized_crop
from datumio.transforms import transform_image

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["pillow", "opencv"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every geometry expectation holds on both warps (OpenCV: ``datumio[opencv]``)."""
    if request.param == "opencv":
        pytest.importorskip("cv2")
    return str(request.param)


def test_rotation_90_is_np_rot90_counter_clockwise(backend: str) -> None:
    img = checker(17)
    nearest = {"order": 0, "backend": backend}
    got = transform_image(img, rotation=90, warp_kwargs=nearest)
    np.testing.assert_array_equal(got, np.rot90(img))  # k=1: counter-clockwise
    got = transform_image(img, rotation=-90, warp_kwargs=nearest)
    np.testing.assert_array_equal(got, np.rot90(img, -1))
    got = transform_image(img, rotation=180, warp_kwargs=nearest)
    np.testing.assert_array_equal(got, np.rot90(img, 2))


def test_transform_rotation_matches_in_the_loader_spec(backend: str) -> None:
    img = checker(24)
    spec = Transform(
        size=(24, 24),
        keep_scale=True,
        rotation_range=(90, 90),
        resample="nearest",
        dtype="uint8",
        backend=backend,
    )
    got = decode_for(spec, img, sample_rng(0, 0, 0))
    np.testing.assert_array_equal(got, np.rot90(img))


def test_flips_are_np_flip(backend: str) -> None:
    img = checker(15)
    kw = {"warp_kwargs": {"backend": backend}}
    np.testing.assert_array_equal(transform_image(img, flip_lr=True, **kw), np.flip(img, 1))
    np.testing.assert_array_equal(transform_image(img, flip_ud=True, **kw), np.flip(img, 0))
    both = transform_image(img, flip_lr=True, flip_ud=True, **kw)
    np.testing.assert_array_equal(both, np.flip(img, (0, 1)))
    spec = Transform(
        size=(15, 15), keep_scale=True, do_flip_ud=True, dtype="uint8", backend=backend
    )
    outs = {decode_for(spec, img, sample_rng(1, 0, p)).tobytes() for p in range(12)}
    assert outs == {img.tobytes(), np.flip(img, 0).tobytes()}


def test_zoom_two_then_crop_is_the_centre_of_an_upscale(backend: str) -> None:
    nearest = {"order": 0, "backend": backend}
    img = checker(16)
    got = transform_image(img, output_shape=(8, 8), zoom=2.0, warp_kwargs=nearest)
    up = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)  # 32 x 32
    np.testing.assert_array_equal(got, up[12:20, 12:20])
    out = transform_image(img, zoom=(2.0, 1.0), warp_kwargs=nearest)  # (zoom_x, zoom_y)
    np.testing.assert_array_equal(out, np.repeat(img, 2, axis=1)[:, 8:24])


@pytest.mark.parametrize(("tx", "ty"), [(3, 2), (-4, 0), (0, -5)])
def test_translation_moves_a_marker_right_and_up(tx: int, ty: int, backend: str) -> None:
    nearest = {"order": 0, "backend": backend}
    img = np.zeros((21, 21), np.uint8)
    img[10, 10] = 255
    got = transform_image(img, translation=(tx, ty), warp_kwargs=nearest)
    assert got.shape == (21, 21) and got.dtype == np.float32
    (row, col), *rest = np.argwhere(got == 255).tolist()
    assert not rest and (row, col) == (10 - ty, 10 + tx)  # +x right, +y up


def test_shear_is_counter_clockwise_on_vertical_lines(backend: str) -> None:
    nearest = {"order": 0, "backend": backend}
    img = np.zeros((41, 41), np.uint8)
    img[:, 20] = 255  # a vertical line through the centre
    got = transform_image(img, shear=20, warp_kwargs=nearest)
    top, bottom = np.argmax(got[5]), np.argmax(got[35])
    assert top < 20 < bottom  # the line leans like a counter-clockwise turn


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric", "wrap"])
def test_fill_modes_match_numpy_pad(mode: str, backend: str) -> None:
    img = checker(16, seed=3)
    kw = {"order": 0, "mode": mode, "backend": backend}
    got = transform_image(img, zoom=0.5, warp_kwargs=kw)
    # zoom 0.5 about the centre: output pixel j samples input 2j - 7 (nearest).
    ref = np.pad(img, ((8, 8), (8, 8), (0, 0)), mode=mode)[1::2, 1::2][:16, :16]  # type: ignore[call-overload]
    np.testing.assert_array_equal(got, ref)


def test_constant_fill_value_and_bilinear_fill_modes_are_seamless(backend: str) -> None:
    img = np.full((20, 20, 3), 200, np.uint8)
    got = transform_image(img, zoom=0.5, warp_kwargs={"cval": 17, "backend": backend})
    assert got[0, 0].tolist() == [17, 17, 17] and got[10, 10].tolist() == [200, 200, 200]
    spec = Transform(
        size=(20, 20), keep_scale=True, zoom_range=(0.5, 0.5), dtype="uint8", backend=backend
    )
    for mode in ("edge", "reflect", "wrap"):
        out = decode_for(
            Transform(**{**_fields(spec), "fill_mode": mode}), img, sample_rng(0, 0, 0)
        )
        assert (out == 200).all(), mode  # a flat image stays flat: no seam, no black
    const = Transform(**{**_fields(spec), "fill_value": (1, 2, 3)})
    assert decode_for(const, img, sample_rng(0, 0, 0))[0, 0].tolist() == [1, 2, 3]


def _fields(spec: Transform) -> dict[str, object]:
    return {k: getattr(spec, k) for k in spec.__dataclass_fields__}


def test_random_resized_crop_bounds_follow_torchvision() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        left, top, w, h = random_resized_crop(rng, 120, 80, (0.2, 0.9), (0.75, 4 / 3))
        assert left >= 0 and left + w <= 120 and top >= 0 and top + h <= 80
        area = w * h / (120 * 80)
        assert 0.15 < area < 0.95 and 0.7 < w / h < 1.4
    # impossible ratios fall back to the whole image clamped to the ratio, centred
    assert random_resized_crop(rng, 100, 10, (0.99, 1.0), (1.0, 1.0)) == (45, 0, 10, 10)


def test_random_resized_crop_in_the_spec_samples_inside_the_image(backend: str) -> None:
    img = checker(64)
    spec = Transform(
        size=(32, 32), crop_scale=(0.1, 0.5), resample="nearest", dtype="uint8", backend=backend
    )
    colours = {tuple(p) for p in img.reshape(-1, 3).tolist()}
    for pos in range(10):
        out = decode_for(spec, img, sample_rng(0, 0, pos))
        assert out.shape == (32, 32, 3)
        assert {tuple(p) for p in out.reshape(-1, 3).tolist()} <= colours  # no fill


def test_augment_matrix_composes_the_original_order() -> None:
    p = AffineParams(zoom=(2.0, 2.0), rotation=30.0, translation=(4.0, -2.0))
    m = augment(10.0, 10.0, p)
    centre = m.apply(np.array([[5.0, 5.0]]))[0]
    np.testing.assert_allclose(centre, [5.0 - 4.0, 5.0 - 2.0])  # translation in input pixels
    assert m.input_per_output() == pytest.approx((0.5, 0.5))
    points = np.array([[0.0, 0.0], [10.0, 3.0], [-2.5, 7.0]])
    np.testing.assert_allclose(m.then(Affine.identity()).apply(points), m.apply(points))
    # ``then`` applies its argument first: shift the output by (1, 0), then map with m.
    shift = Affine.scale_translate(1.0, 1.0, 1.0, 0.0)
    np.testing.assert_allclose(m.then(shift).apply(points), m.apply(points + np.array([1.0, 0.0])))
