"""COCO segmentations as mask recipes, drawn in the ingest worker (never while listing).

A COCO annotation's ``segmentation`` is polygons (lists of ``[x1, y1, x2, y2, ...]``) or
a run-length code (RLE): ``{"size": [h, w], "counts": [...]}`` with the runs as numbers,
or ``counts`` as COCO's compressed text. A :class:`CocoMask` holds an image's shapes and
the pixel value of each; ``render(width, height)`` draws them, later shapes over earlier
ones, into a uint8 label image (:class:`datumio.ingest.samples.MaskRecipe`).

Pixel rules, the same as COCO's own tools: coordinates are continuous (pixel ``i``
covers ``[i, i+1)``), and a pixel belongs to a polygon when its centre
``(x + 0.5, y + 0.5)`` is inside it (even-odd rule; the polygons of one annotation are
united), so the rectangle ``[x0, y0, x1, y0, x1, y1, x0, y1]`` covers exactly the
pixels ``x0 .. x1-1`` by ``y0 .. y1-1``. An RLE is read in column-major order (down the
first column, then the next), its runs alternating 0 and 1, starting with 0.

Thread/fork/pickle: immutable; small to pickle (the polygon vertices as float32, the
RLE as its text or runs), so a shard task carries its images' recipes to the worker. A
process keeps the last image's drawing (never changed once made), so that the class and
instance masks of one image draw its shapes once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.fields.spec import FieldValueError

_BAD_SEG = "bad segmentation"
#: The characters of a compressed RLE: 48 + a 6-bit group.
_RLE_FIRST, _RLE_LAST = 48, 48 + 63


def decode_rle_text(text: str) -> list[int]:
    """The runs of COCO's compressed RLE text (``pycocotools``' ``rleFrString``).

    Each run is written in groups of 5 bits, low bits first, one character per group
    (``chr(48 + group)``, bit 0x20 set while more groups follow, bit 0x10 of the last
    group the sign); from the fourth run on, the number written is the difference to the
    run two before.

    Raises:
        ValueError: a character outside the code, text that stops inside a run, or a
            negative run.
    """
    runs: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - _RLE_FIRST
        if not 0 <= code <= 63:
            raise ValueError(f"character {char!r} is not in COCO's RLE code")
        value |= (code & 0x1F) << shift
        shift += 5
        if code & 0x20:
            continue
        if code & 0x10:
            value -= 1 << shift  # sign-extend: the last group's 0x10 is the sign bit
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError(f"run {len(runs)} is negative ({value})")
        runs.append(value)
        value = shift = 0
    if shift:
        raise ValueError("the text stops inside a run")
    return runs


@dataclass(frozen=True, eq=False)
class Polygons:
    """An annotation's polygons: float32 ``(n, 2)`` vertex arrays, ``n >= 3`` each."""

    rings: tuple[np.ndarray, ...]

    def draw(self, canvas: np.ndarray, value: int) -> None:
        """Set the pixels whose centre lies inside any ring to ``value``."""
        for ring in self.rings:
            rows, covered = _ring_rows(ring, *canvas.shape)
            canvas[rows][covered] = value

    def to_json(self) -> list[list[float]]:
        return [ring.reshape(-1).tolist() for ring in self.rings]


@dataclass(frozen=True, eq=False)
class Rle:
    """An annotation's run-length code: ``counts`` as COCO's text or as the runs."""

    counts: str | np.ndarray
    height: int
    width: int

    def draw(self, canvas: np.ndarray, value: int) -> None:
        """Set the pixels the code marks to ``value``.

        Raises:
            FieldValueError: the code is not readable, or not of the canvas's size.
        """
        height, width = canvas.shape
        if (self.height, self.width) != (height, width):
            raise FieldValueError(
                "bad mask", f"an RLE of {self.width}x{self.height} on a {width}x{height} image"
            )
        runs = self.counts
        if isinstance(runs, str):
            try:
                runs = np.asarray(decode_rle_text(runs), dtype=np.int64)
            except ValueError as exc:
                raise FieldValueError("bad mask", f"compressed RLE: {exc}") from None
        if int(runs.sum()) != height * width:
            raise FieldValueError(
                "bad mask", f"RLE runs cover {int(runs.sum())} pixels, not {width}x{height}"
            )
        bits = np.repeat(np.arange(len(runs), dtype=np.uint8) % 2, runs)
        canvas[bits.reshape(width, height).T.astype(bool)] = value

    def to_json(self) -> dict[str, Any]:
        counts = self.counts if isinstance(self.counts, str) else self.counts.tolist()
        return {"size": [self.height, self.width], "counts": counts}


Shape = Polygons | Rle


@dataclass(frozen=True, eq=False)
class CocoMask:
    """An image's shapes and the value each one draws, in drawing order.

    ``size`` is the image's (width, height) as the JSON gives it (None: not given): the
    shapes were drawn on an image of that size, so an image of another size is refused.
    """

    shapes: tuple[Shape, ...]
    values: tuple[int, ...]
    size: tuple[int, int] | None = None

    def render(self, width: int, height: int) -> np.ndarray:
        """The label image (height, width) uint8: 0, then each shape's value over it.

        Raises:
            FieldValueError: the image is not of ``size``; an RLE that cannot be drawn.
        """
        if self.size is not None and self.size != (width, height):
            raise FieldValueError(
                "bad mask",
                f"the COCO JSON gives the image as {self.size[0]}x{self.size[1]}, "
                f"it is {width}x{height}",
            )
        if len(self.values) != len(self.shapes):
            raise ValueError(f"{len(self.shapes)} shapes but {len(self.values)} values")
        lookup = np.asarray((0, *self.values), dtype=np.uint8)
        return lookup[_owners(self.shapes, width, height)]

    def to_json(self) -> dict[str, Any]:
        return {
            "size": None if self.size is None else list(self.size),
            "values": list(self.values),
            "shapes": [shape.to_json() for shape in self.shapes],
        }


