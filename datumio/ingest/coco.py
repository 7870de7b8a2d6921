"""What to ingest from a COCO JSON (instances or person keypoints) beside an image folder.

The JSON is read once and its annotations indexed by image id in one pass. Each entry of
``images`` whose file lies inside SRC becomes an item, in the JSON's order; its
annotations become the item's field values, checked here as a labels file's are
(:mod:`datumio.ingest.field_input`), except the masks: a segmentation stays a small
recipe (:mod:`datumio.ingest.coco_masks`) that the ingest worker draws at the image's
size. Class names are the categories in category-id order, plus ``background`` for
images without annotations (only when there are such images). No image is read here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from datumio.errors import IngestError
from datumio.fields.spec import FieldSpec, FieldValueError, parse_declaration
from datumio.fields.values import coerce
from datumio.ingest.coco_masks import CocoMask, Shape, shape_of
from datumio.ingest.labels_file import _check_rel
from datumio.ingest.options import IngestOptions
from datumio.ingest.sources import Item, Listing, Reject

#: The class of images without annotations (added only when there are such images).
BACKGROUND = "background"
#: A uint8 label image holds values up to 255: class id + 1, or annotation number + 1.
MASK_VALUES = 255
_BAD = "bad annotation"
_EXPECTED = (
    'a COCO JSON object with the lists "images", "annotations" and "categories" '
    "(as instances_*.json or person_keypoints_*.json)"
)


def list_coco(src: str, annotations_file: str | None, options: IngestOptions) -> Listing:
    """Items of the images a COCO JSON lists below ``src``, their annotations as fields.

    Args:
        src: the image folder (``file_name`` is relative to it).
        annotations_file: the COCO JSON (``IngestOptions.labels_file``).
        options: the run's options (``class_names``, ``fields``, ``columns`` and ``splits``
            are refused: the JSON decides them).

    Raises:
        IngestError: no annotations file, a file that is not a COCO JSON, categories
            without distinct integer ids and names, an option the JSON decides.
    """
    if annotations_file is None:
        raise IngestError(
            "the COCO importer reads its annotations from a JSON file: give it as "
            "labels_file (--labels instances_train.json)"
        )
    _refuse_options(options)
    data = _load(annotations_file)
    categories = _Categories.read(data["categories"], annotations_file)
    index = _index_annotations(data["annotations"])
    specs = _field_specs(categories, index.segmented)
    records = _Records(src, categories, index, frozenset(spec.name for spec in specs))
    for number, entry in enumerate(data["images"]):
        records.add(number, entry)
    rejects = records.rejects + index.orphans(records.image_ids)
    names = list(categories.names)
    extra = categories.background == len(names)
    if extra and any(item.label == categories.background for item in records.items):
        names.append(BACKGROUND)
    return Listing(records.items, names, rejects, kind="coco", fields=specs)


def _refuse_options(options: IngestOptions) -> None:
    given = [
        name for name in ("class_names", "fields", "columns", "splits") if getattr(options, name)
    ]
    if given:
        raise IngestError(
            f"the COCO importer takes its classes and fields from the JSON: drop {', '.join(given)}"
            " (--classes, --field, --column, --split)"
        )


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise IngestError(f"COCO annotations {path} do not exist") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise IngestError(f"{path} is not readable JSON ({exc}); expected {_EXPECTED}") from None
    if not isinstance(data, dict):
        raise IngestError(f"{path} holds a JSON {type(data).__name__}; expected {_EXPECTED}")
    missing = [
        key
        for key in ("images", "annotations", "categories")
        if not isinstance(data.get(key), list)
    ]
    if missing:
        have = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise IngestError(
            f"{path} has no list {missing[0]!r} (its keys: {have}); expected {_EXPECTED}"
        )
    return data


@dataclass(frozen=True)
class _Categories:
    """The categories in id order: class ``k`` is the k-th; keypoint names if any."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    keypoints: tuple[str, ...]
    class_of: Mapping[int, int] = field(repr=False)

    @property
    def background(self) -> int:
        """The class id of images without annotations: a category named ``background``,
        else one more class."""
        return self.names.index(BACKGROUND) if BACKGROUND in self.names else len(self.names)

    @classmethod
    def read(cls, entries: list[Any], path: str) -> _Categories:
        found: dict[int, str] = {}
        layouts: set[tuple[str, ...]] = set()
        for k, entry in enumerate(entries):
            cat_id, name, points = _category(entry, f"{path}: categories[{k}]")
            if cat_id in found:
                raise IngestError(f"{path}: category id {cat_id} is listed twice")
            found[cat_id] = name
            if points:
                layouts.add(points)
        ids = tuple(sorted(found))
        names = tuple(found[i] for i in ids)
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise IngestError(f"{path}: two categories are named {twice!r}; names must differ")
        if len(layouts) > 1:
            raise IngestError(
                f"{path}: categories name their keypoints differently ({len(layouts)} lists); "
                "one keypoint list per file is supported"
            )
        keypoints = layouts.pop() if layouts else ()
        return cls(ids, names, keypoints, {cat_id: k for k, cat_id in enumerate(ids)})


