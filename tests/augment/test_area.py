"""The compiled area shrink (``datumio/_native/area.c``) that the RandomResizedCrop path
uses when both sides of the box shrink: OpenCV's ``INTER_AREA`` filter, within one grey
level (rounding), on every channel count, box position and shrink factor."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from datumio.augment import opencv

cv2 = pytest.importorskip("cv2")
_jpegroi = pytest.importorskip("datumio._jpegroi", reason="the extension is not built here")


def _texture(h: int, w: int, channels: int, seed: int) -> np.ndarray:
    """Noise smoothed to photo-like detail (every output pixel mixes several inputs)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (max(h // 4, 2), max(w // 4, 2), 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(noise).resize((w, h), Image.Resampling.BICUBIC))
    if channels == 1:
        return np.ascontiguousarray(big[:, :, 0])
    if channels == 4:
        return np.concatenate([big, big[:, :, :1] // 2], axis=2)
    return big


def _area(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    out_w: int,
    out_h: int,
    portable: bool = False,
) -> np.ndarray:
    out = np.empty((out_h, out_w, *image.shape[2:]), np.uint8)
    _jpegroi.area(image, *box, out, False, portable)
    return out


@pytest.mark.parametrize("portable", [False, True], ids=["simd-where-available", "plain-c"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_the_shrink_is_opencvs_area_filter_within_a_grey_level(
    channels: int, portable: bool
) -> None:
    image = _texture(300, 400, channels, seed=channels)
    rng = np.random.default_rng(7)
    exact = total = 0
    for _ in range(30):
        out_w, out_h = int(rng.integers(20, 120)), int(rng.integers(20, 120))
        w = int(rng.integers(out_w + 1, min(4 * out_w, 400)))  # factors 1.0x to 4x
        h = int(rng.integers(out_h + 1, min(4 * out_h, 300)))
        left, top = int(rng.integers(0, 400 - w + 1)), int(rng.integers(0, 300 - h + 1))
        box = (left, top, left + w, top + h)
        ours = _area(image, box, out_w, out_h, portable)
        ref = cv2.resize(
            image[top : top + h, left : left + w], (out_w, out_h), interpolation=cv2.INTER_AREA
        )
        ref = ref.reshape(ours.shape)
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 1, (box, out_w, out_h)
        exact += int((diff == 0).sum())
        total += diff.size
    assert exact / total > 0.99


def test_resize_box_shrinks_with_the_compiled_filter_and_enlarges_with_opencv() -> None:
    image = _texture(256, 341, 3, seed=11)
    shrink = (10, 5, 300, 250)
    np.testing.assert_array_equal(
        opencv.resize_box(image, shrink, 224, 224), _area(image, shrink, 224, 224)
    )
    grow = (10, 5, 110, 105)
    ref = cv2.resize(image[5:105, 10:110], (224, 224), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(opencv.resize_box(image, grow, 224, 224), ref)
    # A view whose pixels are not packed (flipped) goes to OpenCV, same filter.
    flipped = image[:, ::-1]
    ref = cv2.resize(
        np.ascontiguousarray(flipped)[5:250, 10:300], (224, 224), interpolation=cv2.INTER_AREA
    )
    assert np.abs(opencv.resize_box(flipped, shrink, 224, 224).astype(int) - ref).max() <= 1


def test_a_constant_image_stays_constant_and_extremes_do_not_wrap() -> None:
    for value in (0, 1, 128, 254, 255):
        image = np.full((97, 131, 3), value, np.uint8)
        assert (_area(image, (0, 0, 131, 97), 50, 40) == value).all()


@pytest.mark.parametrize(
    ("image", "box", "out_shape", "words"),
    [
        (np.zeros((50, 60, 3), np.uint8), (0, 0, 70, 50), (20, 20, 3), "lie in the image"),
        (np.zeros((50, 60, 3), np.uint8), (0, 0, 10, 10), (20, 20, 3), "at least the output"),
        (np.zeros((50, 60, 3), np.uint8)[:, ::-1], (0, 0, 60, 50), (20, 20, 3), "packed"),
        (np.zeros((50, 60, 3), np.float32), (0, 0, 60, 50), (20, 20, 3), "uint8"),
        (np.zeros((50, 60, 3), np.uint8), (0, 0, 60, 50), (20, 20, 4), "same channels"),
    ],
)
def test_bad_arguments_are_refused_with_what_is_wrong(
    image: np.ndarray, box: tuple[int, int, int, int], out_shape: tuple[int, ...], words: str
) -> None:
    with pytest.raises((ValueError, BufferError), match=words):
        _jpegroi.area(image, *box, np.zeros(out_shape, np.uint8), False)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("box", [(10, 5, 300, 250), (10, 5, 110, 105), (0, 0, 224, 224)])
def test_writing_into_a_slot_gives_the_resized_box_mirrored_when_asked(
    channels: int, box: tuple[int, int, int, int]
) -> None:
    """``resize_box_into`` (the crop path's write straight into a batch slot): the
    shrink, the enlargement and the plain cut, flipped or not, as ``resize_box`` gives."""
    image = _texture(256, 341, channels, seed=12)
    image = image if channels == 3 else image[:, :, None]
    for source in (image, image[:, :, 0] if channels == 1 else image):
        ref = opencv.resize_box(source, box, 224, 224).reshape(224, 224, channels)
        for flip in (False, True):
            out = np.zeros((224, 224, channels), np.uint8)
            opencv.resize_box_into(source, box, out, flip=flip)
            np.testing.assert_array_equal(out, ref[:, ::-1] if flip else ref)


def test_the_simd_and_the_plain_c_passes_agree_bit_for_bit() -> None:
    image = _texture(256, 341, 3, seed=13)
    for box in [(0, 0, 341, 256), (3, 7, 250, 240), (40, 1, 300, 226)]:
        for flip in (False, True):
            fast, plain = np.empty((224, 224, 3), np.uint8), np.empty((224, 224, 3), np.uint8)
            _jpegroi.area(image, *box, fast, flip, False)
            _jpegroi.area(image, *box, plain, flip, True)
            np.testing.assert_array_equal(fast, plain)
