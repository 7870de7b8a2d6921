"""The global index beside the shards: memory-mapped ``.npy`` files, checked when opened.

Opening a dataset checks everything about the index that costs O(classes + shards), plus
one min/max pass over the labels (and groups), so a damaged or foreign index is refused
with a :class:`~datumio.errors.FormatError` naming the file, never handed to training: a
label outside the class range would become a device-side assert far from its cause.
What costs more (every id grouped by class, every record's label against its shard) is
``datumio verify``'s job, and each record read checks its own label and shape against its
shard (:meth:`datumio.Dataset.stored`).

Files are loaded with ``allow_pickle=False`` and must have exactly the dtype and shape
``docs/format.md`` gives: an array of Python objects is never unpickled, and an error never
passes on numpy's advice to load one "unsafely".
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from datumio.errors import FormatError
from datumio.shards import format as fmt
from datumio.shards.base import describe_failure
from datumio.shards.manifest import Manifest

#: name -> (dtype, dimensions) of every index file (``docs/format.md``).
INDEX_ARRAYS: dict[str, tuple[str, int]] = {
    fmt.LABELS: (fmt.LABEL_DTYPE, 1),
    fmt.CLASS_OFFSETS: (fmt.ID_DTYPE, 1),
    fmt.CLASS_IDS: (fmt.ID_DTYPE, 1),
    fmt.SHARD_OFFSETS: (fmt.ID_DTYPE, 1),
    fmt.SHAPES: (fmt.SHAPE_DTYPE, 2),
    fmt.SOURCE_OFFSETS: (fmt.ID_DTYPE, 1),
    fmt.SOURCES: ("|u1", 1),
    fmt.GROUPS: (fmt.LABEL_DTYPE, 1),
}
#: Elements per step of the min/max pass: the second pass over a chunk hits the cache.
_RANGE_CHUNK = 1 << 20


def load_npy(path: str, mmap_mode: Literal["r"] | None = "r") -> np.ndarray:
    """Load (memory-map) a dataset's .npy file; never unpickles.

    Raises:
        FormatError: the file is missing or not a plain .npy array (named, with the reason).
    """
    try:
        arr = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise FormatError(
            f"{path} is missing: the dataset is incomplete (restore it from a copy or re-ingest)"
        ) from None
    except Exception as exc:  # numpy's header parser raises several types on damaged bytes
        raise FormatError(
            f"{path}: cannot load index array ({describe_failure(exc)}); the index is damaged: "
            "run datumio verify, then restore it or re-ingest"
        ) from None
    if not isinstance(arr, np.ndarray):
        raise FormatError(f"{path} is not a .npy array")
    return arr


def load_index_array(root: str, manifest: Manifest, name: str, rows: int) -> np.ndarray:
    """Memory-map index file ``name`` and check its dtype and shape (``rows`` records).

    Raises:
        FormatError: the file is missing, not a plain .npy array, or of another dtype or shape.
    """
    dtype, ndim = INDEX_ARRAYS[name]
    shape = (rows, 3) if ndim == 2 else (rows,)
    return load_checked(os.path.join(root, manifest.index_path(name)), dtype, shape)


def load_checked(path: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Memory-map the .npy file at ``path``, which must hold exactly ``dtype`` and ``shape``.

    Raises:
        FormatError: the file is missing, not a plain .npy array, or of another dtype or shape.
    """
    arr = load_npy(path)
    if arr.dtype.str != dtype or arr.shape != shape:
        got = f"{arr.dtype.str if arr.dtype.byteorder == '>' else arr.dtype} {arr.shape}"
        raise FormatError(
            f"{path} holds {got}, expected {np.dtype(dtype)} {shape} for this dataset's "
            "manifest: the index is damaged or belongs to another dataset (run datumio verify)"
        )
    return np.asarray(arr) if arr.size == 0 else arr


def check_whole_index(
    root: str,
    manifest: Manifest,
    labels: np.ndarray,
    class_offsets: np.ndarray,
    shard_offsets: np.ndarray,
    groups: np.ndarray | None,
) -> None:
    """What opening a dataset can afford to check of its index: the offsets against the
    manifest's counts (O(classes + shards)) and one min/max pass over labels and groups.

    Raises:
        FormatError: offsets that are not the running totals of the manifest's counts, or a
            label or group out of range (the file named).
    """

    def where(name: str) -> str:
        return os.path.join(root, manifest.index_path(name))

    check_offsets(class_offsets, where(fmt.CLASS_OFFSETS), list(manifest.class_counts))
    sizes = [entry.num_records for entry in manifest.shards]
    check_offsets(shard_offsets, where(fmt.SHARD_OFFSETS), sizes)
    check_range(labels, manifest.num_classes, where(fmt.LABELS), "label")
    if groups is not None and manifest.groups is not None:
        check_range(groups, len(manifest.groups.names), where(fmt.GROUPS), "group")


def value_range(arr: np.ndarray) -> tuple[int, int]:
    """(min, max) of a non-empty integer array, in cache-sized chunks (one pass from disk)."""
    lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for start in range(0, len(arr), _RANGE_CHUNK):
        chunk = arr[start : start + _RANGE_CHUNK]
        lo, hi = min(lo, int(chunk.min())), max(hi, int(chunk.max()))
    return lo, hi


def check_range(arr: np.ndarray, limit: int, path: str, what: str) -> None:
    """Refuse values of ``arr`` outside ``0 .. limit - 1``, naming the first one."""
    if not len(arr):
        return
    lo, hi = value_range(arr)
    if lo >= 0 and hi < limit:
        return
    bad = int(np.flatnonzero((np.asarray(arr) < 0) | (np.asarray(arr) >= limit))[0])
    raise FormatError(
        f"{path}: record {bad} has {what} {int(arr[bad])}, outside 0..{limit - 1} (the manifest "
        f"lists {limit}); the index is damaged: run datumio verify, then restore or re-ingest"
    )


def check_offsets(offsets: np.ndarray, path: str, counts: list[int]) -> None:
    """Offsets must be the running totals of the manifest's ``counts`` (per class or shard);
    the manifest check made those non-negative and summing to the number of records."""
    if np.asarray(offsets).tolist() != running_totals(counts):
        raise FormatError(
            f"{path} disagrees with the manifest's counts (offsets must be their running "
            "totals): the index is damaged (run datumio verify)"
        )


def running_totals(counts: list[int]) -> list[int]:
    """[0, c0, c0+c1, ...]: the offsets that ``counts`` give."""
    out = [0]
    for c in counts:
        out.append(out[-1] + int(c))
    return out