def _category(entry: Any, where: str) -> tuple[int, str, tuple[str, ...]]:
    """A category's id, name and keypoint names."""
    fields: dict[str, Any] = entry if isinstance(entry, dict) else {}
    cat_id, name = fields.get("id"), fields.get("name")
    if not _is_int(cat_id) or not isinstance(name, str) or not name.strip():
        raise IngestError(f"{where} is not an object with an integer id and a name")
    points = fields.get("keypoints") or []
    if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
        raise IngestError(f"{where}.keypoints is not a list of names")
    return cat_id, name.strip(), tuple(points)


@dataclass
class _Index:
    """The annotations by image id, in file order, and what the file as a whole has."""

    by_image: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: Annotations without an integer image id, with their place in the file.
    unplaced: list[Reject] = field(default_factory=list)
    #: Whether an annotation has a segmentation (the dataset then has mask fields).
    segmented: bool = False

    def orphans(self, image_ids: set[int]) -> list[Reject]:
        """A reject per annotation whose image the JSON does not list (in file order)."""
        out = list(self.unplaced)
        for image_id, anns in self.by_image.items():
            if image_id not in image_ids:
                out += [
                    Reject(_ann_name(ann), "unknown image id", f"image_id={image_id}")
                    for ann in anns
                ]
        return out


def _index_annotations(annotations: list[Any]) -> _Index:
    index = _Index()
    for k, ann in enumerate(annotations):
        image_id: Any = ann.get("image_id") if isinstance(ann, dict) else None
        if not _is_int(image_id):
            name = _ann_name(ann) if isinstance(ann, dict) else f"annotations[{k}]"
            index.unplaced.append(Reject(name, _BAD, f"image_id={image_id!r} is not an id"))
            continue
        index.by_image.setdefault(image_id, []).append(ann)
        index.segmented = index.segmented or bool(ann.get("segmentation"))
    return index


def _ann_name(ann: Mapping[str, Any]) -> str:
    return f"annotation {ann.get('id')}"


class _Records:
    """The images of the JSON, checked one at a time: an item, or a reject with a reason."""

    def __init__(
        self, src: str, categories: _Categories, index: _Index, stored: frozenset[str]
    ) -> None:
        self.path_problem = functools.partial(_check_rel, src, os.path.realpath(src))
        self.categories, self.by_image, self.stored = categories, index.by_image, stored
        self.items: list[Item] = []
        self.rejects: list[Reject] = []
        #: The image ids seen, and the image id of each path kept.
        self.image_ids: set[int] = set()
        self._paths: dict[str, int] = {}

    def add(self, number: int, entry: Any) -> None:
        """Check ``images[number]`` and keep it or reject it."""
        where = f"images[{number}]"
        problem = _entry_problem(entry)
        if problem is not None:
            self.rejects.append(Reject(where, "bad image entry", problem))
            return
        image_id, rel = entry["id"], entry["file_name"].replace("\\", "/")
        if image_id in self.image_ids:
            self.rejects.append(Reject(rel, "duplicate image id", f"id {image_id}"))
            return
        self.image_ids.add(image_id)
        try:
            anns = self.by_image.get(image_id, [])
            label, values = _record(entry, anns, self.categories, self.stored)
        except FieldValueError as exc:
            self.rejects.append(Reject(rel, exc.reason, f"image id {image_id}: {exc.detail}"))
            return
        reason = self.path_problem(rel)
        if reason is None:
            rel = posixpath.normpath(rel)
            if rel in self._paths:
                reason = f"duplicate path (first: image id {self._paths[rel]})"
        if reason is not None:
            self.rejects.append(Reject(rel, reason, f"image id {image_id}", label=label))
            return
        self._paths[rel] = image_id
        self.items.append(Item(rel, label, fields=values))


