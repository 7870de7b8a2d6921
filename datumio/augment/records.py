"""An outside augmentation pipeline on the whole decoded record: ``Transform(pipeline=...)``.

The record goes in as a dict: ``{"image": HxWxC uint8 (the stored image, upright),
"label": int, FIELD: value ...}`` with the fields a Loader or MapDataset asked for, named as
in its batches: a boxes field ``NAME`` is float32 ``(k, 4)`` ``[x0, y0, x1, y1]`` pixels
(plus ``NAME_classes`` int32 ``(k,)`` when it has classes), a keypoints field float32
``(k, 3)`` ``[x, y, visibility]``, a mask field uint8 ``(H, W)``; other fields as
``Dataset.field`` gives them. The pipeline returns the same dict transformed: the image at
the Transform's ``size``, boxes in output pixels (any number of rows, up to the field's
``max_items``), the same keypoints in the same order, masks at ``size``.

Three kinds of pipeline (:func:`run`):

* a torchvision ``transforms.v2`` transform (:mod:`datumio.augment.bridge_torchvision`),
* an albumentations ``Compose`` or transform (:mod:`datumio.augment.bridge_albumentations`),
* any other callable: ``fn(record, rng) -> record`` with the sample's own generator.

Torchvision and albumentations draw from their own generators: each sample seeds them from
its own stream (:func:`sample_seed`), so a sample's draws depend only on (seed, epoch,
position), as datumio's do, whichever worker runs it.

Thread/fork/pickle: pure functions; the pipeline object travels inside the Transform.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from datumio.augment import bridge_albumentations, bridge_torchvision, photometric
from datumio.augment.normalize import write
from datumio.augment.opencv import decode_jpeg
from datumio.augment.pipeline import opencv_decodes, run_user_fn
from datumio.augment.spec import Transform
from datumio.augment.warp import as_pil
from datumio.codec import DEFAULT_BACKGROUND, decode_record
from datumio.errors import DecodeError, TransformError

#: One decoded record as a pipeline sees it (see the module's docstring).
Record = dict[str, Any]
#: The record's geometric fields: name -> ``"boxes"``, ``"keypoints"`` or ``"mask"``.
Kinds = Mapping[str, str]

__all__ = ["Kinds", "Record", "apply_record", "pipeline_name", "run", "sample_seed"]


def sample_seed(rng: np.random.Generator) -> int:
    """The seed an outside pipeline's own generator gets for one sample: the first draw of
    the sample's stream (``datumio.augment.seeds.sample_rng(seed, epoch, position)``)."""
    return int(rng.integers(0, 2**63 - 1))


def pipeline_name(pipeline: Any) -> str:
    """``module.Class`` (or the function's name) of ``pipeline``, for messages."""
    kind = pipeline if callable(pipeline) and hasattr(pipeline, "__qualname__") else type(pipeline)
    return f"{kind.__module__}.{kind.__qualname__}"


