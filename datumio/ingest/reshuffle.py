"""``shuffle`` for a stream: its records, already written in the order given, moved into
new shards in a seeded random order when the stream ends.

A folder ingest shuffles its listing before planning; a stream (:class:`datumio.Writer`,
an importer) cannot, as it never holds its samples. So its shards are first written in
the order given (the *staged* shards, with their sidecars, as any run writes them), and
at the end each new shard copies its records' stored bytes (payload, fields, label, CRC,
shape: nothing is decoded or encoded again) from the staged shards, in the order of one
permutation drawn from ``seed``. The per-record metadata (labels, shapes, sources,
groups, splits, fields' index) is permuted in the driver; the sums (pixel histogram,
formats, field counts) do not change. The staged shards are then removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datumio.ingest.executors import Running
from datumio.ingest.finalize import Records
from datumio.shards import format as fmt
from datumio.shards.access import open_reader
from datumio.shards.base import ShardReader, ShardSummary
from datumio.shards.writer import ShardEntry, open_shard_writer, shard_info

SHUFFLED_DIR = "shuffled"
#: Gives an index part's array for the records of some ids.
Gather = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MoveTask:
    """One new shard: which staged records it copies, in order."""

    root: str
    number: int
    backend: str
    #: (staged shard file relative to ``root``, local id) of each record, in the new order.
    records: tuple[tuple[str, int], ...]
    encoding: str
    num_classes: int
    field_names: tuple[str, ...]
    dataset_id: str | None


def move_records(task: MoveTask) -> ShardSummary:
    """Write the new shard of ``task`` (a top-level function: any executor runs it)."""
    name = fmt.shard_name(task.number, task.backend)
    final = os.path.join(task.root, SHUFFLED_DIR, name)
    partial = f"{final}.part"
    info = shard_info(
        task.number, task.encoding, task.num_classes, task.field_names, task.dataset_id
    )
    readers: dict[str, tuple[ShardReader, np.ndarray, np.ndarray, np.ndarray]] = {}
    writer = open_shard_writer(partial, task.backend, info, task.num_classes, task.field_names)
    try:
        for file, local in task.records:
            if file not in readers:
                reader = open_reader(os.path.join(task.root, file), task.backend)
                meta = (reader.meta("labels"), reader.meta("crc32"), reader.meta("shapes"))
                readers[file] = (reader, *meta)
            reader, labels, crcs, shapes = readers[file]
            fields = reader.get_fields(local, task.field_names) if task.field_names else []
            shape = (int(shapes[local][0]), int(shapes[local][1]), int(shapes[local][2]))
            writer.add(reader.get(local), int(labels[local]), int(crcs[local]), shape, fields)
        summary = writer.close()
    except BaseException:
        writer.abort()
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise
    finally:
        for reader, *_ in readers.values():
            reader.close()
    os.replace(partial, final)
    return dataclasses.replace(summary, file=f"{fmt.SHARDS_DIR}/{name}")


def shuffle_records(
    root: str,
    staged: Records,
    running: Running,
    *,
    seed: int,
    per_shard: int,
    backend: str,
    encoding: str,
    num_classes: int,
    field_names: tuple[str, ...],
    dataset_id: str | None,
) -> Records:
    """Move the records of the ``staged`` shards into new shards in a seeded random order
    (see the module docstring); returns the new shards' records."""
    n = sum(entry.num_records for entry in staged.shards)
    order = np.random.default_rng(seed).permutation(n)
    where = _where(staged)
    os.makedirs(os.path.join(root, SHUFFLED_DIR), exist_ok=True)
    tasks = [
        MoveTask(
            root=root,
            number=s,
            backend=backend,
            records=tuple(where[int(i)] for i in order[start : start + per_shard]),
            encoding=encoding,
            num_classes=num_classes,
            field_names=field_names,
            dataset_id=dataset_id,
        )
        for s, start in enumerate(range(0, n, per_shard))
    ]
    summaries = list(running.executor.map(move_records, tasks))
    shutil.rmtree(os.path.join(root, fmt.SHARDS_DIR))
    os.rename(os.path.join(root, SHUFFLED_DIR), os.path.join(root, fmt.SHARDS_DIR))
    return _permuted(staged, order, summaries, root)


