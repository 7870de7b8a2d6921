"""Boxes, keypoints and masks follow the image: checked against the pixels of real warps.

The scene: a grey (60) image with three rectangles of pure red, green and blue at known
places, and a label mask of the same rectangles (1, 2, 3 on 0). Each sample runs the real
:func:`datumio.augment.apply` (returning its map) and the annotation functions with that
map, and reads the rectangles back from the output pixels: channel ``k`` above the midpoint
of rectangle and background is rectangle ``k``; black (the fill) is outside the stored
image, label 255 in a mask.

What "exact" means here:

* ``resample="nearest"``: the mask equals the labels read from the image pixel for pixel,
  except where the pixel samples a point within 1/128 px of a pixel edge of the stored
  image: there OpenCV's warp (the 1/256 px nudge, its float32 arithmetic) and Pillow's
  (16.16 fixed point, a plain floor) may round to different pixels.
* interpolated images (bilinear, antialiased shrinks, DCT-scaled JPEGs): a thresholded
  edge lands within half a pixel of the true edge, so mask and image agree except on
  pixels next to a label edge (a one-pixel border).
* boxes: the box of a rectangle equals the bounding box of its region, sampled 8x finer
  than the output, within 1/4 px; and the bounding box of its pixels in the output within
  one pixel (a rotated corner can sit up to a pixel from the nearest pixel centre inside),
  except where the region ends in a sliver thinner than half a pixel that no pixel centre
  falls in: at a shallow angle along the output's edge, it can run on for more than a
  pixel (1.7 px seen with shear, stretch and rotation) with no pixel showing it.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from datumio.augment import Transform, apply, geometry, pipeline, sample_rng
from datumio.augment.annotations import (
    MIN_AREA,
    MIN_VISIBLE,
    boxes_after,
    keypoints_after,
    mask_after,
    sample_affine,
)
from datumio.augment.geometry import Affine
from datumio.codec import decode
from datumio.errors import OptionError

pytestmark = pytest.mark.timeout(120)

H, W = 90, 120
RECTS = np.array([[14, 12, 46, 40], [62, 18, 100, 34], [30, 52, 58, 80]], np.float32)
BACKGROUND = 60
#: Midway between a rectangle's 255 and the background's 60 in its channel.
THRESHOLD = (255 + BACKGROUND) / 2
SEEDS = range(30)
#: A box side may differ from its pixels' bounding box by this much (see the docstring).
BOX_TOL = 1.0
#: Nearest neighbour: a sample this close to a pixel edge may round either way.
EDGE_EPS = 1.0 / 128.0
#: Boxes are checked against the rectangle's region sampled this many times finer ...
FINE = 8
#: ... to within this many output pixels (a sliver may end between two fine samples).
FINE_TOL = 0.25
#: An interpolated (antialiased) edge may land this much past half a pixel.
PIXEL_EPS = 0.05


def scene(scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 image, HxW label mask) of the rectangles, ``scale`` times larger."""
    img = np.full((H * scale, W * scale, 3), BACKGROUND, np.uint8)
    mask = np.zeros((H * scale, W * scale), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate((RECTS * scale).astype(int)):
        img[y0:y1, x0:x1] = 0
        img[y0:y1, x0:x1, k] = 255
        mask[y0:y1, x0:x1] = k + 1
    return img, mask


def labels_of(image: np.ndarray) -> np.ndarray:
    """The mask the output pixels show: 0 background, k + 1 rectangle k, 255 the fill."""
    labels = np.zeros(image.shape[:2], np.uint8)
    labels[image.max(axis=2) < BACKGROUND / 2] = 255
    for k in range(3):
        labels[image[..., k] >= THRESHOLD] = k + 1
    return labels


def _encode(img: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _jpeg(img: np.ndarray, **kw: object) -> bytes:
    return _encode(img, "JPEG", quality=95, subsampling=0, **kw)  # 4:4:4: sharp colour edges


#: source kind -> (payload of an image, encoding, backend): every decode path of apply.
SOURCES: dict[str, Callable[[np.ndarray], tuple[bytes | np.ndarray, str, str]]] = {
    "array": lambda img: (img, "raw", "auto"),
    "png": lambda img: (_encode(img, "PNG"), "keep", "auto"),  # Pillow decode, PIL image
    "jpeg": lambda img: (_jpeg(img), "jpeg", "auto"),  # OpenCV decode, array
    "jpeg-pillow": lambda img: (_jpeg(img), "jpeg", "pillow"),  # Pillow decode and warp
}

CASES: dict[str, dict[str, object]] = {
    "rotation": {"rotation_range": (-180, 180)},
    "zoom": {"zoom_range": (0.5, 2.0), "allow_stretch": True},
    "shear": {"shear_range": (-30, 30)},
    "translation": {"translation_range": (-25, 25)},
    "flip_lr": {"do_flip_lr": True},
    "flip_ud": {"do_flip_ud": True},
    "flip": {"flip": 0.5},
    "random_resized_crop": {"crop_scale": (0.2, 1.0), "flip": 0.5},
    "keep_scale": {"keep_scale": True, "translation_range": (-20, 20)},
    "keep_scale_larger": {"keep_scale": True, "size": (112, 144), "do_flip_ud": True},
    "resize_centre_crop": {"resize": 56, "flip": 0.5},
    "combined": {
        "crop_scale": (0.3, 1.0),
        "rotation_range": (-45, 45),
        "zoom_range": (0.7, 1.4),
        "allow_stretch": 1.2,
        "shear_range": (-15, 15),
        "translation_range": (-10, 10),
        "do_flip_lr": True,
        "do_flip_ud": True,
    },
}


def _spec(**kw: object) -> Transform:
    base: dict[str, object] = {"size": (48, 64), "dtype": "uint8", "layout": "HWC"}
    return Transform(**{**base, "normalize": False, **kw})  # type: ignore[arg-type]


def _run(
    spec: Transform, source: bytes | np.ndarray, encoding: str, shape: tuple[int, ...], pos: int
) -> tuple[np.ndarray, Affine]:
    """The output image and its map; the map equals :func:`sample_affine`'s."""
    out = np.empty(spec.output_shape(3), np.uint8)
    m = apply(
        spec,
        source,
        sample_rng(7, 0, pos),
        out,
        encoding=encoding,
        shape=(shape[0], shape[1], 3),
        return_affine=True,
    )
    again = sample_affine(spec, shape, sample_rng(7, 0, pos))
    np.testing.assert_array_equal(m.m, again.m)
    return out, m


def _border(labels: np.ndarray) -> np.ndarray:
    """Pixels with a different label among their 8 neighbours."""
    padded = np.pad(labels, 1, mode="edge")
    h, w = labels.shape
    near = np.zeros(labels.shape, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            near |= padded[dy : dy + h, dx : dx + w] != labels
    return near


def _near_pixel_edge(m: Affine, out_hw: tuple[int, int], scale: float) -> np.ndarray:
    """Output pixels whose sample point is within EDGE_EPS of a pixel edge of the input."""
    h, w = out_hw
    ys, xs = np.mgrid[0:h, 0:w]
    pts = m.apply(np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)) / scale
    frac = np.abs(pts - np.round(pts))
    return (frac < EDGE_EPS).any(axis=1).reshape(h, w)


def check_sample(
    spec: Transform, image: np.ndarray, m: Affine, *, scale: int, exact: bool, what: str
) -> None:
    """Boxes, mask and keypoints of ``m`` against the rectangles in ``image``."""
    size = spec.size
    labels = labels_of(image)
    _, mask = scene(scale)
    rects = RECTS * scale

    # Masks: the same labels as the pixels (exactly for nearest, else but for a border).
    got = mask_after(m, mask, size)
    np.testing.assert_array_equal(got, mask_after(m, mask, size, backend="numpy"))
    allowed = _near_pixel_edge(m, size, 1.0) if exact else _border(got)
    wrong = (got != labels) & ~allowed
    assert not wrong.any(), f"{what}: mask differs from the image at {np.argwhere(wrong)[:5]}"

    # Boxes: the rectangle's region (sampled 8x finer) within 1/4 px; its pixels within one
    # pixel, but where the region ends in a sliver that no pixel centre falls in.
    boxes, keep, classes = boxes_after(
        m, rects, size, min_visible=0.0, min_area=0.0, classes=np.arange(3, dtype=np.int32)
    )
    assert classes is not None and classes.tolist() == keep.tolist()
    fine_m = m.then(Affine.scale_translate(1 / FINE, 1 / FINE, 0.0, 0.0))
    fine = mask_after(fine_m, mask, (size[0] * FINE, size[1] * FINE))
    for k in range(3):
        ys, xs = np.nonzero(labels == k + 1)
        fys, fxs = np.nonzero(fine == k + 1)
        if k not in keep:
            assert not len(xs) and not len(fxs), f"{what}: box {k} dropped but shows"
            continue
        box = boxes[keep.tolist().index(k)]
        if not len(fxs):  # a sliver along the output's edge, between sample points
            assert min(box[2] - box[0], box[3] - box[1]) <= FINE_TOL, f"{what}: box {k} {box}"
            continue
        region = np.array([fxs.min(), fys.min(), fxs.max() + 1, fys.max() + 1]) / FINE
        assert np.abs(box - region).max() <= FINE_TOL, f"{what}: box {k} {box} vs {region}"
        if not len(xs):
            assert min(box[2] - box[0], box[3] - box[1]) <= 1.5, f"{what}: box {k} {box}"
            continue
        seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        sign = np.array([-1, -1, 1, 1])
        beyond = sign * (box - seen)  # how far the box reaches past the pixels, per side
        sliver = sign * (region - seen) > BOX_TOL - FINE_TOL  # the region itself does
        assert beyond.min() >= -0.5 - PIXEL_EPS, f"{what}: box {k} {box} cuts pixels {seen}"
        assert ((beyond <= BOX_TOL) | sliver).all(), f"{what}: box {k} {box} vs pixels {seen}"

    # Keypoints: centres on their rectangle (swapped under a mirror), corners on its edge.
    centres = np.c_[(rects[:, :2] + rects[:, 2:]) / 2, np.full(3, 2.0)]
    x0, y0, x1, y1 = rects.T
    corners = np.stack(
        [np.c_[x, y, np.full(3, 2.0)] for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
    )
    kps = np.concatenate([centres, corners.reshape(-1, 3)]).astype(np.float32)
    out = keypoints_after(m, kps, size, flip_pairs=[(0, 1)])
    plain = keypoints_after(m, kps, size)
    mirrored = np.linalg.det(m.m[:2, :2]) < 0
    np.testing.assert_array_equal(out[2:], plain[2:])
    np.testing.assert_array_equal(out[:2], plain[[1, 0]] if mirrored else plain[:2])
    h, w = size
    for i, (x, y, v) in enumerate(plain):
        q = np.linalg.solve(m.m, [kps[i, 0], kps[i, 1], 1.0])[:2]
        inside = 0 <= q[0] < w and 0 <= q[1] < h
        assert (v == 2) == inside, f"{what}: keypoint {i} at {q} has v={v}"
        if not inside:
            assert (x, y) == (0, 0)
            continue
        np.testing.assert_allclose((x, y), q, atol=1e-3)
        k = i if i < 3 else (i - 3) % 3
        if i < 3:
            assert got[int(y), int(x)] == k + 1, f"{what}: centre {i} on {got[int(y), int(x)]}"
            assert labels[int(y), int(x)] == k + 1
        elif 1.5 <= x <= w - 1.5 and 1.5 <= y <= h - 1.5:
            near = got[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2]
            assert (near == k + 1).any() and (near != k + 1).any(), f"{what}: corner {i}"
    for i in range(2):  # the swapped pair: index 0 names rectangle 1 when mirrored
        x, y, v = out[i]
        if v:
            assert got[int(y), int(x)] == (1 - i if mirrored else i) + 1


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_annotations_follow_each_geometric_op(case: str, source: str) -> None:
    img, _ = scene()
    payload, encoding, backend = SOURCES[source](img)
    spec = _spec(**{**CASES[case], "backend": backend})
    for pos in SEEDS:
        out, m = _run(spec, payload, encoding, (H, W), pos)
        check_sample(spec, out, m, scale=1, exact=False, what=f"{case}/{source}/{pos}")


@pytest.mark.parametrize("source", ["array", "png"])
@pytest.mark.parametrize("case", ["rotation", "zoom", "keep_scale", "combined", "flip"])
def test_nearest_mask_equals_the_nearest_image(case: str, source: str) -> None:
    img, _ = scene()
    payload, encoding, backend = SOURCES[source](img)
    spec = _spec(**{**CASES[case], "resample": "nearest", "backend": backend})
    for pos in SEEDS:
        out, m = _run(spec, payload, encoding, (H, W), pos)
        check_sample(spec, out, m, scale=1, exact=True, what=f"{case}/{source}/{pos}")


def test_plain_crop_fast_path() -> None:
    img, _ = scene()
    spec = _spec(size=(64, 80), crop_scale=(0.25, 1.0), flip=0.5)
    assert pipeline._plain_crop(spec) and 2 * spec.size[1] > W  # apply takes _crop_fast
    payload = _jpeg(img)
    for pos in range(24):
        out, m = _run(spec, payload, "jpeg", (H, W), pos)
        check_sample(spec, out, m, scale=1, exact=False, what=f"crop_fast/{pos}")


@pytest.mark.parametrize("source", ["jpeg", "jpeg-pillow", "keep"])
@pytest.mark.parametrize("augmented", [False, True])
def test_draft_decoded_jpeg_maps_in_stored_pixels(source: str, augmented: bool) -> None:
    scale = 8
    img, _ = scene(scale)
    payload, backend = _jpeg(img), "pillow" if source == "jpeg-pillow" else "auto"
    encoding = "keep" if source == "keep" else "jpeg"
    kw: dict[str, object] = {"size": (60, 80), "backend": backend, "flip": 0.5}
    if augmented:
        kw.update(rotation_range=(-30, 30), zoom_range=(0.8, 1.25))
    spec = _spec(**kw)
    for pos in range(8):
        out, m = _run(spec, payload, encoding, (H * scale, W * scale), pos)
        assert geometry.draft_request(m, W * scale, H * scale) is not None  # DCT-scaled
        check_sample(spec, out, m, scale=scale, exact=False, what=f"draft/{source}/{pos}")


def test_exif_rotated_kept_jpeg_maps_in_upright_pixels() -> None:
    img, _ = scene()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter: the upright image is (H, W)
    payload = _jpeg(np.ascontiguousarray(np.rot90(img, 1)), exif=exif.tobytes())
    assert decode(payload).shape == (H, W, 3)
    np.testing.assert_allclose(decode(payload).astype(float), img.astype(float), atol=24)
    spec = _spec(rotation_range=(-30, 30), do_flip_lr=True)
    for pos in range(8):
        out, m = _run(spec, payload, "keep", (H, W), pos)
        check_sample(spec, out, m, scale=1, exact=False, what=f"exif/{pos}")


def test_apply_returns_nothing_unless_asked() -> None:
    img, _ = scene()
    spec = _spec(rotation_range=(-30, 30))
    out = np.empty(spec.output_shape(3), np.uint8)
    assert apply(spec, img, sample_rng(1, 0, 0), out) is None
    again = np.empty_like(out)
    m = apply(spec, img, sample_rng(1, 0, 0), again, return_affine=True)
    np.testing.assert_array_equal(out, again)  # asking changes neither draws nor pixels
    rng = sample_rng(1, 0, 0)
    np.testing.assert_array_equal(sample_affine(spec, img.shape, copy.deepcopy(rng)).m, m.m)


# -- edge cases -----------------------------------------------------------------------------


def test_box_moved_out_of_view_is_dropped_and_classes_follow() -> None:
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [105, 0, 110, 8]], np.float32)
    m = Affine.scale_translate(1.0, 1.0, 40.0, 0.0)  # content moves 40 px left
    got, keep, classes = boxes_after(m, boxes, (64, 64), classes=np.array([4, 5, 6], np.int32))
    assert keep.tolist() == [1] and classes is not None and classes.tolist() == [5]
    np.testing.assert_array_equal(got, [[10, 50, 20, 60]])
    assert got.dtype == np.float32


def test_translation_spec_pushes_a_box_out() -> None:
    spec = _spec(size=(40, 40), keep_scale=True, translation_range=(60, 60))
    m = sample_affine(spec, (40, 40), sample_rng(0, 0, 0))
    got, keep, _ = boxes_after(m, np.array([[25, 5, 35, 15], [0, 0, 5, 5]]), spec.size)
    assert keep.tolist() == [] and got.shape == (0, 4)


def test_drop_rule_visible_fraction_and_area() -> None:
    assert (MIN_VISIBLE, MIN_AREA) == (0.25, 1.0)
    m = Affine.identity()
    boxes = np.array([[-40, 0, 10, 10], [-30, 0, 10, 10], [5, 5, 5.5, 6.5], [2, 2, 4, 4]])
    _, keep, _ = boxes_after(m, boxes, (20, 20))
    assert keep.tolist() == [1, 3]  # 25% and 100% in view kept; 20% and 0.75 px² dropped
    assert boxes_after(m, boxes, (20, 20), min_visible=0.2).keep.tolist() == [0, 1, 3]
    assert boxes_after(m, boxes, (20, 20), min_area=0.5).keep.tolist() == [1, 2, 3]
    assert boxes_after(m, boxes, (20, 20), min_area=5).keep.tolist() == [1]


def test_empty_annotations() -> None:
    m = sample_affine(_spec(rotation_range=(-9, 9)), (H, W), sample_rng(0, 0, 0))
    boxes, keep, classes = boxes_after(
        m, np.zeros((0, 4), np.float32), (48, 64), classes=np.zeros(0, np.int32)
    )
    assert boxes.shape == (0, 4) and keep.shape == (0,) and classes is not None
    assert boxes_after(m, np.zeros(0), (48, 64)).boxes.shape == (0, 4)
    assert keypoints_after(m, np.zeros((0, 3)), (48, 64), flip_pairs=()).shape == (0, 3)


@pytest.mark.parametrize(
    "box", [[5, 5, 5, 9], [5, 5, 9, 5], [9, 5, 5, 9], [0, 0, np.nan, 4], [0, 0, np.inf, 4]]
)
def test_degenerate_boxes_are_refused(box: list[float]) -> None:
    boxes = np.array([[0, 0, 4, 4], box], np.float32)
    with pytest.raises(OptionError, match=r"boxes\[1\]"):
        boxes_after(Affine.identity(), boxes, (10, 10))


def test_bad_arguments_are_refused() -> None:
    m = Affine.identity()
    with pytest.raises(OptionError, match=r"\(k, 4\)"):
        boxes_after(m, np.zeros((2, 5)), (10, 10))
    with pytest.raises(OptionError, match="one per box"):
        boxes_after(m, np.ones((2, 4)) * [0, 0, 1, 1], (10, 10), classes=np.zeros(3))
    with pytest.raises(OptionError, match="min_visible"):
        boxes_after(m, np.zeros((0, 4)), (10, 10), min_visible=1.5)
    with pytest.raises(OptionError, match="flip_pairs"):
        keypoints_after(m, np.zeros((2, 3)), (10, 10), flip_pairs=[(0, 2)])
    with pytest.raises(OptionError, match="uint8"):
        mask_after(m, np.zeros((4, 4), np.int32), (4, 4))
    with pytest.raises(OptionError, match="fill"):
        mask_after(m, np.zeros((4, 4), np.uint8), (4, 4), fill=300)
    with pytest.raises(OptionError, match="out_hw"):
        mask_after(m, np.zeros((4, 4), np.uint8), (0, 4))


def test_keypoint_visibility_rules() -> None:
    kps = np.array([[2, 2, 2], [3, 3, 1], [4, 4, 0], [50, 2, 2], [10, 9.99, 2]], np.float32)
    out = keypoints_after(Affine.identity(), kps, (10, 10))
    np.testing.assert_array_equal(out[:2], kps[:2])  # hidden stays hidden, in place
    np.testing.assert_array_equal(out[2:], np.zeros((3, 3)))  # absent, outside, on the edge
    flipped = keypoints_after(geometry.hflip(10), kps[:2], (10, 10), flip_pairs=[(0, 1)])
    np.testing.assert_array_equal(flipped, [[7, 3, 1], [8, 2, 2]])


def test_mask_backends_agree_on_any_map() -> None:
    rng = np.random.default_rng(3)
    maps = [Affine.identity(), Affine.scale_translate(2, 2, 0, 0), geometry.hflip(30)]
    maps += [Affine.scale_translate(0.5, 0.5, -3.25, 7.75), Affine.scale_translate(-1, -1, 40, 30)]
    for _ in range(150):
        a = rng.normal(0, 1.5, (2, 2))
        maps.append(Affine(np.r_[np.c_[a, rng.uniform(-20, 60, 2)], [[0, 0, 1]]]))
    for i, m in enumerate(maps):
        src = rng.integers(0, 256, (int(rng.integers(1, 70)), int(rng.integers(1, 70))))
        src = src.astype(np.uint8)
        out_hw = (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
        fast = mask_after(m, src, out_hw, fill=7)
        np.testing.assert_array_equal(fast, mask_after(m, src, out_hw, fill=7, backend="numpy"))
        assert fast.shape == out_hw and fast.dtype == np.uint8, i


def test_mask_pixel_convention() -> None:
    src = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(mask_after(Affine.identity(), src, (3, 4)), src)
    np.testing.assert_array_equal(mask_after(geometry.hflip(4), src, (3, 4)), src[:, ::-1])
    # Output pixel 0's centre 0.5 samples input 1.0 (2x shrink): pixel 1, then 3, ...
    half = mask_after(Affine.scale_translate(2, 2, 0, 0), src, (2, 2), fill=99)
    np.testing.assert_array_equal(half, [[src[1, 1], src[1, 3]], [99, 99]])
    shifted = mask_after(Affine.scale_translate(1, 1, -1, 0), src, (3, 4), fill=99)
    np.testing.assert_array_equal(shifted[:, 0], [99, 99, 99])
    np.testing.assert_array_equal(shifted[:, 1:], src[:, :3])


def test_a_turned_box_across_the_edge_is_cut_exactly() -> None:
    # A 40 x 2 bar turned 45 degrees about its centre, put at (0, 15) of a 30 x 30 output:
    # half of it is in view, the half from (0, 15) down to the right.
    turn = np.array([[1.0, -1.0], [1.0, 1.0]]) / np.sqrt(2)  # input -> output
    centre = np.array([0.0, 15.0])
    back = np.eye(3)
    back[:2, :2], back[:2, 2] = turn.T, -turn.T @ centre
    m = Affine(back)
    bar = np.array([[-20, -1, 20, 1]], np.float32)
    got, keep, _ = boxes_after(m, bar, (30, 30), min_visible=0.49)  # half in view
    r = np.sqrt(2)
    np.testing.assert_allclose(got[0], [0, 15 - r, 21 / r, 15 + 21 / r], atol=1e-4)
    assert keep.tolist() == [0]
    assert boxes_after(m, bar, (30, 30), min_visible=0.51).keep.tolist() == []
    # Its bounding box clipped would start at y = 0.15: most of that is empty.
    assert boxes_after(m, bar, (30, 30), min_area=39.99).keep.tolist() == [0]
    assert boxes_after(m, bar, (30, 30), min_area=40.01).keep.tolist() == []