#: How far past the image's edge (pixels) a box is taken as the image's edge.
EDGE_SLACK = 1.0


def _entry_problem(entry: Any) -> str | None:
    """Why an ``images`` entry names no image, or None."""
    if not isinstance(entry, dict):
        return "not an object"
    if not _is_int(entry.get("id")):
        return f"id {entry.get('id')!r} is not an integer"
    if not isinstance(entry.get("file_name"), str) or not entry["file_name"].strip():
        return f"file_name {entry.get('file_name')!r} is not a path"
    for key in ("width", "height"):
        if key in entry and not (_is_int(entry[key]) and entry[key] > 0):
            return f"{key} {entry[key]!r} is not a size in pixels"
    return None


def _record(
    entry: Mapping[str, Any],
    anns: list[dict[str, Any]],
    categories: _Categories,
    stored: frozenset[str],
) -> tuple[int, dict[str, Any]]:
    """An image's label and the values of the ``stored`` fields.

    Raises:
        FieldValueError: an annotation that cannot be read, a box or keypoints the field
            checks refuse.
    """
    parts = [_Annotation.read(ann, categories) for ann in anns]
    size = (entry["width"], entry["height"]) if "width" in entry and "height" in entry else None
    values: dict[str, Any] = {
        "image_id": entry["id"],
        "boxes": coerce(_SPECS["boxes"], [_clipped(p.box, size) for p in parts], text=False),
        "iscrowd": np.asarray([p.crowd for p in parts], dtype=np.uint8),
        "annotation_ids": np.asarray([p.ann_id for p in parts], dtype=np.int64),
    }
    width = len(categories.keypoints)
    if "keypoints" in stored and parts:  # an image without annotations lacks the field
        rows = [row for p in parts for row in (p.points or [[0.0, 0.0, 0.0]] * width)]
        values["keypoints"] = coerce(_SPECS["keypoints"], rows, text=False)
    values.update(_masks(parts, size, stored))
    return _label(parts, categories), values


def _clipped(box: list[float], size: tuple[int, int] | None) -> list[float]:
    """A box that passes the edge of the image the JSON says it lies on by at most
    :data:`EDGE_SLACK` pixels (COCO's rounding) clipped to it; any other box unchanged (one
    further out is refused by the field checks)."""
    if size is None:
        return box
    width, height = size
    x0, y0, x1, y1, cls = box

    def clip(value: float, high: int) -> float:
        if -EDGE_SLACK <= value < 0:
            return 0.0
        return float(high) if high < value <= high + EDGE_SLACK else value

    return [clip(x0, width), clip(y0, height), clip(x1, width), clip(y1, height), cls]


def _masks(
    parts: list[_Annotation], size: tuple[int, int] | None, stored: frozenset[str]
) -> dict[str, CocoMask]:
    """The class mask (class id + 1) and the instance mask (annotation number + 1) of the
    annotations with a segmentation, drawn in annotation order; no instance mask for more
    annotations than a uint8 can number."""
    drawn = [(k, p.shape, p.cls) for k, p in enumerate(parts) if p.shape is not None]
    shapes = tuple(shape for _, shape, _ in drawn)
    out = {}
    if "mask" in stored:
        out["mask"] = CocoMask(shapes, tuple(cls + 1 for _, _, cls in drawn), size)
    if "instances" in stored and len(parts) <= MASK_VALUES:
        out["instances"] = CocoMask(shapes, tuple(k + 1 for k, _, _ in drawn), size)
    return out


