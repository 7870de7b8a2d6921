"""Records with byte-identical payloads, found without reading every record.

Records are grouped by (CRC32 of the payload, stored shape), and only records that share a
group with another record are read and compared byte for byte. Identical payloads always
share a CRC32, so no duplicate is missed.

How many records that reads depends on the payloads. For JPEG and raw payloads CRC32
collisions are rare (birthday bound). A whole PNG file's CRC32 is much weaker: each chunk
ends with its own CRC (big-endian), and the file's CRC32 then behaves like a 16-bit hash of
the content (20,000 random 12x12 PNGs of equal length gave 17,212 distinct values, as 16
bits predict), so large PNG datasets read a good part of their records here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.errors import DatumioError
from datumio.inspect._json import dataclass_json
from datumio.shards.dataset import Dataset

#: How many duplicate groups and ids per group the report quotes.
MAX_DUPLICATE_EXAMPLES = 10
MAX_IDS_PER_EXAMPLE = 8
#: How many class pairs the report names.
MAX_CLASS_PAIRS = 10

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class WithinClass:
    """Copies inside one class: (group, class) sets of two or more copies, and the copies
    beyond the first of each."""

    groups: int
    redundant_records: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassPair:
    """Groups of identical records that span exactly these two classes."""

    classes: tuple[str, str]
    groups: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AcrossClasses:
    """Groups whose copies carry two or more labels (a labelling conflict).

    Attributes:
        groups: such groups.
        records: the records in them.
        class_pairs: the pairs of classes most involved, most groups first.
        groups_over_two_classes: groups that span more than two classes.
    """

    groups: int
    records: int
    class_pairs: tuple[ClassPair, ...]
    groups_over_two_classes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateExample:
    """One group of identical records: its size and the first ids, with their classes and
    sources (the first copy in each class first, then the others)."""

    size: int
    ids: tuple[int, ...]
    classes: tuple[str, ...]
    sources: tuple[str, ...]
    #: Stored ``(height, width, channels)``.
    shape: tuple[int, int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicates:
    """What :func:`find_duplicates` found.

    A *group* is a set of two or more records with byte-identical payloads and equal
    stored shapes.

    Attributes:
        method: how the records were compared.
        records_read: the records read to confirm candidates (those sharing a CRC32 and a
            shape with another record).
        unreadable: ids of candidates that could not be read (the first few).
        unreadable_count: all of them.
        groups: groups found.
        duplicate_records: copies beyond the first of each group.
        within_class: copies inside one class.
        across_classes: groups that cross classes.
        examples: the largest groups, those that cross classes first.
    """

    method: str
    records_read: int
    unreadable: tuple[int, ...]
    unreadable_count: int
    groups: int
    duplicate_records: int
    within_class: WithinClass
    across_classes: AcrossClasses
    examples: tuple[DuplicateExample, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``duplicates`` object of ``datumio inspect --json``."""
        return dataclass_json(self)


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


def find_duplicates(ds: Dataset, *, progress: Progress | None = None) -> Duplicates:
    """Records with identical payloads, within a class and across classes.

    ``within_class`` counts, per (group, class) with two or more copies, the copies beyond
    the first; ``across_classes`` counts the groups whose copies carry two or more labels,
    by pair of classes for those that span exactly two (the usual sign of a labelling
    conflict). ``examples`` lists the largest groups, those that cross classes first, with
    ids, class names and source paths (the first copy in each class, then the others, up
    to :data:`MAX_IDS_PER_EXAMPLE`).

    Args:
        ds: an open dataset.
        progress: called as ``progress(done, total)`` while candidates are read.
    """
    candidates = _candidate_groups(ds, record_crc32(ds))
    total = int(sum(g.size for g in candidates))
    unreadable: list[int] = []
    groups: list[list[int]] = []
    done = 0
    for cand in candidates:
        groups.extend(_confirm(ds, cand, unreadable))
        done += cand.size
        if progress is not None:
            progress(done, total)
    spans = [int(np.unique(np.asarray(ds.labels[members])).size) for members in groups]
    ranked = sorted(range(len(groups)), key=lambda k: (spans[k] < 2, -len(groups[k]), groups[k][0]))
    return Duplicates(
        method="crc32+shape, confirmed by payload bytes",
        records_read=total,
        unreadable=tuple(unreadable[:MAX_IDS_PER_EXAMPLE]),
        unreadable_count=len(unreadable),
        groups=len(groups),
        duplicate_records=int(sum(len(g) - 1 for g in groups)),
        within_class=_within_class(ds, groups),
        across_classes=_across_classes(ds, groups),
        examples=tuple(_example(ds, groups[k]) for k in ranked[:MAX_DUPLICATE_EXAMPLES]),
    )


def _within_class(ds: Dataset, groups: list[list[int]]) -> WithinClass:
    within_groups = redundant = 0
    for members in groups:
        _, per_class = np.unique(np.asarray(ds.labels[members]), return_counts=True)
        within_groups += int((per_class > 1).sum())
        redundant += int((per_class[per_class > 1] - 1).sum())
    return WithinClass(groups=within_groups, redundant_records=redundant)


def _across_classes(ds: Dataset, groups: list[list[int]]) -> AcrossClasses:
    across_groups = across_records = many = 0
    pairs: dict[tuple[int, int], int] = {}
    for members in groups:
        classes = np.unique(np.asarray(ds.labels[members]))
        if classes.size > 1:
            across_groups += 1
            across_records += len(members)
        if classes.size == 2:
            key = (int(classes[0]), int(classes[1]))
            pairs[key] = pairs.get(key, 0) + 1
        elif classes.size > 2:
            many += 1
    names = ds.class_names
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CLASS_PAIRS]
    return AcrossClasses(
        groups=across_groups,
        records=across_records,
        class_pairs=tuple(
            ClassPair(classes=(names[a], names[b]), groups=n) for (a, b), n in ranked
        ),
        groups_over_two_classes=many,
    )


def _example(ds: Dataset, members: list[int]) -> DuplicateExample:
    # The first copy in each class first, so an example that crosses classes shows it.
    firsts: dict[int, int] = {}
    for i in members:
        firsts.setdefault(int(ds.labels[i]), i)
    lead = sorted(firsts.values())
    shown = sorted((lead + [i for i in members if i not in set(lead)])[:MAX_IDS_PER_EXAMPLE])
    return DuplicateExample(
        size=len(members),
        ids=tuple(shown),
        classes=tuple(ds.class_names[int(ds.labels[i])] for i in shown),
        sources=tuple(ds.source(i) for i in shown),
        shape=ds.shape(shown[0]),
    )
