"""Boxes, keypoints and label masks that follow a sample's geometric augmentation.

Coordinates are continuous pixel coordinates of the stored (upright) image: pixel ``i``
covers ``[i, i + 1)``. The image is warped through one
:class:`~datumio.augment.geometry.Affine` ``m`` that maps an *output* point to the *input*
point it samples; an annotation at input point ``p`` therefore lands at output point
``m⁻¹(p)``. ``m`` is what :func:`datumio.augment.apply` returns with
``return_affine=True``, or :func:`sample_affine` on a copy of the sample's ``rng``.

* boxes: float32 ``(k, 4)`` ``[x0, y0, x1, y1]``, ``x0 < x1`` and ``y0 < y1``: the four
  corners are mapped, the part of that quadrilateral inside the output is cut out exactly
  and bounded, and a box is dropped when too little of it is left (:func:`boxes_after`);
* keypoints: float32 ``(k, 3)`` ``[x, y, v]``, COCO visibility (0 absent, 1 labelled but
  hidden, 2 visible): mapped, absent outside the output, left/right pairs swapped when the
  map mirrors (:func:`keypoints_after`);
* masks: uint8 ``(H, W)`` label images the size of the stored image, warped by nearest
  neighbour with the image's own sampling rule, ``fill`` outside (:func:`mask_after`).

``user_fn`` and the mirrored or wrapped copies that ``fill_mode="reflect"`` (etc.) puts in
the image's border are not followed: annotations only ever describe the warped stored
image, and a mask is ``fill`` outside it.

Thread/fork/pickle: pure functions on arrays; nothing is shared.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from datumio.augment import geometry, opencv
from datumio.augment.geometry import Affine
from datumio.augment.opencv_probe import load
from datumio.augment.spec import Transform
from datumio.errors import OptionError

#: Default of :func:`boxes_after`: a box is kept when at least this fraction of its
#: transformed area stays inside the output.
MIN_VISIBLE = 0.25
#: Default of :func:`boxes_after`: ... and at least this many square output pixels.
MIN_AREA = 1.0
_MASK_BACKENDS = ("auto", "opencv", "numpy")


class BoxesAfter(NamedTuple):
    """The boxes of :func:`boxes_after`: ``boxes`` ``(n, 4)`` float32 in output pixels,
    ``keep`` the indices (into the input boxes) they came from, ``classes`` the input
    classes at ``keep`` (None when none were given)."""

    boxes: np.ndarray
    keep: np.ndarray
    classes: np.ndarray | None


def sample_affine(
    spec: Transform, stored_shape: tuple[int, ...], rng: np.random.Generator
) -> Affine:
    """The map :func:`datumio.augment.apply` warps a sample with, for the same ``rng``.

    It draws what ``apply`` draws, in the same order, and so consumes ``rng``: pass a copy
    (``copy.deepcopy(rng)``) or a second :func:`~datumio.augment.sample_rng` of the same
    (seed, epoch, position). Every decode path of ``apply`` (the plain-crop fast path, a
    DCT-scaled JPEG, Pillow, raw arrays) warps with this map in stored-image coordinates.

    Args:
        spec: the sample's transform.
        stored_shape: the stored (upright) image's (height, width[, channels]).
        rng: the sample's random stream (consumed).
    """
    h, w = int(stored_shape[0]), int(stored_shape[1])
    return geometry.plan(spec, w, h, rng)


def _inverse(m: Affine) -> tuple[np.ndarray, np.ndarray]:
    """(A⁻¹, t) with ``output = A⁻¹ (input - t)``: where an input point lands."""
    a = m.m[:2, :2]
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if not np.isfinite(det) or det == 0.0:
        raise OptionError(f"{m!r} is not invertible; annotations cannot follow it")
    inv = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]]) / det
    return inv, m.m[:2, 2]


def _size(out_hw: tuple[int, int]) -> tuple[int, int]:
    h, w = int(out_hw[0]), int(out_hw[1])
    if h < 1 or w < 1:
        raise OptionError(f"out_hw={out_hw}; give the output (height, width), both >= 1")
    return h, w


def _rows(name: str, values: np.ndarray, columns: int) -> np.ndarray:
    """``values`` as a float64 ``(k, columns)`` array; an empty input is ``(0, columns)``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, columns)
    if arr.ndim != 2 or arr.shape[1] != columns:
        raise OptionError(f"{name} of shape {arr.shape}; give a (k, {columns}) array")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise OptionError(f"{name}[{bad}] = {arr[bad].tolist()} is not finite")
    return arr


