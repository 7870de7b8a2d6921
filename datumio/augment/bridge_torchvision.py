"""A torchvision ``transforms.v2`` pipeline on a decoded record (``Transform(pipeline=...)``).

The pipeline is called the way torchvision's detection references call it,
``image, target = pipeline(image, target)``:

* ``image``: ``tv_tensors.Image`` (CxHxW uint8);
* ``target``: for a boxes field ``NAME``, ``tv_tensors.BoundingBoxes`` (``XYXY``) under
  ``NAME`` and its classes under ``"labels"`` (int64; -1 when the field has none), where
  ``SanitizeBoundingBoxes`` finds them (a second boxes field keeps ``NAME_classes``); a mask
  field ``tv_tensors.Mask`` (HxW); a keypoints field ``tv_tensors.KeyPoints`` (k x 2) and
  its visibility under ``NAME_visibility``.

torch's default CPU generator is seeded with the sample's seed first
(:func:`datumio.augment.records.sample_seed`): ``torch.manual_seed(seed)`` then the same
pipeline on the same record gives the same result outside datumio. In a child process (a
Loader or DataLoader worker) torch runs on one thread, as ``DataLoader`` workers do.

Thread/fork/pickle: torch is imported on the first call, in the process that runs it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from typing import Any

import numpy as np

from datumio.errors import TransformError

_threads_set = False


def run(pipeline: Any, record: dict[str, Any], kinds: Mapping[str, str], rng: Any) -> dict:
    """``record`` through the v2 ``pipeline`` (see the module's docstring), back as numpy."""
    import torch
    from torchvision import tv_tensors

    _one_thread(torch)
    image = record["image"]
    h, w = image.shape[:2]
    target, labels_of = _target(record, kinds, (h, w), torch, tv_tensors)
    chw = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))  # a view: no copy
    seed = int(rng.integers(0, 2**63 - 1))  # records.sample_seed: the sample's first draw
    # The CPU generator, which v2 transforms draw from: torch.manual_seed would also queue
    # the seed for every accelerator backend (formatting a stack trace each time).
    torch.default_generator.manual_seed(seed)
    out = pipeline(chw, target)
    if not isinstance(out, tuple | list) or len(out) != 2 or not isinstance(out[1], Mapping):
        raise TransformError(
            f"the torchvision pipeline returned {type(out).__name__}; it is called as "
            "pipeline(image, target) and must return (image, target)"
        )
    return _back(record, kinds, out[0], out[1], labels_of)


def _one_thread(torch: Any) -> None:
    global _threads_set
    if not _threads_set and multiprocessing.parent_process() is not None:
        torch.set_num_threads(1)
    _threads_set = True


def _target(
    record: Mapping[str, Any], kinds: Mapping[str, str], hw: tuple[int, int], torch: Any, tv: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """The target dict, and where each boxes field's classes went."""
    target: dict[str, Any] = {}
    labels_of: dict[str, str] = {}
    boxes = [f for f, k in kinds.items() if k == "boxes"]
    for field, kind in kinds.items():
        value = np.asarray(record[field])
        if kind == "boxes":
            target[field] = tv.BoundingBoxes(torch.from_numpy(value), format="XYXY", canvas_size=hw)
            key = "labels" if len(boxes) == 1 else f"{field}_classes"
            classes = record.get(f"{field}_classes")
            if classes is None:
                classes = np.full(len(value), -1)
            target[key] = torch.from_numpy(np.asarray(classes, dtype=np.int64))
            labels_of[field] = key
        elif kind == "mask":
            target[field] = tv.Mask(torch.from_numpy(value))
        else:
            xy = np.ascontiguousarray(value[:, :2])
            target[field] = tv.KeyPoints(torch.from_numpy(xy), canvas_size=hw)
            target[f"{field}_visibility"] = torch.from_numpy(value[:, 2].copy())
    return target, labels_of


def _back(
    record: Mapping[str, Any],
    kinds: Mapping[str, str],
    image: Any,
    target: Mapping[str, Any],
    labels_of: Mapping[str, str],
) -> dict[str, Any]:
    """The pipeline's output as the record dict of numpy arrays datumio writes."""
    import torch
    from torchvision.transforms.v2 import functional as F

    def numpy(t: Any) -> np.ndarray:
        return t.as_subclass(torch.Tensor).numpy() if isinstance(t, torch.Tensor) else np.asarray(t)

    if getattr(image, "ndim", 0) != 3 or image.dtype.is_floating_point:
        raise TransformError(
            f"the torchvision pipeline returned an image {getattr(image, 'dtype', type(image))} "
            f"of shape {tuple(getattr(image, 'shape', ()))}; it must stay a CxHxW uint8 image "
            "(drop ToDtype/Normalize: datumio converts and normalises after the pipeline)"
        )
    out = dict(record)
    out["image"] = numpy(image.permute(1, 2, 0))
    for field, kind in kinds.items():
        value = target[field]
        if kind == "boxes":
            xyxy = F.convert_bounding_box_format(value, new_format="XYXY")
            out[field] = numpy(xyxy).astype(np.float32)
            if f"{field}_classes" in record:
                out[f"{field}_classes"] = numpy(target[labels_of[field]])
        elif kind == "mask":
            out[field] = numpy(value)
        else:
            xy = numpy(value).reshape(-1, 2)
            seen = numpy(target[f"{field}_visibility"]).reshape(-1, 1)
            out[field] = np.concatenate([xy, seen], axis=1).astype(np.float32)
    return out
