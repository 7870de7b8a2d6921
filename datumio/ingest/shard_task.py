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
import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.fields.encoding import items_of
from datumio.fields.spec import FieldSpec
from datumio.ingest.disk import raise_if_full
from datumio.ingest.shared_images import SharedImages, attach
from datumio.ingest.sidecar import SIDECARS_DIR, reject_to_json, save_sidecar, sidecar_path
from datumio.ingest.sources import Reject
from datumio.ingest.work import Accepted, WorkSpec, process_file, process_row
from datumio.shards import format as fmt
from datumio.shards.base import ShardSummary, ShardWriter
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
    #: Each item's image given in place of its file (encoded bytes or a uint8 array; None:
    #: read the file at ``rel``); None when every item is a file (a folder ingest).
    inline: tuple[bytes | np.ndarray | None, ...] | None = None
    #: Each item's split (an index into the run's split names, -1: none); None: no splits.
    splits: tuple[int, ...] | None = None
    #: Each item's name in rejects and the record's source, where it is not ``rel`` (a
    #: sample named by the caller); None: the ``rels``.
    names: tuple[str, ...] | None = None
    #: Image arrays of items handed over in shared memory (their ``inline`` is None).
    shared: SharedImages | None = None


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
    records = _ShardRecords(task)
    try:
        summary = _write_records(task, partial, records)
        if records.stopped_after is not None:
            _remove(partial)
            stopped = records.stopped_after
            return ShardDone(task.number, stopped, 0, records.rejects, complete=False)
    except BaseException as exc:
        _remove(partial)  # on a full disk too: its space is given back
        raise_if_full(exc, final)
        raise
    _place(task, partial, final, written=summary is not None)
    try:
        os.makedirs(os.path.join(task.root, SIDECARS_DIR), exist_ok=True)
        save_sidecar(task.root, task.number, records.meta(name, summary), records.arrays())
    except BaseException as exc:
        _remove(final)  # a shard without its sidecar is redone: give its space back
        raise_if_full(exc, sidecar_path(task.root, task.number))
        raise
    return ShardDone(task.number, len(task.rels), len(records.labels), records.rejects)


def _write_records(task: ShardTask, partial: str, records: _ShardRecords) -> ShardSummary | None:
    """Write the records of the task's accepted files to ``partial``, in order.

    Returns:
        What the writer wrote; None when no file was accepted, or when the task stopped at
        a reject (``records.stopped_after`` says after how many files).
    """
    writer: ShardWriter | None = None
    arrays, segment = attach(task.shared) if task.shared is not None else ({}, None)
    try:
        for k, rel in enumerate(task.rels):
            values = task.values[k] if task.values is not None else None
            if task.spec.images:
                data = task.inline[k] if task.inline is not None else None
                data = arrays.get(k, data)
                outcome = process_file(rel, task.spec, values, data)
            else:
                outcome = process_row(task.spec, values)
            label = task.labels[k]
            if not isinstance(outcome, Accepted):
                shown = task.names[k] if task.names is not None else rel
                records.rejects.append(Reject(shown, outcome.reason, outcome.detail, label=label))
                if task.stop_at_reject:
                    records.stopped_after = k + 1
                    return None
                continue
            if writer is None:
                writer = _open_writer(task, partial)
            writer.add(outcome.payload, label, outcome.crc, outcome.shape, outcome.fields)
            records.add(k, task.names[k] if task.names is not None else rel, outcome, values)
        summary = writer.close() if writer is not None else None
        writer = None
        return summary
    finally:
        if writer is not None:  # an error, or a stop at a reject: nothing of it is kept
            writer.abort()
        arrays.clear()
        if segment is not None:
            segment.close()


def _place(task: ShardTask, partial: str, final: str, written: bool) -> None:
    """Rename the shard written at ``partial`` to ``final`` (and upload it), or, when no file
    became a record (not ``written``), remove a ``final`` an earlier try left."""
    if not written:
        _remove(final)  # a retried task whose files were rejected this time
        return
    os.replace(partial, final)
    if task.upload is not None:  # before the sidecar: a shard with a sidecar is sent
        from datumio.remote.publish import upload_file

        upload_file(final, task.upload, f"{fmt.SHARDS_DIR}/{os.path.basename(final)}")


