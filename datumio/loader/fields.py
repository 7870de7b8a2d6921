"""Record fields in a batch: which arrays each field adds, and how a worker fills them.

``Loader(..., fields=("boxes", "tags"))`` adds, after ``(images, labels)``, the arrays of
each field in the order asked (``Loader.batch_names`` names every entry):

    type        entries (B = batch size)                              a record without it
    int         NAME int64 (B,)                                      INT_ABSENT (-2**63)
    float       NAME float64 (B,)                                    NaN
    multilabel  NAME uint8 (B, V), multi-hot over the V ids           all 0
    array       NAME DTYPE (B, M), NAME_count int32 (B,)              count 0
    boxes       NAME float32 (B, M, 4) [, NAME_classes int32 (B, M)],
                NAME_count int32 (B,)                                 count 0
    keypoints   NAME float32 (B, M, 3), NAME_count int32 (B,)          count 0
    mask        NAME uint8 (B, H, W) (the output size)                 all ``mask_fill``

``M`` is the most values one record of the dataset has (``FieldSpec.max_items``); rows past
a sample's count are 0 (classes -1). Boxes, keypoints and masks follow the sample's
augmentation (:mod:`datumio.augment.annotations`): boxes left with too little in view are
dropped (the count says how many remain), keypoints out of view get visibility 0, masks
are warped nearest-neighbour with ``mask_fill`` outside the image. Text and bytes fields do
not go into batches (read them with ``Dataset.field``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.augment.annotations import MIN_VISIBLE, boxes_after, keypoints_after, mask_after
from datumio.augment.geometry import Affine
from datumio.errors import OptionError, TransformError
from datumio.fields.spec import GEOMETRIC, FieldSpec
from datumio.sampling import rarest_label
from datumio.shards import format as fmt


@dataclass(frozen=True)
class FieldArray:
    """One batch entry a field adds: its name, the shape of one sample's part, dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    #: What a sample without a value holds.
    fill: float


@dataclass(frozen=True)
class FieldPlan:
    """The fields a loader puts in its batches and how (picklable, sent to workers)."""

    specs: tuple[FieldSpec, ...]
    arrays: tuple[FieldArray, ...]
    out_hw: tuple[int, int]
    box_min_visible: float = MIN_VISIBLE
    keypoint_pairs: tuple[tuple[int, int], ...] = ()
    mask_fill: int = 255

    @property
    def geometric(self) -> bool:
        """Whether a field follows the image's geometry (the worker needs its map)."""
        return any(s.type in GEOMETRIC for s in self.specs)


def plan_fields(
    available: Mapping[str, FieldSpec],
    names: Sequence[str],
    out_hw: tuple[int, int],
    *,
    box_min_visible: float = MIN_VISIBLE,
    keypoint_pairs: Sequence[tuple[int, int]] = (),
    mask_fill: int = 255,
) -> FieldPlan:
    """The :class:`FieldPlan` of ``names`` (fields of the dataset, in batch order).

    Raises:
        OptionError: an unknown field, a text or bytes field, a field asked twice, or a
            dataset written before ``max_items`` was recorded.
    """
    specs = []
    arrays: list[FieldArray] = []
    for name in names:
        spec = available.get(name)
        if spec is None:
            have = ", ".join(available) or "none (image and label only)"
            raise OptionError(f"fields=: the dataset has no field {name!r}; its fields: {have}")
        if spec in specs:
            raise OptionError(f"fields=: {name!r} is asked twice")
        specs.append(spec)
        arrays += _arrays_of(spec, out_hw, mask_fill)
    pairs = tuple((int(a), int(b)) for a, b in keypoint_pairs)
    return FieldPlan(tuple(specs), tuple(arrays), out_hw, box_min_visible, pairs, mask_fill)


def _arrays_of(spec: FieldSpec, out_hw: tuple[int, int], mask_fill: int) -> list[FieldArray]:
    name, kind = spec.name, spec.type
    if kind == "int":
        return [FieldArray(name, (), "int64", float(fmt.INT_ABSENT))]
    if kind == "float":
        return [FieldArray(name, (), "float64", float("nan"))]
    if kind == "multilabel":
        return [FieldArray(name, (int(spec.length or 0),), "uint8", 0)]
    if kind == "mask":
        return [FieldArray(name, out_hw, "uint8", mask_fill)]
    if kind not in ("array", "boxes", "keypoints"):
        raise OptionError(
            f"fields=: {name!r} is a {kind} field; batches hold numbers only "
            f"(read it with Dataset.field(i, {name!r}))"
        )
    most = spec.length if kind == "array" and spec.length else spec.max_items
    if most <= 0 and spec.items > 0:
        raise OptionError(
            f"fields=: the manifest does not say how many values {name!r} holds at most "
            "(a dataset from an earlier datumio); ingest it again"
        )
    most = max(int(most), 1)
    count = FieldArray(f"{name}_count", (), "int32", 0)
    if kind == "array":
        return [FieldArray(name, (most,), np.dtype(spec.dtype).name, 0), count]
    if kind == "keypoints":
        return [FieldArray(name, (most, 3), "float32", 0), count]
    out = [FieldArray(name, (most, 4), "float32", 0)]
    if spec.length == 5:
        out.append(FieldArray(f"{name}_classes", (most,), "int32", -1))
    return [*out, count]