def _where(staged: Records) -> list[tuple[str, int]]:
    """(staged shard file, local id) of every record, in id order."""
    return [(entry.file, local) for entry in staged.shards for local in range(entry.num_records)]


def _permuted(
    staged: Records, order: np.ndarray, summaries: list[ShardSummary], root: str
) -> Records:
    labels = np.concatenate(staged.labels)
    shapes = np.concatenate(staged.shapes)
    sizes = np.concatenate(staged.source_sizes)
    groups = np.concatenate(staged.groups)
    splits = np.concatenate(staged.splits)
    names = _sources(staged)
    fields = _field_rows(staged)
    records = Records()
    start = 0
    for summary in summaries:
        ids = order[start : start + summary.num_records]
        start += summary.num_records
        entry = ShardEntry(
            file=summary.file,
            num_records=summary.num_records,
            payload_bytes=summary.payload_bytes,
            file_bytes=os.path.getsize(os.path.join(root, summary.file)),
            records_crc32=summary.records_crc32,
            fields_crc32=summary.fields_crc32,
        )
        chosen = [names[int(i)] for i in ids]
        offsets = np.zeros(len(chosen) + 1, dtype=fmt.ID_DTYPE)
        np.cumsum([len(c) for c in chosen], out=offsets[1:])
        arrays = {
            "labels": labels[ids],
            "shapes": shapes[ids],
            "source_offsets": offsets,
            "sources": np.frombuffer(b"".join(chosen), dtype=np.uint8),
            "groups": groups[ids] if groups.size else groups,
            "splits": splits[ids],
            "source_sizes": sizes[ids],
            "histogram": np.zeros((0, 256), dtype=np.uint64),
            **{name: rows(ids) for name, rows in fields.items()},
        }
        records.add(entry, arrays, {})
    records.histogram = staged.histogram
    records.formats = staged.formats
    records.field_counts = staged.field_counts
    return records


def _sources(staged: Records) -> list[bytes]:
    """Every record's source name (its bytes), in id order."""
    data = np.concatenate(staged.sources).tobytes() if staged.sources else b""
    offsets = np.concatenate([np.zeros(1, np.int64), *staged.source_offsets])
    return [data[offsets[k] : offsets[k + 1]] for k in range(offsets.size - 1)]


class _Ragged:
    """A multilabel field's ids per record (``offsets``/``values`` parts), gathered by id."""

    def __init__(self, offsets: list[np.ndarray], values: list[np.ndarray]) -> None:
        self.rows = [
            part[o[k] : o[k + 1]]
            for o, part in zip(offsets, values, strict=True)
            for k in range(o.size - 1)
        ]

    def offsets(self, ids: np.ndarray) -> np.ndarray:
        out = np.zeros(ids.size + 1, dtype=fmt.ID_DTYPE)
        np.cumsum([len(self.rows[int(i)]) for i in ids], out=out[1:])
        return out

    def values(self, ids: np.ndarray) -> np.ndarray:
        chosen = [self.rows[int(i)] for i in ids]
        return np.concatenate(chosen).astype("<i4") if chosen else np.zeros(0, "<i4")


class _Flat:
    """An int field's value per record, gathered by id."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.whole = np.concatenate(parts)

    def gather(self, ids: np.ndarray) -> np.ndarray:
        return self.whole[ids]


def _field_rows(staged: Records) -> dict[str, Gather]:
    """Functions giving each field index part's arrays for a list of record ids."""
    out: dict[str, Gather] = {}
    parts = staged.field_parts
    for file, arrays in parts.items():
        key = file.removesuffix(".npy")
        if key.endswith("_values"):
            continue
        if key.endswith("_offsets"):
            base = key.removesuffix("_offsets")
            ragged = _Ragged(arrays, parts[f"{base}_values.npy"])
            out[key], out[f"{base}_values"] = ragged.offsets, ragged.values
        else:
            out[key] = _Flat(arrays).gather
    return out