def _open_writer(task: ShardTask, partial: str) -> ShardWriter:
    field_names = [f.name for f in task.spec.fields]
    info = shard_info(
        task.number, task.spec.encoding, task.num_classes, field_names, task.dataset_id
    )
    return open_shard_writer(partial, task.backend, info, task.num_classes, field_names)


class _ShardRecords:
    """What the sidecar of a shard says of its records, gathered as they are written."""

    def __init__(self, task: ShardTask) -> None:
        self._task = task
        channels = (1 if task.spec.gray else 3) if task.spec.images else 0
        self.histogram = np.zeros((channels, 256), dtype=np.uint64)
        self.labels: list[int] = []
        self.crcs: list[int] = []
        self.shapes: list[tuple[int, int, int]] = []
        self.groups: list[int] = []
        self.splits: list[int] = []
        self.sizes: list[tuple[int, int]] = []
        self.sources = bytearray()
        self.source_offsets = [0]
        self.formats: collections.Counter[str] = collections.Counter()
        self.rejects: list[Reject] = []
        self.fields = _FieldParts(task.spec.fields)
        #: Set when the task stopped at a reject (``stop_at_reject``): the files looked at.
        self.stopped_after: int | None = None

    def add(self, k: int, rel: str, outcome: Accepted, values: Mapping[str, Any] | None) -> None:
        """The record of the task's file ``k`` (``rel``), written."""
        self.fields.add(values or {}, outcome.fields)
        self.labels.append(self._task.labels[k])
        self.crcs.append(outcome.crc)
        self.shapes.append(outcome.shape)
        if self._task.groups is not None:
            self.groups.append(self._task.groups[k])
        if self._task.splits is not None:
            self.splits.append(self._task.splits[k])
        self.histogram += outcome.histogram
        self.sizes.append(outcome.source_size)
        self.sources += rel.encode("utf-8", "surrogateescape")
        self.source_offsets.append(len(self.sources))
        self.formats[outcome.source_format] += 1

    def meta(self, name: str, summary: ShardSummary | None) -> dict[str, Any]:
        """The sidecar's JSON part; ``summary``: the shard's, None when it has no record."""
        return {
            "shard": self._task.number,
            "file": f"{fmt.SHARDS_DIR}/{name}" if summary is not None else None,
            "files": len(self._task.rels),
            "num_records": len(self.labels),
            "payload_bytes": summary.payload_bytes if summary is not None else 0,
            "records_crc32": summary.records_crc32 if summary is not None else 0,
            "formats": dict(sorted(self.formats.items())),
            "rejects": [reject_to_json(r) for r in self.rejects],
            "fields_crc32": summary.fields_crc32 if summary is not None else None,
            "field_counts": self.fields.counts,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The sidecar's arrays: the shard's part of the global index."""
        return {
            "labels": np.asarray(self.labels, dtype=fmt.LABEL_DTYPE),
            "crc32": np.asarray(self.crcs, dtype=fmt.CRC_DTYPE),
            "shapes": np.asarray(self.shapes, dtype=fmt.SHAPE_DTYPE).reshape(-1, 3),
            "source_offsets": np.asarray(self.source_offsets, dtype=fmt.ID_DTYPE),
            "sources": np.frombuffer(bytes(self.sources), dtype=np.uint8),
            "groups": np.asarray(self.groups, dtype=fmt.LABEL_DTYPE),
            "source_sizes": np.asarray(self.sizes, dtype=fmt.SHAPE_DTYPE).reshape(-1, 2),
            "histogram": self.histogram,
            **({"splits": np.asarray(self.splits, dtype=np.int16)} if self._task.splits else {}),
            **self.fields.arrays(),
        }


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
    """Remove a shard file (no writer leaves anything beside it: LMDB's takes no lock)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