#: The last image's drawing: (shapes, width, height, owner map). An image's class mask and
#: instance mask draw the same shapes (one tuple, also after pickling), so the second of
#: them only looks its values up.
_last_drawn: list[tuple[tuple[Shape, ...], int, int, np.ndarray]] = []


def _owners(shapes: tuple[Shape, ...], width: int, height: int) -> np.ndarray:
    """Per pixel, the number + 1 of the last shape that covers it (0: none)."""
    for drawn, w, h, owners in _last_drawn:
        if drawn is shapes and (w, h) == (width, height):
            return owners
    owners = np.zeros((height, width), dtype=np.int32)
    for k, shape in enumerate(shapes):
        shape.draw(owners, k + 1)
    _last_drawn[:] = [(shapes, width, height, owners)]
    return owners


def _ring_rows(ring: np.ndarray, height: int, width: int) -> tuple[slice, np.ndarray]:
    """The rows a ring reaches and, over them, which pixels have their centre inside it.

    A row's centre line ``y + 0.5`` crosses the edges that span it (half-open in y, so a
    vertex on the line counts once); sorted, the crossings alternately enter and leave
    the ring, and pixel ``x`` is inside when ``x + 0.5`` lies in an entered stretch.
    """
    xs, ys = ring[:, 0].astype(np.float64), ring[:, 1].astype(np.float64)
    first = max(0, int(np.ceil(ys.min() - 0.5)))
    stop = min(height, int(np.ceil(ys.max() - 0.5)))
    if stop <= first:
        return slice(0, 0), np.zeros((0, width), dtype=bool)
    centres = np.arange(first, stop) + 0.5
    x0, y0, x1, y1 = xs, ys, np.roll(xs, -1), np.roll(ys, -1)
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    row, edge = np.nonzero((centres[:, None] >= low) & (centres[:, None] < high))
    at = x0[edge] + (centres[row] - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((at, row))
    row, at = row[order], at[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    column = np.clip(np.ceil(at - 0.5), 0, width).astype(np.intp)
    steps = np.zeros((stop - first, width + 1), dtype=np.int16)
    np.add.at(steps, (row, column), np.where(rank % 2 == 0, 1, -1).astype(np.int16))
    # The prefix sums are 0 outside and 1 inside (entries and exits alternate).
    return slice(first, stop), steps.cumsum(axis=1, dtype=np.int16)[:, :width] > 0


def shape_of(seg: Any, name: str) -> Shape | None:
    """An annotation's ``segmentation`` as polygons or an RLE (None: it has none); ``name``
    names the annotation in errors.

    Raises:
        FieldValueError: a segmentation that is not what COCO writes (``bad segmentation``).
    """
    if seg is None or seg == []:
        return None
    if isinstance(seg, list):
        return _polygons(seg, name)
    if isinstance(seg, dict):
        return _rle(seg, name)
    raise FieldValueError(_BAD_SEG, f"{name}: segmentation is neither polygons nor an RLE")


def _polygons(seg: list[Any], name: str) -> Polygons:
    rings = []
    for k, ring in enumerate(seg):
        where = f"{name}: segmentation polygon {k}"
        if not isinstance(ring, list) or len(ring) < 6 or len(ring) % 2:
            raise FieldValueError(_BAD_SEG, f"{where} is not 3 or more x, y pairs")
        rings.append(_coordinates(ring, where).reshape(-1, 2))
    return Polygons(tuple(rings))


def _rle(seg: Mapping[str, Any], name: str) -> Rle:
    size, counts = seg.get("size"), seg.get("counts")
    if not isinstance(size, list) or len(size) != 2 or not all(_is_count(v, 1) for v in size):
        raise FieldValueError(_BAD_SEG, f"{name}: RLE size {size!r} is not [height, width]")
    height, width = size
    if isinstance(counts, list) and all(_is_count(c, 0) for c in counts):
        return Rle(np.asarray(counts, dtype=np.int64), height, width)
    if isinstance(counts, str) and counts:
        return Rle(counts, height, width)
    raise FieldValueError(
        _BAD_SEG, f"{name}: RLE counts are neither runs (ints >= 0) nor COCO's compressed text"
    )


def _coordinates(ring: list[Any], where: str) -> np.ndarray:
    try:
        found = np.asarray(ring)  # numbers: an int or float array; else object, str, bool
    except (ValueError, OverflowError):
        found = np.asarray([], dtype=object)
    if found.ndim != 1 or found.dtype.kind not in "if":
        raise FieldValueError(_BAD_SEG, f"{where} holds a value that is not a number")
    out = found.astype(np.float32)
    if not bool(np.isfinite(out).all()):
        raise FieldValueError(_BAD_SEG, f"{where} is not finite")
    return out


def _is_count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low