def balance_groups(dataset: Any, name: str) -> np.ndarray:
    """The groups a sampler balances over for ``Loader(balance_by=name)``: the dataset's
    external ``group``, an int field's values (records without one form one group),
    or a multilabel field's rarest label per record (:func:`datumio.sampling.rarest_label`;
    records without a label form one group).

    Raises:
        OptionError: no such group or field, or a field of another type.
    """
    if name == "group":
        if dataset.groups is None:
            raise OptionError("balance_by='group' but the dataset was ingested without groups")
        return np.asarray(dataset.groups, dtype=np.int64)
    spec = dataset.fields.get(name)
    if spec is None or spec.type not in ("int", "multilabel"):
        have = [n for n, s in dataset.fields.items() if s.type in ("int", "multilabel")]
        raise OptionError(
            f"balance_by={name!r}: give 'group' or an int or multilabel field "
            f"(this dataset's: {', '.join(have) or 'none'})"
        )
    if spec.type == "int":
        _, groups = np.unique(np.asarray(dataset.field_index(name)), return_inverse=True)
        return groups.astype(np.int64)
    offsets, ids = dataset.field_index(name)
    return rarest_label(offsets, ids, int(spec.length or 0))


@dataclass(frozen=True)
class Placed:
    """Field values an outside pipeline already moved into output pixels (in ``plan.specs``
    order): :func:`write_sample` writes them as they are."""

    values: list[Any]


def write_sample(
    plan: FieldPlan,
    values: Sequence[Any],
    m: Affine | Placed | None,
    views: Sequence[np.ndarray],
    k: int,
) -> None:
    """Write sample ``k``'s field ``values`` (``Dataset.field`` results, in ``plan.specs``
    order) into the batch arrays ``views`` (``plan.arrays`` order): geometric ones mapped
    through ``m`` (the map the image was warped with), or, when ``m`` is :class:`Placed`,
    as an outside pipeline placed them."""
    if isinstance(m, Placed):
        values, m = m.values, None
        placed = True
    else:
        placed = False
    at = 0
    for spec, value in zip(plan.specs, values, strict=True):
        n = len(_arrays_of(spec, plan.out_hw, plan.mask_fill))
        if placed and spec.type in GEOMETRIC and value is not None:
            _write_placed(spec, value, views[at : at + n], k)
        else:
            _write(plan, spec, value, m, views[at : at + n], k)
        at += n


def _write_placed(spec: FieldSpec, value: Any, views: Sequence[np.ndarray], k: int) -> None:
    """A geometric value already in output pixels (a pipeline's result)."""
    if spec.type == "mask":
        views[0][k] = value
        return
    rows, classes = (value.boxes, value.classes) if spec.type == "boxes" else (value, None)
    count, most = len(rows), views[0].shape[1]
    if count > most:
        raise TransformError(
            f"the pipeline returned {count} rows of {spec.name!r}; a batch holds at most "
            f"{most} (the field's max_items): a pipeline may drop rows, not add them"
        )
    _write_rows(views, k, rows, classes)


def _write(
    plan: FieldPlan,
    spec: FieldSpec,
    value: Any,
    m: Affine | None,
    views: Sequence[np.ndarray],
    k: int,
) -> None:
    kind = spec.type
    if kind in GEOMETRIC and value is not None and m is None:
        raise OptionError(f"field {spec.name!r} needs the sample's geometry")
    m = m or Affine.identity()  # only non-geometric fields, or no value, get here without
    if kind in ("int", "float"):
        views[0][k] = views[0].dtype.type(value) if value is not None else _fill(views[0])
    elif kind == "multilabel":
        row = views[0][k]
        row[:] = 0
        if value is not None:
            row[np.asarray(value, dtype=np.int64)] = 1
    elif kind == "mask":
        if value is None:
            views[0][k] = plan.mask_fill
        else:
            views[0][k] = mask_after(m, value, plan.out_hw, fill=plan.mask_fill)
    else:
        if kind == "boxes" and value is not None:
            kept = boxes_after(
                m,
                value.boxes,
                plan.out_hw,
                min_visible=plan.box_min_visible,
                classes=value.classes,
            )
            rows, classes = kept.boxes, kept.classes
        elif kind == "keypoints" and value is not None:
            rows = keypoints_after(m, value, plan.out_hw, flip_pairs=plan.keypoint_pairs)
            classes = None
        else:
            # a record without the field: no rows, of the batch's row shape ((0, 3), (0, 4))
            absent = np.zeros((0, *views[0].shape[2:]))
            rows, classes = (absent if value is None else np.asarray(value)), None
        _write_rows(views, k, rows, classes)


def _write_rows(
    views: Sequence[np.ndarray], k: int, rows: np.ndarray, classes: np.ndarray | None
) -> None:
    """Sample ``k``'s rows (and box classes), zero (-1) padded, and their count."""
    count = len(rows)
    views[0][k] = 0
    views[0][k, :count] = rows
    if len(views) == 3:  # boxes with classes
        views[1][k] = -1
        if classes is not None:
            views[1][k, :count] = classes
    views[-1][k] = count


def _fill(view: np.ndarray) -> Any:
    return fmt.INT_ABSENT if view.dtype.kind == "i" else np.nan