def apply_record(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    rng: np.random.Generator,
    out: np.ndarray,
    record: Mapping[str, Any],
    kinds: Kinds,
    *,
    encoding: str = "keep",
    shape: tuple[int, int, int] | None = None,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> Record:
    """Decode ``source`` whole, run ``spec.pipeline`` on it with ``record`` (the label and
    fields), then datumio's photometric ops, ``user_fn`` and normalisation into ``out``.

    Returns:
        The pipeline's record (its geometric fields in output pixels), checked.

    Raises:
        DecodeError: the payload does not decode (the Loader replaces the record).
        TransformError: the pipeline raised or returned something that does not fit.
    """
    image = _decoded(spec, source, encoding, shape, background)
    result = run(spec.pipeline, {"image": image, **record}, kinds, rng)
    image = check(spec, result, record, kinds, image.shape[2])
    if spec.has_photometric:
        image = np.asarray(photometric.adjust(as_pil(image), spec, rng), dtype=np.uint8)
        image = image if image.ndim == 3 else image[:, :, None]
    if spec.user_fn is not None:
        image = run_user_fn(spec.user_fn, image, rng)
    write(spec, image, out)
    return result


def _decoded(
    spec: Transform,
    source: bytes | memoryview | np.ndarray,
    encoding: str,
    shape: tuple[int, int, int] | None,
    background: tuple[int, int, int],
) -> np.ndarray:
    """The whole stored image, upright, HxWxC uint8 (OpenCV for JPEGs it decodes exactly)."""
    if isinstance(source, np.ndarray):
        given = source if source.ndim == 3 else source[:, :, None]
        return np.array(given, dtype=np.uint8)  # a copy: the pipeline may write into it
    if shape is None:
        raise DecodeError("no shape", "decoding a record for a pipeline needs its stored shape")
    arr: np.ndarray | None = None
    if opencv_decodes(spec, source, encoding, shape):
        arr = decode_jpeg(source, gray=shape[2] == 1, scale=1)
    if arr is None:
        arr = decode_record(source, encoding, shape, background=background)
    if arr.shape[:2] != tuple(shape[:2]):
        raise DecodeError("corrupt data", f"decoded shape {arr.shape} != stored {shape}")
    if not arr.flags.writeable:  # the pipeline owns its input and may write into it
        arr = arr.copy()
    return arr if arr.ndim == 3 else arr[:, :, None]


def run(pipeline: Any, record: Record, kinds: Kinds, rng: np.random.Generator) -> Record:
    """``record`` through ``pipeline``: a torchvision v2 transform, an albumentations one,
    or ``fn(record, rng)``. Its failures become :class:`TransformError`.

    Raises:
        TransformError: the pipeline raised (its traceback is the cause), or returned no dict.
    """
    name = pipeline_name(pipeline)
    call = _bridge(pipeline)
    try:
        result = call(pipeline, record, kinds, rng)
    except TransformError:
        raise
    except Exception as exc:
        raise TransformError(
            f"Transform(pipeline={name}) raised {type(exc).__qualname__}: {exc}; fix the "
            "pipeline (its traceback is this error's cause)"
        ) from exc
    if not isinstance(result, Mapping) or "image" not in result:
        raise TransformError(
            f"Transform(pipeline={name}) returned {type(result).__name__}; a pipeline "
            'function must return the record dict, with its "image"'
        )
    return dict(result)


Bridge = Callable[[Any, Record, Kinds, np.random.Generator], Record]


def _bridge(pipeline: Any) -> Bridge:
    """How to call ``pipeline``, by what it is (only modules already imported are looked
    at: a torchvision or albumentations object means its package is loaded)."""
    v2 = sys.modules.get("torchvision.transforms.v2")
    if v2 is not None and isinstance(pipeline, v2.Transform):
        return bridge_torchvision.run
    albumentations = sys.modules.get("albumentations")
    if albumentations is not None and isinstance(
        pipeline, albumentations.BaseCompose | albumentations.BasicTransform
    ):
        return bridge_albumentations.run
    if type(pipeline).__module__.startswith("torchvision.transforms"):
        raise TransformError(
            f"Transform(pipeline={pipeline_name(pipeline)}): torchvision's first transforms "
            "API works on PIL images only; use torchvision.transforms.v2 (same names)"
        )
    return _call_function


def _call_function(pipeline: Any, record: Record, kinds: Kinds, rng: np.random.Generator) -> Any:
    return pipeline(record, rng)


def check(
    spec: Transform, result: Record, given: Mapping[str, Any], kinds: Kinds, channels: int
) -> np.ndarray:
    """The result's image as HxWxC uint8 at ``spec.size``, and its fields checked in place
    (float32 boxes and keypoints, uint8 masks at ``size``, the keypoints given, in order).

    Raises:
        TransformError: what does not fit, and what to do.
    """
    name = pipeline_name(spec.pipeline)
    image = np.asarray(result["image"])
    if image.ndim == 2:
        image = image[:, :, None]
    want = (*spec.size, channels)
    if image.shape != want or image.dtype != np.uint8:
        raise TransformError(
            f"Transform(pipeline={name}) returned an image of shape {image.shape} and dtype "
            f"{image.dtype}; it must end at the Transform's size: HxWxC uint8 {want} (end it "
            "with a resize or crop to that size; datumio converts and normalises after it)"
        )
    for field, kind in kinds.items():
        result[field] = _checked(name, field, kind, result.get(field), given[field], spec.size)
        key = f"{field}_classes"
        if kind != "boxes" or key not in given:
            continue
        result[key] = np.asarray(result.get(key, ()), dtype=np.int32).reshape(-1)
        if len(result[key]) != len(result[field]):
            raise TransformError(
                f"Transform(pipeline={name}) returned {len(result[field])} boxes but "
                f"{len(result[key])} {key}; keep one class per box"
            )
    return image


def _checked(
    name: str, field: str, kind: str, value: Any, given: Any, size: tuple[int, int]
) -> np.ndarray:
    if value is None:
        raise TransformError(f"Transform(pipeline={name}) dropped the record's field {field!r}")
    arr = np.asarray(value)
    if kind == "mask":
        if arr.shape != size:
            raise TransformError(
                f"Transform(pipeline={name}) returned mask {field!r} of shape {arr.shape}; "
                f"masks must follow the image to {size}"
            )
        return arr.astype(np.uint8, copy=False)
    width = 4 if kind == "boxes" else 3
    arr = arr.astype(np.float32, copy=False).reshape(-1, width)
    if not bool(np.isfinite(arr).all()):
        raise TransformError(f"Transform(pipeline={name}) returned {field!r} with NaN or inf")
    if kind == "keypoints" and len(arr) != len(given):
        raise TransformError(
            f"Transform(pipeline={name}) returned {len(arr)} keypoints for {field!r}, given "
            f"{len(given)}; keep every keypoint, in order (those out of view get visibility "
            "0; albumentations: KeypointParams(remove_invisible=False))"
        )
    if kind == "keypoints":  # out of view: absent, as datumio's own geometry leaves them
        x, y = arr[:, 0], arr[:, 1]
        arr[(x < 0) | (y < 0) | (x >= size[1]) | (y >= size[0]), 2] = 0
    return arr
