"""What is in a dataset, as one versioned, JSON-safe object (``datumio-inspect --json``).

:func:`summarize` reads the manifest, the memory-mapped index and each shard's per-record
CRC32 array; it reads record payloads only to confirm duplicate candidates. Duplicates are
found without reading every record: records are grouped by (CRC32 of the payload, stored
shape), and only records that share a group with another record are read and compared byte
for byte. Identical payloads always share a CRC32, so no duplicate is missed.

How many records that reads depends on the payloads. For JPEG and raw payloads CRC32
collisions are rare (birthday bound). A whole PNG file's CRC32 is much weaker: each chunk
ends with its own CRC (big-endian), and the file's CRC32 then behaves like a 16-bit hash of
the content (20,000 random 12x12 PNGs of equal length gave 17,212 distinct values, as 16
bits predict), so large PNG datasets read a good part of their records here.

The object's top-level keys are :data:`SUMMARY_KEYS`, always all present; ``schema`` is
:data:`SCHEMA` and changes only when a key is removed or changes meaning (new keys inside
the nested objects may appear within a schema version).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from datumio.errors import DatumioError
from datumio.inspect.fields import DEFAULT_FIELD_SAMPLE, field_json, field_statistics
from datumio.inspect.sampling import SamplingReport
from datumio.shards import format as fmt
from datumio.shards.dataset import Dataset
from datumio.shards.manifest import RejectSummary, Stats
from datumio.shards.verify import VerifyReport

SCHEMA = "datumio.inspect/1"

SUMMARY_KEYS = (
    "schema",
    "path",
    "format",
    "format_version",
    "backend",
    "encoding",
    "records",
    "num_classes",
    "classes",
    "imbalance_ratio",
    "empty_classes",
    "groups",
    "shards",
    "bytes",
    "image",
    "channel_stats",
    "rejects",
    "duplicates",
    "integrity",
    "sampling",
    "writer",
    "ingest",
    "fields",
)

#: How many duplicate groups, ids per group and rejects.jsonl lines the summary quotes.
MAX_DUPLICATE_EXAMPLES = 10
MAX_IDS_PER_EXAMPLE = 8
MAX_REJECT_SAMPLES = 5

Progress = Callable[[int, int], None]


def summarize(
    ds: Dataset,
    *,
    duplicates: bool = True,
    sampling: SamplingReport | None = None,
    integrity: VerifyReport | None = None,
    progress: Progress | None = None,
    field_sample: int = DEFAULT_FIELD_SAMPLE,
    seed: int = 0,
    field_progress: Progress | None = None,
) -> dict[str, Any]:
    """Summarise a dataset as a JSON-safe dict with the keys :data:`SUMMARY_KEYS`.

    Args:
        ds: an open dataset.
        duplicates: look for records with identical payloads (``duplicates`` is None when off).
        sampling: a report from :func:`datumio.inspect.sampling.sampling_report` to embed
            (``sampling`` is None without one).
        integrity: a :func:`datumio.shards.verify.verify` report to embed (None: not checked).
        progress: called as ``progress(done, total)`` while duplicate candidates are read.
        field_sample: records read at most for the statistics of the fields without a
            global index (:func:`datumio.inspect.fields.field_statistics`).
        seed: chooses those records when the dataset has more.
        field_progress: called as ``progress(done, total)`` while they are read.
    """
    m = ds.manifest
    counts = [int(c) for c in ds.counts]
    rejected = list(m.class_rejected or [0] * ds.num_classes)
    nonzero = [c for c in counts if c > 0]
    stats = m.stats or Stats()
    return {
        "schema": SCHEMA,
        "path": ds.path,
        "format": m.format,
        "format_version": m.format_version,
        "backend": ds.backend,
        "encoding": ds.encoding,
        "records": len(ds),
        "num_classes": ds.num_classes,
        "classes": [
            {"id": c, "name": name, "count": counts[c], "rejected": int(rejected[c])}
            for c, name in enumerate(ds.class_names)
        ],
        "imbalance_ratio": round(max(nonzero) / min(nonzero), 4) if nonzero else None,
        "empty_classes": [e.to_json() for e in m.empty_classes],
        "groups": None if m.groups is None else m.groups.to_json(),
        "shards": _shards(ds),
        "bytes": _bytes_on_disk(ds),
        "image": {
            "channels": int(m.channels or (int(ds.shapes[0][2]) if len(ds) else 0)),
            "stored": copy.deepcopy(dict(stats.stored_size)),
            "source": copy.deepcopy(dict(stats.source_size)),
            "source_formats": dict(stats.source_formats),
        },
        "channel_stats": {
            "scale": stats.pixel_scale,
            "mean": None if stats.mean is None else list(stats.mean),
            "std": None if stats.std is None else list(stats.std),
        },
        "rejects": _rejects(ds),
        "duplicates": (
            find_duplicates(ds, progress=progress) if duplicates and ds.has_images else None
        ),
        "integrity": None if integrity is None else integrity.to_dict(),
        "sampling": None if sampling is None else sampling.to_dict(),
        "writer": copy.deepcopy(dict(m.writer or {})),
        "ingest": {} if m.ingest is None else m.ingest.to_json(),
        "fields": field_statistics(ds, sample=field_sample, seed=seed, progress=field_progress),
    }


def _shards(ds: Dataset) -> dict[str, Any]:
    sizes = np.diff(np.asarray(ds.shard_offsets, dtype=np.int64))
    return {
        "count": ds.num_shards,
        "records_min": int(sizes.min()) if sizes.size else 0,
        "records_max": int(sizes.max()) if sizes.size else 0,
        "payload_bytes": sum(s.payload_bytes for s in ds.manifest.shards),
    }


def _bytes_on_disk(ds: Dataset) -> dict[str, int]:
    """Sizes of the files actually there (the manifest's figures are what was written)."""
    shards = index = other = 0
    for folder, _dirs, files in os.walk(ds.path):
        part = os.path.relpath(folder, ds.path).split(os.sep)[0]
        for name in files:
            try:
                size = os.path.getsize(os.path.join(folder, name))
            except OSError:
                continue
            if part == fmt.SHARDS_DIR:
                shards += size
            elif part == fmt.INDEX_DIR:
                index += size
            else:
                other += size
    return {"total": shards + index + other, "shards": shards, "index": index, "other": other}


def _rejects(ds: Dataset) -> dict[str, Any]:
    info = ds.manifest.rejects or RejectSummary()
    ordered = dict(sorted(info.by_reason.items(), key=lambda kv: (-int(kv[1]), kv[0])))
    file = info.file
    sample: list[dict[str, Any]] = []
    path = os.path.join(ds.path, file)
    if info.count and os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if len(sample) >= MAX_REJECT_SAMPLES:
                    break
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    sample.append(row)
    return {
        "count": info.count,
        "by_reason": ordered,
        "file": file,
        "sample": sample,
    }


def shard_crc32(ds: Dataset, shard: int) -> np.ndarray:
    """The stored CRC32 of each record of one shard (uint32, by local id)."""
    return np.asarray(ds.shard_crc32(shard), dtype=np.uint32)


def record_crc32(ds: Dataset) -> np.ndarray:
    """The stored CRC32 of every record (uint32 [N]), from each shard's metadata (whose
    length :meth:`Dataset.shard_crc32` checks against the index)."""
    crcs = np.empty(len(ds), dtype=np.uint32)
    for s in range(ds.num_shards):
        crcs[int(ds.shard_offsets[s]) : int(ds.shard_offsets[s + 1])] = shard_crc32(ds, s)
    return crcs


def _candidate_groups(ds: Dataset, crcs: np.ndarray) -> list[np.ndarray]:
    """Ids sharing a (CRC32, stored shape) with at least one other record, by group."""
    order = np.argsort(crcs, kind="stable")
    ordered = crcs[order]
    same_as_next = ordered[1:] == ordered[:-1]
    if not same_as_next.any():
        return []
    # Runs of equal CRC32 in sorted order: starts where a value differs from the previous one.
    starts = np.flatnonzero(np.concatenate([[True], ~same_as_next]))
    stops = np.append(starts[1:], ordered.size)
    groups: list[np.ndarray] = []
    for lo, hi in zip(starts, stops, strict=True):
        if hi - lo < 2:
            continue
        ids = np.sort(order[lo:hi])
        shapes = np.asarray(ds.shapes[ids])
        _, inverse = np.unique(shapes, axis=0, return_inverse=True)
        for k in np.unique(inverse):
            same_shape = ids[inverse.reshape(-1) == k]
            if same_shape.size > 1:
                groups.append(same_shape)
    return groups


def _confirm(ds: Dataset, ids: np.ndarray, unreadable: list[int]) -> list[list[int]]:
    """Split one candidate group into sets of records whose payloads are byte-identical.

    Payloads are bucketed by a BLAKE2b digest (so a large group costs one pass, not a
    comparison of every pair) and each is still compared byte for byte with the first
    payload of its bucket.
    """
    buckets: dict[bytes, list[tuple[bytes, list[int]]]] = {}
    for i in ids.tolist():
        try:
            payload = ds.read(i)
        except DatumioError:
            unreadable.append(i)
            continue
        bucket = buckets.setdefault(hashlib.blake2b(payload, digest_size=16).digest(), [])
        for first, members in bucket:
            if first == payload:
                members.append(i)
                break
        else:
            bucket.append((payload, [i]))
    return [members for bucket in buckets.values() for _, members in bucket if len(members) > 1]


def find_duplicates(ds: Dataset, *, progress: Progress | None = None) -> dict[str, Any]:
    """Records with identical payloads, within a class and across classes.

    A *group* is a set of two or more records with byte-identical payloads and equal stored
    shapes. ``within_class`` counts, per (group, class) with two or more copies, the copies
    beyond the first (``redundant_records``); ``across_classes`` counts the groups whose
    copies carry two or more labels; ``class_pairs`` counts the groups that span exactly
    two classes by pair (the usual sign of a labelling conflict), and
    ``groups_over_two_classes`` the others. ``examples`` lists the largest groups, those
    that cross classes first, with ids, class names and source paths (the first copy in
    each class, then the others, up to :data:`MAX_IDS_PER_EXAMPLE`).
    """
    crcs = record_crc32(ds)
    candidates = _candidate_groups(ds, crcs)
    total = int(sum(g.size for g in candidates))
    unreadable: list[int] = []
    groups: list[list[int]] = []
    done = 0
    for cand in candidates:
        groups.extend(_confirm(ds, cand, unreadable))
        done += cand.size
        if progress is not None:
            progress(done, total)
    labels = ds.labels
    within_groups = within_redundant = across_groups = across_records = many = 0
    pairs: dict[tuple[int, int], int] = {}
    spans: list[int] = []
    for members in groups:
        classes, per_class = np.unique(np.asarray(labels[members]), return_counts=True)
        spans.append(int(classes.size))
        within_groups += int((per_class > 1).sum())
        within_redundant += int((per_class[per_class > 1] - 1).sum())
        if classes.size > 1:
            across_groups += 1
            across_records += len(members)
        if classes.size == 2:
            key = (int(classes[0]), int(classes[1]))
            pairs[key] = pairs.get(key, 0) + 1
        elif classes.size > 2:
            many += 1
    names = ds.class_names
    ranked = sorted(range(len(groups)), key=lambda k: (spans[k] < 2, -len(groups[k]), groups[k][0]))
    return {
        "method": "crc32+shape, confirmed by payload bytes",
        "records_read": total,
        "unreadable": unreadable[:MAX_IDS_PER_EXAMPLE],
        "unreadable_count": len(unreadable),
        "groups": len(groups),
        "duplicate_records": int(sum(len(g) - 1 for g in groups)),
        "within_class": {"groups": within_groups, "redundant_records": within_redundant},
        "across_classes": {
            "groups": across_groups,
            "records": across_records,
            "class_pairs": [
                {"classes": [names[a], names[b]], "groups": n}
                for (a, b), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            ],
            "groups_over_two_classes": many,
        },
        "examples": [_example(ds, groups[k]) for k in ranked[:MAX_DUPLICATE_EXAMPLES]],
    }


def _example(ds: Dataset, members: list[int]) -> dict[str, Any]:
    # The first copy in each class first, so an example that crosses classes shows it.
    firsts: dict[int, int] = {}
    for i in members:
        firsts.setdefault(int(ds.labels[i]), i)
    lead = sorted(firsts.values())
    shown = sorted((lead + [i for i in members if i not in set(lead)])[:MAX_IDS_PER_EXAMPLE])
    return {
        "size": len(members),
        "ids": shown,
        "classes": [ds.class_names[int(ds.labels[i])] for i in shown],
        "sources": [ds.source(i) for i in shown],
        "shape": list(ds.shape(shown[0])),
    }


def describe_record(ds: Dataset, i: int) -> dict[str, Any]:
    """One record's metadata: where it lives, what it is, and whether its CRC32 matches; its
    fields as JSON (:func:`datumio.inspect.fields.field_json`) in a dataset with fields.

    Reads the record's payload once (without raising on a CRC mismatch: ``crc32_ok`` says);
    fields that fail their CRC32 or do not decode give ``fields`` None and ``fields_error``.

    Raises:
        IndexError: ``i`` is not a record id of ``ds``.
    """
    if not -len(ds) <= i < len(ds):
        raise IndexError(
            f"record {i} out of range: the dataset has {len(ds)} records (0-{len(ds) - 1})"
        )
    i = i % len(ds)
    shard, local = ds.locate(i)
    payload = ds.read(i, verify_crc=False)
    stored = int(shard_crc32(ds, shard)[local])
    label = int(ds.labels[i])
    info: dict[str, Any] = {
        "id": i,
        "label": label,
        "class": ds.class_names[label],
        "source": ds.source(i),
        "shard": shard,
        "shard_file": os.path.relpath(ds.shard_path(shard), ds.path),
        "local_id": local,
        "shape": list(ds.shape(i)),
        "payload_bytes": len(payload),
        "payload_format": _payload_format(payload, ds.encoding),
        "crc32": f"{stored:08x}",
        "crc32_ok": zlib.crc32(payload) == stored,
    }
    if ds.groups is not None:
        group = int(ds.groups[i])
        groups = ds.manifest.groups
        names = () if groups is None else groups.names
        info["group"] = names[group] if 0 <= group < len(names) else group
    if ds.fields:
        try:
            info["fields"] = {
                name: field_json(spec, ds.field(i, name)) for name, spec in ds.fields.items()
            }
        except DatumioError as exc:  # a CRC mismatch or a value that does not decode
            info["fields"] = None
            info["fields_error"] = str(exc)
    return info


def _payload_format(payload: bytes, encoding: str) -> str:
    if encoding == "raw":
        return "raw"
    try:
        with Image.open(io.BytesIO(payload)) as img:
            return str(img.format or "unknown")
    except (OSError, ValueError):
        return "unknown"
