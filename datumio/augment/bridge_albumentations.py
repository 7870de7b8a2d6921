"""An albumentations pipeline on a decoded record (``Transform(pipeline=...)``).

The pipeline is called the albumentations way, ``pipeline(image=..., **targets)``:

* ``image``: HxWxC uint8;
* a boxes field: ``bboxes`` in the format of the Compose's ``BboxParams`` (``pascal_voc``,
  ``coco``, ``yolo`` or ``albumentations``; converted both ways), its classes in the first of
  ``BboxParams.label_fields`` (-1 when the field has none); one boxes field at most;
* mask fields: ``mask`` (one) or ``masks`` (several, in the Loader's field order);
* a keypoints field: ``keypoints`` in ``KeypointParams``' format (``xy``, ``yx``, ``xya``,
  ``xys``, ``xyas``, ``xysa``: angle and scale 0), which must keep every point
  (``remove_invisible=False``); the visibility is kept, 0 out of view.

The Compose is seeded with the sample's seed first
(:func:`datumio.augment.records.sample_seed`): ``pipeline.set_random_seed(seed)`` then the
same call gives the same result outside datumio.

Thread/fork/pickle: nothing imported here; the Compose travels inside the Transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from datumio.errors import TransformError

#: Columns of each keypoint format: where x and y are, how many columns in all.
_KEYPOINT_FORMATS = {
    "xy": (0, 1, 2),
    "yx": (1, 0, 2),
    "xya": (0, 1, 3),
    "xys": (0, 1, 3),
    "xyas": (0, 1, 4),
    "xysa": (0, 1, 4),
}


def run(pipeline: Any, record: dict[str, Any], kinds: Mapping[str, str], rng: Any) -> dict:
    """``record`` through the albumentations ``pipeline`` (see the module's docstring)."""
    image = record["image"]
    hw = image.shape[:2]
    inputs: dict[str, Any] = {"image": image}
    masks = [f for f, k in kinds.items() if k == "mask"]
    if len(masks) == 1:
        inputs["mask"] = record[masks[0]]
    elif masks:
        inputs["masks"] = [record[f] for f in masks]
    boxes = _one(kinds, "boxes")
    if boxes is not None:
        fmt, label = _bbox_params(pipeline)
        inputs["bboxes"] = _boxes_to(fmt, np.asarray(record[boxes], np.float64), hw)
        classes = record.get(f"{boxes}_classes")
        inputs[label] = np.full(len(inputs["bboxes"]), -1) if classes is None else classes
    points = _one(kinds, "keypoints")
    if points is not None:
        columns = _keypoint_columns(pipeline)
        value = np.asarray(record[points], np.float32)
        coords = np.zeros((len(value), columns[2]), np.float32)
        coords[:, columns[0]], coords[:, columns[1]] = value[:, 0], value[:, 1]
        inputs["keypoints"] = coords
    if hasattr(pipeline, "set_random_seed"):
        pipeline.set_random_seed(int(rng.integers(0, 2**63 - 1)))  # records.sample_seed
    out = pipeline(**inputs)
    result = dict(record)
    result["image"] = out["image"]
    result.update(
        zip(masks, [out["mask"]] if len(masks) == 1 else out.get("masks", []), strict=True)
    )
    if boxes is not None:
        fmt, label = _bbox_params(pipeline)
        result[boxes] = _boxes_from(fmt, np.asarray(out["bboxes"], np.float64), out["image"].shape)
        if f"{boxes}_classes" in record:
            result[f"{boxes}_classes"] = np.asarray(out[label])
    if points is not None:
        moved = np.asarray(out["keypoints"], np.float32).reshape(len(value), -1)
        columns = _keypoint_columns(pipeline)
        result[points] = np.stack([moved[:, columns[0]], moved[:, columns[1]], value[:, 2]], 1)
    return result


def _one(kinds: Mapping[str, str], kind: str) -> str | None:
    found = [f for f, k in kinds.items() if k == kind]
    if len(found) > 1:
        raise TransformError(
            f"an albumentations pipeline takes one {kind} field; the loader asked for "
            f"{', '.join(found)}: ask for one, or use a pipeline function"
        )
    return found[0] if found else None


def _processor(pipeline: Any, target: str, params: str) -> Any:
    processor = getattr(pipeline, "processors", {}).get(target)
    if processor is None:
        raise TransformError(
            f"the albumentations pipeline has no {params}, but the record has {target}: "
            f"build it as A.Compose([...], {target[:-1] if target == 'bboxes' else 'keypoint'}"
            f"_params=A.{params}(format=...)) to move them with the image"
        )
    return processor.params


def _bbox_params(pipeline: Any) -> tuple[str, str]:
    """The Compose's box format and the label field the box classes go in."""
    params = _processor(pipeline, "bboxes", "BboxParams")
    labels = list(params.label_fields or ())
    if len(labels) != 1:
        raise TransformError(
            f"BboxParams(label_fields={labels}): give exactly one label field (it receives "
            "the boxes' classes), e.g. label_fields=['labels']"
        )
    return str(params.format), labels[0]


def _keypoint_columns(pipeline: Any) -> tuple[int, int, int]:
    params = _processor(pipeline, "keypoints", "KeypointParams")
    if params.remove_invisible:
        raise TransformError(
            "KeypointParams(remove_invisible=True) drops keypoints out of view and datumio "
            "could not tell which ones; give remove_invisible=False (datumio sets their "
            "visibility to 0)"
        )
    if params.format not in _KEYPOINT_FORMATS:
        raise TransformError(
            f"KeypointParams(format={params.format!r}); give one of {sorted(_KEYPOINT_FORMATS)}"
        )
    return _KEYPOINT_FORMATS[params.format]


def _boxes_to(fmt: str, xyxy: np.ndarray, hw: tuple[int, ...]) -> np.ndarray:
    """Pixel ``[x0, y0, x1, y1]`` rows in albumentations' ``fmt``."""
    h, w = float(hw[0]), float(hw[1])
    x0, y0, x1, y1 = xyxy.reshape(-1, 4).T
    if fmt == "pascal_voc":
        return xyxy.reshape(-1, 4)
    if fmt == "coco":
        return np.stack([x0, y0, x1 - x0, y1 - y0], 1)
    if fmt == "albumentations":
        return np.stack([x0 / w, y0 / h, x1 / w, y1 / h], 1)
    if fmt == "yolo":
        return np.stack([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h], 1)
    raise TransformError(f"BboxParams(format={fmt!r}) is not one datumio converts")


def _boxes_from(fmt: str, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Albumentations' ``fmt`` rows (extra columns dropped) as pixel ``[x0, y0, x1, y1]``."""
    h, w = float(shape[0]), float(shape[1])
    a, b, c, d = rows.reshape(len(rows), -1)[:, :4].T if len(rows) else np.zeros((4, 0))
    if fmt == "pascal_voc":
        out = [a, b, c, d]
    elif fmt == "coco":
        out = [a, b, a + c, b + d]
    elif fmt == "albumentations":
        out = [a * w, b * h, c * w, d * h]
    else:  # yolo
        out = [(a - c / 2) * w, (b - d / 2) * h, (a + c / 2) * w, (b + d / 2) * h]
    return np.stack(out, 1).astype(np.float32)
