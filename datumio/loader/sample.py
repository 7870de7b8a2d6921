"""One sample: a record's image through its Transform into ``out``, and what its fields
need to follow it. The Loader's workers and ``MapDataset`` both go through here.

With datumio's own geometry the answer is the :class:`~datumio.augment.geometry.Affine` the
image was warped with (the fields are mapped through it when written); with an outside
pipeline (``Transform(pipeline=...)``) the fields go through the pipeline with the image and
the answer is :class:`~datumio.loader.fields.Placed`, the values it returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from datumio.augment.geometry import Affine
from datumio.augment.pipeline import apply
from datumio.augment.records import apply_record
from datumio.augment.spec import Transform
from datumio.fields import Boxes
from datumio.fields.spec import GEOMETRIC
from datumio.loader.fields import FieldPlan, Placed


def transform_sample(
    spec: Transform,
    payload: bytes | memoryview,
    rng: np.random.Generator,
    out: np.ndarray,
    *,
    encoding: str,
    shape: tuple[int, int, int],
    background: tuple[int, int, int],
    plan: FieldPlan | None,
    label: int,
    fields: Callable[[], Sequence[Any]],
) -> Affine | Placed | None:
    """Decode ``payload``, transform it into ``out`` and say how the fields follow (None:
    no field of ``plan`` follows the geometry, so no map is made).

    ``fields()`` reads the record's field values (``plan.specs`` order); it is called only
    when an outside pipeline needs them with the image.

    Raises:
        DecodeError: the record does not decode (the Loader replaces it).
        TransformError: ``user_fn`` or the pipeline failed (never replaced).
    """
    if spec.pipeline is None:
        return apply(
            spec,
            payload,
            rng,
            out,
            encoding=encoding,
            shape=shape,
            background=background,
            return_affine=plan is not None and plan.geometric,
        )
    values = fields()
    given, kinds = pipeline_record(plan, values, label)
    result = apply_record(
        spec, payload, rng, out, given, kinds, encoding=encoding, shape=shape, background=background
    )
    return placed(plan, result, values)


def pipeline_record(
    plan: FieldPlan | None, values: Sequence[Any], label: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """What an outside pipeline gets besides the image (:mod:`datumio.augment.records`):
    ``{"label": ..., FIELD: value ...}`` named as the batch names them, and the kinds of
    the geometric fields. A geometric field the record lacks goes in empty."""
    record: dict[str, Any] = {"label": int(label)}
    kinds: dict[str, str] = {}
    for spec, value in zip(plan.specs if plan else (), values, strict=True):
        name, kind = spec.name, spec.type
        if kind == "boxes":
            boxes = Boxes(np.zeros((0, 4), np.float32), None) if value is None else value
            record[name] = np.array(boxes.boxes, dtype=np.float32).reshape(-1, 4)
            if spec.length == 5:
                classes = boxes.classes if boxes.classes is not None else ()
                record[f"{name}_classes"] = np.asarray(classes, dtype=np.int32).reshape(-1)
        elif kind == "keypoints":
            rows = np.zeros((0, 3), np.float32) if value is None else value
            record[name] = np.array(rows, dtype=np.float32).reshape(-1, 3)
        elif kind == "mask":
            record[name] = None if value is None else np.array(value, dtype=np.uint8)
        else:
            record[name] = value
        if kind in GEOMETRIC and record[name] is not None:
            kinds[name] = kind
    return record, kinds


def placed(plan: FieldPlan | None, result: Mapping[str, Any], values: Sequence[Any]) -> Placed:
    """The pipeline's ``result`` (checked by :func:`datumio.augment.records.check`) as the
    field values :func:`write_sample` writes, in ``plan.specs`` order."""
    out: list[Any] = []
    for spec, value in zip(plan.specs if plan else (), values, strict=True):
        name = spec.name
        if spec.type not in GEOMETRIC or value is None:
            out.append(value)
        elif spec.type == "boxes":
            out.append(Boxes(result[name], result.get(f"{name}_classes")))
        else:
            out.append(result[name])
    return Placed(out)
