"""The stored splits of a dataset, for ``datumio inspect``: records per split and per class,
and whether a group crosses splits.

:func:`split_summary` opens each split as a view (its ids, labels and groups memory-mapped)
and counts what is there, so a hand-made split is reported as it is, not as its manifest
says. A group whose records lie in two splits or more leaks between them (the same
patient, video or source in train and in val): each such group is a problem, as is every
problem :func:`datumio.shards.splits.check_splits` finds in the split files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.errors import DatumioError
from datumio.shards.dataset import Dataset
from datumio.shards.splits import check_splits

#: Groups that cross splits named in the summary, at most.
MAX_CROSSING_EXAMPLES = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitCount:
    """One stored split: its records, their share of the dataset, records per class id."""

    name: str
    records: int
    share: float
    classes: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossingGroup:
    """A group whose records lie in more than one split: its name, the splits, its records
    in each (in the order of ``splits``)."""

    name: str
    splits: tuple[str, ...]
    records: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitSummary:
    """The dataset's stored splits (``splits`` of ``datumio inspect --json``).

    Attributes:
        dir: the directory of the split files, relative to the dataset.
        how: how the splits were made, as the manifest records it (seed, fractions ...).
        by_split: one per split, in the manifest's order.
        unassigned: records in no split.
        groups_checked: whether the dataset has groups (else no group can cross).
        crossing_groups: groups with records in more than one split.
        crossing_examples: the first of them (group order).
        problems: what is wrong: split files that disagree with the dataset, and groups
            that cross splits; empty when sound.
    """

    dir: str
    how: Mapping[str, Any]
    by_split: tuple[SplitCount, ...]
    unassigned: int
    groups_checked: bool
    crossing_groups: int
    crossing_examples: tuple[CrossingGroup, ...]
    problems: tuple[str, ...]


def split_summary(ds: Dataset) -> SplitSummary | None:
    """The stored splits of ``ds`` (a whole dataset or any view of it) counted from their
    files; None when it has none."""
    splits = ds.manifest.splits
    if splits is None:
        return None
    whole = ds.whole()
    problems = list(check_splits(whole))
    owner = np.full(whole.manifest.num_records, -1, np.int64)
    counts = []
    for k, name in enumerate(splits.names):
        try:
            view = whole.with_split(name)
        except DatumioError:  # check_splits named the damaged file
            continue
        ids = np.asarray(view.ids)
        owner[ids] = k
        classes = np.bincount(np.asarray(view.labels), minlength=whole.num_classes)
        counts.append(
            SplitCount(
                name=name,
                records=len(ids),
                share=round(len(ids) / max(len(whole), 1), 6),
                classes=tuple(int(c) for c in classes),
            )
        )
    crossing, examples = _crossing(whole, owner, splits.names)
    if crossing:
        shown = ", ".join(repr(e.name) for e in examples)
        of = len(whole.manifest.groups.names) if whole.manifest.groups else crossing
        problems.append(
            f"groups with records in more than one split: {crossing} of {of} ({shown}"
            f"{' ...' if crossing > len(examples) else ''}); their records leak between the "
            "splits: split again by group (datumio split PATH --by-group)"
        )
    return SplitSummary(
        dir=splits.dir,
        how=dict(splits.how),
        by_split=tuple(counts),
        unassigned=int(np.count_nonzero(owner < 0)),
        groups_checked=whole.groups is not None,
        crossing_groups=crossing,
        crossing_examples=examples,
        problems=tuple(problems),
    )


def _crossing(
    whole: Dataset, owner: np.ndarray, names: tuple[str, ...]
) -> tuple[int, tuple[CrossingGroup, ...]]:
    """How many groups have records in two splits or more, and the first of them."""
    groups, group_names = whole.groups, whole.manifest.groups
    if groups is None or group_names is None:
        return 0, ()
    placed = owner >= 0
    pairs, records = np.unique(
        np.asarray(groups)[placed].astype(np.int64) * len(names) + owner[placed],
        return_counts=True,
    )
    group_of, split_of = np.divmod(pairs, len(names))
    spans = np.bincount(group_of)
    crossing = np.flatnonzero(spans > 1)
    examples = []
    for g in crossing[:MAX_CROSSING_EXAMPLES]:
        mine = group_of == g
        examples.append(
            CrossingGroup(
                name=group_names.names[g],
                splits=tuple(names[s] for s in split_of[mine]),
                records=tuple(int(r) for r in records[mine]),
            )
        )
    return len(crossing), tuple(examples)