def boxes_after(
    m: Affine,
    boxes: np.ndarray,
    out_hw: tuple[int, int],
    *,
    min_visible: float = MIN_VISIBLE,
    min_area: float = MIN_AREA,
    classes: np.ndarray | None = None,
) -> BoxesAfter:
    """Boxes of the stored image in the output of the map ``m``.

    Each box becomes the quadrilateral its four corners map to (a parallelogram; the box
    itself without rotation or shear). Its part inside the output ``[0, w] x [0, h]`` is
    cut out exactly, and the result is that part's axis-aligned bounding box: a rotated box
    half out of view gets the box of what is in view, not its whole bounding box clipped
    (which can be far larger). A box is dropped when the area in view is below
    ``min_visible`` times the quadrilateral's whole area (what is left no longer shows the
    object) or below ``min_area`` square output pixels (too small to learn from). The
    defaults, 0.25 and 1 px², keep any box a quarter of which is still in view.

    Args:
        m: the sample's map (output to stored-image coordinates).
        boxes: ``(k, 4)`` ``[x0, y0, x1, y1]`` in stored-image pixels.
        out_hw: the output (height, width).
        min_visible: the least fraction (0 to 1) of a box's area that must stay in view.
        min_area: the least area in view, in square output pixels.
        classes: optional ``(k,)`` per-box classes, returned at ``keep``.

    Raises:
        OptionError: a box is degenerate (``x1 <= x0`` or ``y1 <= y0``) or not finite, the
            arrays have the wrong shapes, or a threshold is out of range.
    """
    h, w = _size(out_hw)
    if not 0.0 <= min_visible <= 1.0:
        raise OptionError(f"min_visible={min_visible}; give a fraction in [0, 1]")
    if not min_area >= 0.0:
        raise OptionError(f"min_area={min_area}; give square output pixels >= 0")
    arr = _rows("boxes", boxes, 4)
    if classes is not None:
        classes = np.asarray(classes)
        if classes.shape != (len(arr),):
            raise OptionError(
                f"classes of shape {classes.shape} for {len(arr)} boxes; give one per box"
            )
    bad = (arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise OptionError(
            f"boxes[{i}] = {arr[i].tolist()} is degenerate; boxes are [x0, y0, x1, y1] "
            "with x0 < x1 and y0 < y1 (drop empty boxes before augmenting)"
        )
    inv, t = _inverse(m)
    # The corners in order around the box, mapped: (k, 4) x and y.
    xs = arr[:, [0, 2, 2, 0]] - t[0]
    ys = arr[:, [1, 1, 3, 3]] - t[1]
    qx = inv[0, 0] * xs + inv[0, 1] * ys
    qy = inv[1, 0] * xs + inv[1, 1] * ys
    x0, x1 = qx.min(axis=1), qx.max(axis=1)
    y0, y1 = qy.min(axis=1), qy.max(axis=1)
    whole = abs(inv[0, 0] * inv[1, 1] - inv[0, 1] * inv[1, 0]) * (
        (arr[:, 2] - arr[:, 0]) * (arr[:, 3] - arr[:, 1])
    )
    # A box that stays a box (no rotation or shear), or lies wholly in view, is its own
    # cut; only a turned box across the output's edge needs the polygon cut.
    turned = ((x0 < 0) | (y0 < 0) | (x1 > w) | (y1 > h)) & (not m.axis_aligned)
    x0, x1 = np.clip(x0, 0.0, w), np.clip(x1, 0.0, w)
    y0, y1 = np.clip(y0, 0.0, h), np.clip(y1, 0.0, h)
    seen = (x1 - x0) * (y1 - y0)
    if turned.any():
        px, py, valid = _clip_points(m, arr[turned], qx[turned], qy[turned], w, h)
        big = np.finfo(np.float64).max
        x0[turned] = np.where(valid, px, big).min(axis=1)
        y0[turned] = np.where(valid, py, big).min(axis=1)
        x1[turned] = np.where(valid, px, -big).max(axis=1)
        y1[turned] = np.where(valid, py, -big).max(axis=1)
        seen[turned] = _convex_area(px, py, valid)
    kept = (seen > 0.0) & (x1 > x0) & (y1 > y0)
    kept &= (seen >= min_area) & (seen >= min_visible * whole)
    keep = np.flatnonzero(kept)
    out = np.stack([x0[keep], y0[keep], x1[keep], y1[keep]], axis=1).astype(np.float32)
    return BoxesAfter(out, keep, None if classes is None else classes[keep])


def _clip_points(
    m: Affine, boxes: np.ndarray, qx: np.ndarray, qy: np.ndarray, w: int, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, valid), each ``(k, 24)``: points whose convex hull is each mapped box (corners
    ``qx``, ``qy`` in order around it) cut to ``[0, w] x [0, h]``: its corners inside the
    output, the output's corners inside it, and where its edges cross the output's edges."""
    k = len(boxes)
    # 1. The mapped corners that lie in the output.
    in_x, in_y = qx, qy
    in_ok = (qx >= 0) & (qx <= w) & (qy >= 0) & (qy <= h)
    # 2. The output's corners that lie in the box (tested in stored-image coordinates).
    cx = np.array([0.0, w, w, 0.0])
    cy = np.array([0.0, 0.0, h, h])
    at = m.apply(np.stack([cx, cy], axis=1))
    c_ok = (
        (at[None, :, 0] >= boxes[:, 0:1])
        & (at[None, :, 0] <= boxes[:, 2:3])
        & (at[None, :, 1] >= boxes[:, 1:2])
        & (at[None, :, 1] <= boxes[:, 3:4])
    )
    corner_x, corner_y = np.broadcast_to(cx, (k, 4)), np.broadcast_to(cy, (k, 4))
    # 3. Each mapped edge a -> b against the lines x = 0, x = w, y = 0, y = h.
    ax, ay = qx[:, :, None], qy[:, :, None]
    dx = np.roll(qx, -1, axis=1)[:, :, None] - ax
    dy = np.roll(qy, -1, axis=1)[:, :, None] - ay
    line = np.array([0.0, w, 0.0, h])
    vertical = np.array([True, True, False, False])
    start = np.where(vertical, ax, ay)
    step = np.where(vertical, dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):  # an edge along a line: step 0
        frac = (line - start) / step
        ex = np.where(vertical, line, ax + frac * dx)
        ey = np.where(vertical, ay + frac * dy, line)
    e_ok = (step != 0) & (frac >= 0) & (frac <= 1)
    e_ok &= np.where(vertical, (ey >= 0) & (ey <= h), (ex >= 0) & (ex <= w))
    px = np.concatenate([in_x, corner_x, ex.reshape(k, 16)], axis=1)
    py = np.concatenate([in_y, corner_y, ey.reshape(k, 16)], axis=1)
    valid = np.concatenate([in_ok, c_ok, e_ok.reshape(k, 16)], axis=1)
    return px, py, valid


def _convex_area(px: np.ndarray, py: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(k,)`` areas of the convex hulls of the valid points of each row, which all lie on
    the hull's boundary: sorted by angle about their mean, then the shoelace formula (the
    invalid points repeat the last valid one and add nothing)."""
    n = valid.sum(axis=1)
    safe = np.maximum(n, 1)
    mx = np.where(valid, px, 0.0).sum(axis=1) / safe
    my = np.where(valid, py, 0.0).sum(axis=1) / safe
    angle = np.where(valid, np.arctan2(py - my[:, None], px - mx[:, None]), np.inf)
    order = np.argsort(angle, axis=1)
    sx = np.take_along_axis(px, order, axis=1)
    sy = np.take_along_axis(py, order, axis=1)
    last = np.maximum(n - 1, 0)[:, None]
    cols = np.arange(px.shape[1])[None, :]
    sx = np.where(cols <= last, sx, np.take_along_axis(sx, last, axis=1))
    sy = np.where(cols <= last, sy, np.take_along_axis(sy, last, axis=1))
    cross = sx * np.roll(sy, -1, axis=1) - np.roll(sx, -1, axis=1) * sy
    area = 0.5 * np.abs(cross.sum(axis=1))
    return np.where(n >= 3, area, 0.0)


def keypoints_after(
    m: Affine,
    kps: np.ndarray,
    out_hw: tuple[int, int],
    *,
    flip_pairs: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
) -> np.ndarray:
    """Keypoints of the stored image in the output of the map ``m``.

    Each ``(x, y)`` lands at ``m⁻¹(x, y)``; one that is absent (``v = 0``) or lands
    outside ``[0, w) x [0, h)`` becomes ``(0, 0, 0)`` (COCO's absent keypoint), the others
    keep ``v``. When the map mirrors (the determinant of its 2x2 part is negative: an odd
    number of flips) each listed pair ``(i, j)`` (left eye, right eye) swaps rows, so that
    index ``i`` still names the left one.

    Args:
        m: the sample's map (output to stored-image coordinates).
        kps: ``(k, 3)`` ``[x, y, v]`` in stored-image pixels.
        out_hw: the output (height, width).
        flip_pairs: index pairs swapped by a mirroring map.

    Returns:
        ``(k, 3)`` float32 keypoints in output pixels.

    Raises:
        OptionError: wrong shapes, non-finite values or a pair index out of range.
    """
    h, w = _size(out_hw)
    arr = _rows("kps", kps, 3)
    inv, t = _inverse(m)
    dx, dy = arr[:, 0] - t[0], arr[:, 1] - t[1]
    out = np.empty((len(arr), 3), np.float32)
    out[:, 0] = inv[0, 0] * dx + inv[0, 1] * dy
    out[:, 1] = inv[1, 0] * dx + inv[1, 1] * dy
    out[:, 2] = arr[:, 2]
    x, y = out[:, 0], out[:, 1]
    gone = (out[:, 2] == 0) | (x < 0) | (x >= w) | (y < 0) | (y >= h)
    out[gone] = 0.0
    pairs = np.asarray(flip_pairs, dtype=np.intp).reshape(-1, 2)
    if pairs.size and (pairs.min() < -len(arr) or pairs.max() >= len(arr)):
        raise OptionError(f"flip_pairs {pairs.tolist()} index outside the {len(arr)} keypoints")
    if pairs.size and inv[0, 0] * inv[1, 1] - inv[0, 1] * inv[1, 0] < 0.0:
        out[pairs[:, [0, 1]]] = out[pairs[:, [1, 0]]]
    return out


def mask_after(
    m: Affine,
    mask: np.ndarray,
    out_hw: tuple[int, int],
    *,
    fill: int = 255,
    backend: str = "auto",
) -> np.ndarray:
    """A uint8 label mask of the stored image warped by nearest neighbour through ``m``.

    Output pixel ``(x, y)`` takes the mask pixel that contains ``m(x + 0.5, y + 0.5)``, the
    image's own rule (``resample="nearest"``), and ``fill`` (the ignore label) where that
    point is outside the mask. The sample points are computed once, in float32, with the
    matrix, half-pixel shift and 1/256 px nudge of the image's OpenCV nearest warp
    (:func:`datumio.augment.opencv.warp_affine`); ``backend="auto"`` then gathers them
    with OpenCV's ``remap`` (``INTER_NEAREST``) when installed, ``"numpy"`` by indexing.
    Both round the same float32 points the same way, so they give the same labels bit for
    bit on any install. (``warpAffine`` itself is not used: how it rounds differs between
    OpenCV versions and pixel types, 1/1024 px fixed point in some and float32 in others,
    which no fallback could promise to repeat; the gather costs about 50 us at 224x224.)

    Args:
        m: the sample's map (output to stored-image coordinates).
        mask: ``(H, W)`` uint8 labels the size of the stored image.
        out_hw: the output (height, width).
        fill: 0-255 label outside the stored image.
        backend: ``"auto"``, ``"opencv"`` (fails when it is not installed) or ``"numpy"``.

    Raises:
        OptionError: ``mask`` is not a 2-D uint8 array, or ``fill``/``backend`` is bad.
    """
    h, w = _size(out_hw)
    src = np.asarray(mask)
    if src.ndim != 2 or src.dtype != np.uint8:
        raise OptionError(
            f"mask of shape {src.shape} and dtype {src.dtype}; give an (H, W) uint8 label image"
        )
    if not 0 <= int(fill) <= 255 or int(fill) != fill:
        raise OptionError(f"fill={fill!r}; give a label 0-255")
    if backend not in _MASK_BACKENDS:
        raise OptionError(f"backend={backend!r}; use one of {_MASK_BACKENDS}")
    x, y = _sample_points(m, w, h)
    cv2 = load() if backend != "numpy" else None
    if backend == "opencv" and cv2 is None:
        raise ImportError('OpenCV is not installed: pip install "datumio[opencv]"')
    if cv2 is not None:
        out: np.ndarray = cv2.remap(
            np.ascontiguousarray(src),
            x,
            y,
            cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=int(fill),
        )
        return out
    # OpenCV rounds the float32 coordinates half to even, as numpy's rint does.
    ix, iy = np.rint(x).astype(np.intp), np.rint(y).astype(np.intp)
    src_h, src_w = src.shape
    inside = (ix >= 0) & (ix < src_w) & (iy >= 0) & (iy < src_h)
    out = np.full((h, w), int(fill), np.uint8)
    out[inside] = src[iy[inside], ix[inside]]
    return out


def _sample_points(m: Affine, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (h, w) x and y of the input pixel centre nearest to each output sample, in
    OpenCV's coordinates (pixel centres at integers): the matrix of
    :func:`datumio.augment.opencv.warp_affine` for nearest (half-pixel shift and
    :data:`~datumio.augment.opencv.NEAREST_NUDGE`), evaluated in float32 as OpenCV 5's
    ``warpAffine`` of a uint8 plane does, ``(a * x + b * y) + c``."""
    a = m.m
    matrix = np.array(a[:2], dtype=np.float64)
    matrix[:, 2] += 0.5 * (a[:2, 0] + a[:2, 1]) - 0.5 + opencv.NEAREST_NUDGE
    coef = matrix.astype(np.float32)
    cols, rows = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    x = (coef[0, 0] * cols)[None, :] + (coef[0, 1] * rows)[:, None]
    x += coef[0, 2]
    y = (coef[1, 0] * cols)[None, :] + (coef[1, 1] * rows)[:, None]
    y += coef[1, 2]
    return x, y