@dataclass(frozen=True)
class _Annotation:
    """What an image's record takes from one of its annotations."""

    ann_id: int
    #: ``[x0, y0, x1, y1, class id]``.
    box: list[float]
    crowd: int
    area: float
    shape: Shape | None
    points: list[list[float]] | None

    @property
    def cls(self) -> int:
        """The annotation's class id."""
        return int(self.box[4])

    @classmethod
    def read(cls, ann: Mapping[str, Any], categories: _Categories) -> _Annotation:
        """The annotation's parts.

        Raises:
            FieldValueError: an id, category, bbox, iscrowd, area, segmentation or
                keypoints that is not what COCO writes.
        """
        name = _ann_name(ann)
        if not _is_int(ann.get("id")):
            raise FieldValueError(_BAD, f"{name}: id is not an integer")
        category = ann.get("category_id")
        cls_id = categories.class_of.get(category) if _is_int(category) else None
        if cls_id is None:
            raise FieldValueError(
                _BAD, f"{name}: category_id {ann.get('category_id')!r} is not a category"
            )
        x, y, w, h = _numbers(ann.get("bbox"), 4, f"{name}: bbox")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, bool):
            raise FieldValueError(_BAD, f"{name}: iscrowd {crowd!r} is not 0 or 1")
        area = ann.get("area")
        if area is None:
            area = w * h
        elif not _is_number(area):
            raise FieldValueError(_BAD, f"{name}: area {area!r} is not a number")
        return cls(
            ann_id=ann["id"],
            box=[x, y, x + w, y + h, cls_id],
            crowd=int(crowd),
            area=float(area),
            shape=shape_of(ann.get("segmentation"), name),
            points=_points(ann.get("keypoints"), len(categories.keypoints), name),
        )


def _label(parts: list[_Annotation], categories: _Categories) -> int:
    """The class of the largest annotation by area that is not a crowd (of the largest
    crowd when all are; ties to the first); the background class without annotations."""
    if not parts:
        return categories.background
    pool = [p for p in parts if not p.crowd] or parts
    return max(pool, key=lambda p: p.area).cls  # max keeps the first of equal areas


def _points(raw: Any, width: int, name: str) -> list[list[float]] | None:
    """An annotation's ``width`` keypoints as [x, y, v] rows (None: it gives none)."""
    if raw is None or raw == []:
        return None
    if not width:
        raise FieldValueError(_BAD, f"{name}: keypoints, but no category names its keypoints")
    flat = _numbers(raw, 3 * width, f"{name}: keypoints")
    return [flat[k : k + 3] for k in range(0, len(flat), 3)]


def _numbers(raw: Any, count: int, where: str, reason: str = _BAD) -> list[Any]:
    if not isinstance(raw, list) or len(raw) != count or not all(map(_is_number, raw)):
        raise FieldValueError(reason, f"{where} is not {count} numbers: {str(raw)[:60]}")
    if not all(math.isfinite(v) for v in raw):
        raise FieldValueError(reason, f"{where} is not finite")
    return raw


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def flip_pairs(names: tuple[str, ...] | list[str]) -> list[list[int]]:
    """Index pairs ``[i, j]`` of keypoints named ``left...`` and ``right...`` alike
    (``left_eye`` / ``right_eye``), the left one first, in the order of the left ones."""
    where = {name: k for k, name in enumerate(names)}
    pairs = []
    for k, name in enumerate(names):
        for left, right in (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT")):
            other = where.get(name.replace(left, right)) if left in name else None
            if other is not None and other != k:
                pairs.append([k, other])
                break
    return pairs


_SPECS = {
    "image_id": parse_declaration("image_id", "int"),
    "boxes": dataclasses.replace(parse_declaration("boxes", "boxes"), length=5),
    "iscrowd": parse_declaration("iscrowd", "array:uint8"),
    "annotation_ids": parse_declaration("annotation_ids", "array:int64"),
    "keypoints": parse_declaration("keypoints", "keypoints"),
    "mask": parse_declaration("mask", "mask"),
    "instances": parse_declaration("instances", "mask"),
}


def _field_specs(categories: _Categories, segmented: bool) -> tuple[FieldSpec, ...]:
    """The fields of the records, in storage order."""
    boxes = dataclasses.replace(_SPECS["boxes"], extra={"category_ids": list(categories.ids)})
    specs = [_SPECS["image_id"], boxes, _SPECS["iscrowd"], _SPECS["annotation_ids"]]
    if categories.keypoints:
        names = list(categories.keypoints)
        extra = {"names": names, "flip_pairs": flip_pairs(names)}
        specs.append(dataclasses.replace(_SPECS["keypoints"], extra=extra))
    if segmented:
        if len(categories.names) <= MASK_VALUES:  # class id + 1 must fit a uint8
            specs.append(_SPECS["mask"])
        specs.append(_SPECS["instances"])
    return tuple(specs)
