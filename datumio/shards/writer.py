"""Writing a dataset: one shard at a time (any process), then the global index and manifest.

Shards are written independently, each by one writer (ingest runs one task per shard,
possibly on another machine); the driver then writes the global index from the shards'
per-record metadata and the manifest last. Global ids are assigned only here, from the
shards' record counts, so a shard never stores its own first id.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio._version import __version__
from datumio.shards import format as fmt
from datumio.shards.base import ShardWriter, class_index_of
from datumio.shards.manifest import ListedShard


def open_shard_writer(
    path: str,
    backend: str,
    info: dict[str, Any],
    num_classes: int,
    field_names: Sequence[str] = (),
) -> ShardWriter:
    """A writer for one shard of ``backend`` (records with the fields ``field_names``)."""
    if backend == "lmdb":
        from datumio.shards.lmdb_backend import LmdbShardWriter  # lmdb loads on first use

        return LmdbShardWriter(path, info, num_classes, field_names)
    from datumio.shards.hdf5_backend import Hdf5ShardWriter  # h5py: 20 ms of start-up

    return Hdf5ShardWriter(path, info, num_classes, field_names)


def shard_info(
    number: int,
    encoding: str,
    num_classes: int,
    field_names: Sequence[str] = (),
    dataset_id: str | None = None,
) -> dict[str, Any]:
    """The ``info`` a shard carries: what it is, never where its ids start (``fields``: the
    names of its fields, in storage order, only when there are some; ``dataset_id``: the
    identity of the dataset it is written for, ``datumio.shards.identity``)."""
    info: dict[str, Any] = {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "shard": number,
        "encoding": encoding,
        "num_classes": num_classes,
    }
    if field_names:
        info["fields"] = list(field_names)
    if dataset_id is not None:
        info["dataset_id"] = dataset_id
    return info


@dataclass(frozen=True)
class ShardEntry:
    """A finished shard as the manifest lists it (``first_id`` is assigned at finalize)."""

    file: str  # relative to the dataset directory: shards/shard-00003.mdb
    num_records: int
    payload_bytes: int
    file_bytes: int
    records_crc32: int
    fields_crc32: int | None = None


def index_arrays(
    labels: np.ndarray,
    num_classes: int,
    shard_counts: Sequence[int],
    shapes: np.ndarray,
    source_offsets: np.ndarray,
    sources: np.ndarray,
    groups: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """The global index files (name -> array) of records in id order."""
    labels = np.ascontiguousarray(labels, dtype=fmt.LABEL_DTYPE)
    class_offsets, class_ids = class_index_of(labels, num_classes)
    shard_offsets = np.zeros(len(shard_counts) + 1, dtype=fmt.ID_DTYPE)
    np.cumsum(np.asarray(shard_counts, dtype=np.int64), out=shard_offsets[1:])
    index = {
        fmt.LABELS: labels,
        fmt.CLASS_OFFSETS: class_offsets,
        fmt.CLASS_IDS: class_ids,
        fmt.SHARD_OFFSETS: shard_offsets,
        fmt.SHAPES: np.asarray(shapes, dtype=fmt.SHAPE_DTYPE).reshape(-1, 3),
        fmt.SOURCE_OFFSETS: np.asarray(source_offsets, dtype=fmt.ID_DTYPE),
        fmt.SOURCES: np.asarray(sources, dtype=np.uint8),
    }
    if groups is not None:
        index[fmt.GROUPS] = np.asarray(groups, dtype=fmt.LABEL_DTYPE)
    return index


def save_index(root: str, index_dir: str, index: dict[str, np.ndarray]) -> dict[str, str]:
    """Write ``index`` as .npy files into ``root/index_dir``; returns the manifest's map."""
    os.makedirs(os.path.join(root, index_dir), exist_ok=True)
    for name, arr in index.items():
        np.save(os.path.join(root, index_dir, name), arr, allow_pickle=False)
    return {name.removesuffix(".npy"): f"{index_dir}/{name}" for name in sorted(index)}


def listed_shards(shards: Sequence[ShardEntry]) -> tuple[ListedShard, ...]:
    """The manifest's shard list: global ids are assigned here, densely, in shard order."""
    listed = []
    first = 0
    for shard in shards:
        listed.append(
            ListedShard(
                file=shard.file,
                first_id=first,
                num_records=shard.num_records,
                payload_bytes=shard.payload_bytes,
                file_bytes=shard.file_bytes,
                records_crc32=shard.records_crc32,
                fields_crc32=shard.fields_crc32,
            )
        )
        first += shard.num_records
    return tuple(listed)


def writer_info() -> dict[str, Any]:
    """The manifest's ``writer``: what wrote the dataset, and when (debugging only)."""
    return {
        "datumio": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "created_unix": int(time.time()),
    }
