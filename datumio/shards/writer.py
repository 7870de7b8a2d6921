"""Writes a whole dataset directory: rolling shards, the global index and the manifest.

The writer fills a directory it is given (ingest hands it a temporary one and renames it
into place when everything is written, so a dataset is complete or absent).
"""

from __future__ import annotations

import os
import sys
import time
from array import array
from typing import Any

import numpy as np

from datumio._version import __version__
from datumio.shards import format as fmt
from datumio.shards.base import ShardSummary, ShardWriter, class_index_of
from datumio.shards.hdf5_backend import Hdf5ShardWriter
from datumio.shards.lmdb_backend import LmdbShardWriter
from datumio.shards.manifest import write_json_atomic


def open_shard_writer(
    path: str, backend: str, info: dict[str, Any], num_classes: int
) -> ShardWriter:
    """A writer for one shard of ``backend``."""
    if backend == "lmdb":
        return LmdbShardWriter(path, info, num_classes)
    return Hdf5ShardWriter(path, info, num_classes)


class DatasetWriter:
    """Appends records in id order, starting a new shard when the current one is full.

    Args:
        root: an empty directory to fill.
        backend: "lmdb" or "hdf5".
        encoding: how payloads are stored (see :mod:`datumio.codec`).
        class_names: class name of each label id.
        shard_bytes: start a new shard once a shard's payload reaches this many bytes.
        shard_records: ... or this many records (0 = no record limit).
    """

    def __init__(
        self,
        root: str,
        *,
        backend: str,
        encoding: str,
        class_names: list[str],
        shard_bytes: int,
        shard_records: int = 0,
    ) -> None:
        self.root = root
        self.backend = backend
        self.encoding = encoding
        self.class_names = list(class_names)
        self._shard_bytes = shard_bytes
        self._shard_records = shard_records
        os.makedirs(os.path.join(root, fmt.SHARDS_DIR), exist_ok=True)
        os.makedirs(os.path.join(root, fmt.INDEX_DIR), exist_ok=True)
        self._shard: ShardWriter | None = None
        self._summaries: list[ShardSummary] = []
        self._shard_offsets = [0]
        self._labels = array("i")
        self._shapes = array("I")
        self._groups = array("i")
        self._source_offsets = array("q", [0])
        self._sources = bytearray()

    def __len__(self) -> int:
        return len(self._labels)

    def labels_array(self) -> np.ndarray:
        """Labels of the records added so far (a view, no copy)."""
        return np.frombuffer(self._labels, dtype=np.int32)

    def groups_array(self) -> np.ndarray:
        """Groups of the records added so far (empty when records have no group)."""
        return np.frombuffer(self._groups, dtype=np.int32)

    def add(
        self,
        payload: bytes,
        *,
        label: int,
        crc: int,
        shape: tuple[int, int, int],
        source: str,
        group: int | None = None,
    ) -> int:
        """Append one record; returns its global id."""
        shard = self._shard or self._open_shard()
        shard.add(payload, label, crc, shape)
        record_id = len(self._labels)
        self._labels.append(label)
        self._shapes.extend(shape)
        if group is not None:
            self._groups.append(group)
        self._sources += source.encode("utf-8", "surrogateescape")
        self._source_offsets.append(len(self._sources))
        full_bytes = shard.payload_bytes >= self._shard_bytes
        full_records = bool(self._shard_records) and shard.num_records >= self._shard_records
        if full_bytes or full_records:
            self._close_shard()
        return record_id

    def _open_shard(self) -> ShardWriter:
        number = len(self._summaries)
        name = fmt.shard_name(number, self.backend)
        info = {
            "format": fmt.FORMAT_NAME,
            "format_version": fmt.FORMAT_VERSION,
            "shard": number,
            "first_id": self._shard_offsets[-1],
            "encoding": self.encoding,
            "num_classes": len(self.class_names),
        }
        path = os.path.join(self.root, fmt.SHARDS_DIR, name)
        self._shard = open_shard_writer(path, self.backend, info, len(self.class_names))
        return self._shard

    def _close_shard(self) -> None:
        if self._shard is not None:
            self._summaries.append(self._shard.close())
            self._shard_offsets.append(len(self._labels))
            self._shard = None

    def abort(self) -> None:
        """Close an unfinished shard without writing its metadata."""
        if self._shard is not None:
            self._shard.abort()
            self._shard = None

    def finish(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Close the last shard, write the index and the manifest; returns the manifest."""
        self._close_shard()
        labels = self.labels_array().astype(fmt.LABEL_DTYPE)
        num_classes = len(self.class_names)
        class_offsets, class_ids = class_index_of(labels, num_classes)
        index: dict[str, np.ndarray] = {
            fmt.LABELS: labels,
            fmt.CLASS_OFFSETS: class_offsets,
            fmt.CLASS_IDS: class_ids,
            fmt.SHARD_OFFSETS: np.asarray(self._shard_offsets, dtype=fmt.ID_DTYPE),
            fmt.SHAPES: np.frombuffer(self._shapes, dtype=np.uint32)
            .astype(fmt.SHAPE_DTYPE)
            .reshape(-1, 3),
            fmt.SOURCE_OFFSETS: np.frombuffer(self._source_offsets, dtype=np.int64).astype(
                fmt.ID_DTYPE
            ),
            fmt.SOURCES: np.frombuffer(bytes(self._sources), dtype=np.uint8),
        }
        if len(self._groups):
            index[fmt.GROUPS] = np.frombuffer(self._groups, dtype=np.int32).astype(fmt.LABEL_DTYPE)
        for name, arr in index.items():
            np.save(os.path.join(self.root, fmt.INDEX_DIR, name), arr, allow_pickle=False)
        counts = np.diff(class_offsets).tolist()
        manifest: dict[str, Any] = {
            "format": fmt.FORMAT_NAME,
            "format_version": fmt.FORMAT_VERSION,
            "backend": self.backend,
            "encoding": self.encoding,
            "num_records": len(labels),
            "num_classes": num_classes,
            "class_names": self.class_names,
            "class_counts": counts,
            "shards": [
                {
                    "file": f"{fmt.SHARDS_DIR}/{s.file}",
                    "first_id": first,
                    "num_records": s.num_records,
                    "payload_bytes": s.payload_bytes,
                    "file_bytes": s.file_bytes,
                    "records_crc32": s.records_crc32,
                }
                for s, first in zip(self._summaries, self._shard_offsets, strict=False)
            ],
            "index": {
                name.removesuffix(".npy"): f"{fmt.INDEX_DIR}/{name}" for name in sorted(index)
            },
            "writer": {
                "datumio": __version__,
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "created_unix": int(time.time()),
            },
            **extra,
        }
        write_json_atomic(os.path.join(self.root, fmt.MANIFEST), manifest)
        return manifest
