"""One ingest task: decode the files of one planned shard, write the shard, then its sidecar.

:func:`write_shard` is a top-level function of one small picklable argument, so any
``concurrent.futures.Executor`` (local processes, a Dask cluster) runs it. It writes
the shard under a hidden temporary name, renames it into place and only then writes the
sidecar (:mod:`datumio.ingest.sidecar`): a shard with a sidecar is complete. Running a
task twice (a retry on a lost worker, a resumed run) writes the same records again and
replaces both files, so retries are harmless. Payloads never leave the task's process.
A full disk raises :class:`~datumio.errors.DiskFullError` (picklable: it reaches the
driver from any executor) after the task removed what it had written of its shard.
"""

from __future__ import annotations

import collections
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.fields.encoding import items_of
from datumio.fields.spec import FieldSpec
from datumio.ingest.disk import raise_if_full
from datumio.ingest.sidecar import SIDECARS_DIR, reject_to_json, save_sidecar, sidecar_path
from datumio.ingest.sources import Reject
from datumio.ingest.work import Accepted, WorkSpec, process_file, process_row
from datumio.shards import format as fmt
from datumio.shards.base import ShardWriter
from datumio.shards.writer import open_shard_writer, shard_info


@dataclass(frozen=True)
class ShardTask:
    """Everything one task needs: which files, which shard, where to write."""

    root: str  # the temporary dataset directory (shared by driver and workers)
    number: int
    rels: tuple[str, ...]
    labels: tuple[int, ...]
    groups: tuple[int, ...] | None
    backend: str
    num_classes: int
    spec: WorkSpec
    #: on_error="raise": stop at the first bad file and write nothing.
    stop_at_reject: bool = False
    #: Ingest to a URL: the dataset's URL; the task uploads its finished shard itself.
    upload: str | None = None
    #: Each file's field values (``spec.fields``); None without fields.
    values: tuple[Mapping[str, Any] | None, ...] | None = None
    #: The identity of the dataset the shard is written for (its info names it).
    dataset_id: str | None = None


@dataclass(frozen=True)
class ShardDone:
    """A task's small answer to the driver (the details are in the sidecar)."""

    number: int
    files: int
    records: int
    rejects: list[Reject]
    #: False when the task stopped at a reject (``stop_at_reject``): no shard, no sidecar.
    complete: bool = True


