"""The global index of a dataset's fields, for sampling: memory-mapped when a dataset opens.

An int field has ``index/field_NAME.npy`` (``<i8 [N]``, :data:`~datumio.shards.format.
INT_ABSENT` for a record without it); a multilabel field ``field_NAME_offsets.npy``
(``<i8 [N+1]``) and ``field_NAME_values.npy`` (``<i4 [M]``): record i's ids are
``values[offsets[i]:offsets[i+1]]``. Opening checks dtypes, shapes and the offsets' ends
(O(1)); ``datumio verify`` checks each value against the shards.
"""

from __future__ import annotations

import os

import numpy as np

from datumio.errors import FormatError
from datumio.fields.spec import FieldSpec
from datumio.shards import format as fmt
from datumio.shards.index import load_npy
from datumio.shards.manifest import Manifest

#: An int field's values, or a multilabel field's (offsets, values).
FieldIndex = np.ndarray | tuple[np.ndarray, np.ndarray]


def _array(root: str, manifest: Manifest, name: str, dtype: str, rows: int | None) -> np.ndarray:
    path = os.path.join(root, manifest.index_path(name))
    arr = load_npy(path)
    if arr.dtype.str != dtype or arr.ndim != 1 or (rows is not None and len(arr) != rows):
        want = f"{np.dtype(dtype)} ({'any' if rows is None else rows},)"
        raise FormatError(
            f"{path} holds {arr.dtype} {arr.shape}, expected {want}: the index is damaged "
            "or belongs to another dataset (run datumio verify)"
        )
    return np.asarray(arr) if arr.size == 0 else arr


def load_field_index(root: str, manifest: Manifest, spec: FieldSpec) -> FieldIndex | None:
    """The index of one field (None for a type without one).

    Raises:
        FormatError: a file is missing, of another dtype or shape, or its offsets do not
            span its values.
    """
    names = fmt.field_index_names(spec.name, spec.type)
    n = manifest.num_records
    if spec.type == "int":
        return _array(root, manifest, names[0], fmt.ID_DTYPE, n)
    if spec.type != "multilabel":
        return None
    offsets = _array(root, manifest, names[0], fmt.ID_DTYPE, n + 1)
    values = _array(root, manifest, names[1], "<i4", None)
    if int(offsets[0]) != 0 or int(offsets[-1]) != len(values):
        raise FormatError(
            f"{os.path.join(root, manifest.index_path(names[0]))} does not span the "
            f"{len(values)} values of field {spec.name}: the index is damaged (run datumio verify)"
        )
    return offsets, values


def select_field_index(index: FieldIndex, ids: np.ndarray) -> FieldIndex:
    """The index of records ``ids`` only (a split's), in their order: an int field's values
    at ``ids``; a multilabel field's offsets and values of those records. O(records + values
    selected), numpy only."""
    if isinstance(index, np.ndarray):
        return np.asarray(index[ids])
    offsets, values = index
    starts = np.asarray(offsets[ids], dtype=np.int64)
    lengths = np.asarray(offsets[np.asarray(ids) + 1], dtype=np.int64) - starts
    new_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # Value k of the selection comes from starts[r] + (k - new_offsets[r]) for its record r.
    at = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return new_offsets, np.asarray(values[at])


def field_index_arrays(
    specs: tuple[FieldSpec, ...], values: dict[str, list[np.ndarray]]
) -> dict[str, np.ndarray]:
    """Index files (name -> array) of the fields from per-shard parts in id order.

    ``values`` maps each file name (``field_NAME.npy`` ...) to its shards' parts; a
    multilabel field's offset parts each start at 0 and are joined here.
    """
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        names = fmt.field_index_names(spec.name, spec.type)
        if spec.type == "int":
            parts = values.get(names[0], [])
            out[names[0]] = np.concatenate([np.zeros(0, fmt.ID_DTYPE), *parts]).astype(fmt.ID_DTYPE)
        elif spec.type == "multilabel":
            offsets, total = [np.zeros(1, np.int64)], 0
            for part in values.get(names[0], []):
                offsets.append(part[1:].astype(np.int64) + total)
                total += int(part[-1])
            out[names[0]] = np.concatenate(offsets).astype(fmt.ID_DTYPE)
            parts = values.get(names[1], [])
            out[names[1]] = np.concatenate([np.zeros(0, "<i4"), *parts]).astype("<i4")
    return out
