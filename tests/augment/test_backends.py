"""Pillow's and OpenCV's warps agree, ``auto`` picks OpenCV when installed, errors are clear."""

from __future__ import annotations

import numpy as np
import pytest

from datumio.augment import Transform, decode_for, sample_rng
from datumio.errors import OptionError
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
    # nearest: Pillow's fixed-point path is as fast, so auto keeps Pillow
    auto = decode_for(_spec("auto", resample="nearest"), img, rng())
    np.testing.assert_array_equal(auto, decode_for(_spec("pillow", resample="nearest"), img, rng()))


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