def write_shard(task: ShardTask) -> ShardDone:
    """Process and store the files of ``task`` in order; never raises for bad input."""
    name = fmt.shard_name(task.number, task.backend)
    final = os.path.join(task.root, fmt.SHARDS_DIR, name)
    partial = os.path.join(task.root, fmt.SHARDS_DIR, f".{name}.part-{secrets.token_hex(4)}")
    channels = (1 if task.spec.gray else 3) if task.spec.images else 0
    histogram = np.zeros((channels, 256), dtype=np.uint64)
    labels: list[int] = []
    crcs: list[int] = []
    shapes: list[tuple[int, int, int]] = []
    groups: list[int] = []
    sizes: list[tuple[int, int]] = []
    sources = bytearray()
    source_offsets = [0]
    formats: collections.Counter[str] = collections.Counter()
    rejects: list[Reject] = []
    field_specs = task.spec.fields
    field_names = [f.name for f in field_specs]
    fields = _FieldParts(field_specs)
    writer: ShardWriter | None = None
    try:
        for k, rel in enumerate(task.rels):
            values = task.values[k] if task.values is not None else None
            if task.spec.images:
                outcome = process_file(rel, task.spec, values)
            else:
                outcome = process_row(task.spec, values)
            label = task.labels[k]
            if not isinstance(outcome, Accepted):
                rejects.append(Reject(rel, outcome.reason, outcome.detail, label=label))
                if task.stop_at_reject:
                    if writer is not None:
                        writer.abort()
                        writer = None
                    _remove(partial)
                    return ShardDone(task.number, k + 1, 0, rejects, complete=False)
                continue
            if writer is None:
                info = shard_info(
                    task.number, task.spec.encoding, task.num_classes, field_names, task.dataset_id
                )
                writer = open_shard_writer(
                    partial, task.backend, info, task.num_classes, field_names
                )
            writer.add(outcome.payload, label, outcome.crc, outcome.shape, outcome.fields)
            fields.add(values or {}, outcome.fields)
            labels.append(label)
            crcs.append(outcome.crc)
            shapes.append(outcome.shape)
            if task.groups is not None:
                groups.append(task.groups[k])
            histogram += outcome.histogram
            sizes.append(outcome.source_size)
            sources += rel.encode("utf-8", "surrogateescape")
            source_offsets.append(len(sources))
            formats[outcome.source_format] += 1
        summary = writer.close() if writer is not None else None
        writer = None
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        _remove(partial)  # on a full disk too: its space is given back
        raise_if_full(exc, final)
        raise
    if summary is not None:
        os.replace(partial, final)
        if task.upload is not None:  # before the sidecar: a shard with a sidecar is sent
            from datumio.remote.publish import upload_file

            upload_file(final, task.upload, f"{fmt.SHARDS_DIR}/{name}")
    else:
        _remove(final)  # a retried task whose files were rejected this time
    meta = {
        "shard": task.number,
        "file": f"{fmt.SHARDS_DIR}/{name}" if summary is not None else None,
        "files": len(task.rels),
        "num_records": len(labels),
        "payload_bytes": summary.payload_bytes if summary is not None else 0,
        "records_crc32": summary.records_crc32 if summary is not None else 0,
        "formats": dict(sorted(formats.items())),
        "rejects": [reject_to_json(r) for r in rejects],
        "fields_crc32": summary.fields_crc32 if summary is not None else None,
        "field_counts": fields.counts,
    }
    arrays = {
        "labels": np.asarray(labels, dtype=fmt.LABEL_DTYPE),
        "crc32": np.asarray(crcs, dtype=fmt.CRC_DTYPE),
        "shapes": np.asarray(shapes, dtype=fmt.SHAPE_DTYPE).reshape(-1, 3),
        "source_offsets": np.asarray(source_offsets, dtype=fmt.ID_DTYPE),
        "sources": np.frombuffer(bytes(sources), dtype=np.uint8),
        "groups": np.asarray(groups, dtype=fmt.LABEL_DTYPE),
        "source_sizes": np.asarray(sizes, dtype=fmt.SHAPE_DTYPE).reshape(-1, 2),
        "histogram": histogram,
        **fields.arrays(),
    }
    try:
        os.makedirs(os.path.join(task.root, SIDECARS_DIR), exist_ok=True)
        save_sidecar(task.root, task.number, meta, arrays)
    except BaseException as exc:
        _remove(final)  # a shard without its sidecar is redone: give its space back
        raise_if_full(exc, sidecar_path(task.root, task.number))
        raise
    return ShardDone(task.number, len(task.rels), len(labels), rejects)


class _FieldParts:
    """A shard's part of the fields' global index and counts, for its sidecar."""

    def __init__(self, specs: tuple[FieldSpec, ...]) -> None:
        self._specs = specs
        #: records having the field, items over them, most items in one record
        self.counts: dict[str, list[int]] = {s.name: [0, 0, 0] for s in specs}
        self._ints: dict[str, list[int]] = {s.name: [] for s in specs if s.type == "int"}
        self._ids: dict[str, list[list[int]]] = {
            s.name: [] for s in specs if s.type == "multilabel"
        }

    def add(self, values: Mapping[str, Any], encoded: tuple[bytes | None, ...]) -> None:
        for spec, data in zip(self._specs, encoded, strict=True):
            value = values.get(spec.name)
            if data is not None:
                items = items_of(spec, data)
                count = self.counts[spec.name]
                count[0] += 1
                count[1] += items
                count[2] = max(count[2], items)
            if spec.type == "int":
                self._ints[spec.name].append(fmt.INT_ABSENT if value is None else int(value))
            elif spec.type == "multilabel":
                self._ids[spec.name].append([] if value is None else list(value))

    def arrays(self) -> dict[str, np.ndarray]:
        """``field_NAME`` (int) and ``field_NAME_offsets`` / ``_values`` (multilabel)."""
        out: dict[str, np.ndarray] = {}
        for name, ints in self._ints.items():
            out[f"field_{name}"] = np.asarray(ints, dtype=fmt.ID_DTYPE)
        for name, rows in self._ids.items():
            offsets = np.zeros(len(rows) + 1, dtype=fmt.ID_DTYPE)
            np.cumsum([len(r) for r in rows], out=offsets[1:])
            out[f"field_{name}_offsets"] = offsets
            out[f"field_{name}_values"] = np.asarray([v for r in rows for v in r], dtype="<i4")
        return out


def _remove(path: str) -> None:
    for p in (path, path + "-lock"):
        if os.path.lexists(p):
            os.remove(p)
