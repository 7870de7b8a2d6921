"""Stored splits (train, val, test ...): views over a dataset's records, no record copied.

The manifest's ``splits`` section (:class:`~datumio.shards.manifest_sections.Splits`) names
the splits, their record and class counts, how they were made, and the directory of their
index files, relative to the dataset::

    index/splits-1a2b3c4d/          splits.dir: a new directory each time splits are made
      NAME/ids.npy                  <i8 [m]     global ids of the split's records, ascending
      NAME/labels.npy               <i4 [m]     their labels (the dataset's labels at ids)
      NAME/class_offsets.npy        <i8 [K+1]   class c owns class_ids[off[c]:off[c+1]] (K: the
                                                classes when it was made; C unless an append
                                                added classes since)
      NAME/class_ids.npy            <i8 [m]     split positions 0..m-1 grouped by class,
                                                ascending within a class
      NAME/groups.npy               <i4 [m]     their groups (datasets with groups only)

A record is in one split at most. A split's class index is over its own positions
(``ids[class_ids[...]]`` are global ids), so a sampler over the split balances it exactly.
Making splits again writes a new directory, then the manifest that names it: a reader finds
the old splits or the new ones, never a mix.

:func:`save_splits` writes the files, :func:`open_split` opens one split (what
``Dataset(path, split=NAME)`` reads; the checks cost O(classes) and one min/max pass) and
:func:`check_splits` checks every split against the dataset's index (``datumio verify``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from datumio.errors import DatasetReplacedError, DatumioError, FormatError, OptionError
from datumio.shards import format as fmt
from datumio.shards.access import ShardStore
from datumio.shards.base import class_index_of
from datumio.shards.index import check_offsets, check_range, load_checked, load_index_array
from datumio.shards.manifest import Manifest, read_manifest
from datumio.shards.manifest_sections import Splits, split_name

__all__ = [
    "SPLIT_FILES",
    "SplitView",
    "check_splits",
    "open_split",
    "save_splits",
    "split_files",
]

IDS = "ids.npy"
#: File -> dtype of each split file (``groups.npy`` only in a dataset with groups).
SPLIT_FILES: dict[str, str] = {
    IDS: fmt.ID_DTYPE,
    fmt.LABELS: fmt.LABEL_DTYPE,
    fmt.CLASS_OFFSETS: fmt.ID_DTYPE,
    fmt.CLASS_IDS: fmt.ID_DTYPE,
    fmt.GROUPS: fmt.LABEL_DTYPE,
}
#: How to make splits, for the message of a dataset that has none.
MAKE_SPLITS = "datumio split {path} --val 0.1"
#: What every problem of a split file ends with: what to do.
_REMAKE = "; the split files are damaged: make the splits again (datumio split)"


@dataclass(frozen=True)
class SplitView:
    """One split's index, memory-mapped (:func:`open_split`).

    Attributes:
        name: the split's name.
        ids: ``[m]`` global ids of its records, ascending.
        labels: ``[m]`` their labels.
        class_offsets: ``[C+1]`` class ``c`` owns ``class_ids[off[c]:off[c+1]]`` (classes
            added by an append since the split was made own none).
        class_ids: ``[m]`` split positions grouped by class.
        groups: ``[m]`` their groups; None in a dataset without groups.
    """

    name: str
    ids: np.ndarray
    labels: np.ndarray
    class_offsets: np.ndarray
    class_ids: np.ndarray
    groups: np.ndarray | None

    def shard_offsets(self, shard_offsets: np.ndarray) -> np.ndarray:
        """``[S+1]`` from the dataset's shard offsets: shard ``s`` holds the split's positions
        ``off[s] .. off[s+1]-1`` (the ids ascend, so they are a run): O(S log m)."""
        return np.searchsorted(self.ids, np.asarray(shard_offsets)).astype(np.int64)


def split_files(manifest: Manifest, names: Sequence[str] | None = None) -> list[str]:
    """Paths (relative to the dataset) of the files of splits ``names`` (None: every split)."""
    splits = manifest.splits
    if splits is None:
        return []
    files = [f for f in SPLIT_FILES if f != fmt.GROUPS or manifest.groups is not None]
    return [splits.path(name, f) for name in (names or splits.names) for f in files]


def _chosen(root: str, manifest: Manifest, name: Any) -> Splits:
    """The splits section, once ``name`` is known to be one of its splits.

    Raises:
        OptionError: ``name`` is not a str, the dataset has no splits, or none of that name.
    """
    if not isinstance(name, str):
        raise OptionError(
            f"split={name!r}: give the name of a stored split (a str), or None for the whole "
            "dataset"
        )
    splits = manifest.splits
    if splits is None:
        raise OptionError(
            f"split={name!r}: {root} has no stored splits; make them with "
            f"`{MAKE_SPLITS.format(path=root)}`, or leave split out to read the whole dataset"
        )
    if name not in splits.names:
        raise OptionError(
            f"split={name!r}: {root} has no split of that name; its splits: "
            + ", ".join(repr(n) for n in splits.names)
        )
    return splits


def _check_not_replaced(root: str, splits: Splits) -> None:
    """Raise :class:`DatasetReplacedError` when the split directory a reader was given is
    gone because the dataset was split again since (two times: one split back is kept)."""
    try:
        now = read_manifest(root).splits
    except DatumioError:
        return  # the load below names what is wrong
    if now is None or now.dir != splits.dir:
        raise DatasetReplacedError(
            f"the splits of {root} were made again (datumio split) since this reader opened "
            f"them, and their files ({splits.dir}) are gone; open the dataset again (a "
            "Loader: make a new one)"
        )


def open_split(
    root: str, manifest: Manifest, name: str, store: ShardStore | None = None
) -> SplitView:
    """Memory-map split ``name`` of the dataset at ``root`` (its manifest: ``manifest``) and
    check its files: dtypes and shapes, class offsets against the manifest's counts, ids,
    labels and groups in range (one min/max pass each). ``store``: fetches a file the
    directory lacks (a remote dataset's cache).

    Raises:
        OptionError: no split of that name (the message lists them), or no splits at all.
        FormatError: a file missing, of another dtype or shape, or out of range (named).
    """
    splits = _chosen(root, manifest, name)
    if store is None and not os.path.isdir(os.path.join(root, splits.dir)):
        _check_not_replaced(root, splits)
    if store is not None:
        for relative in split_files(manifest, [name]):
            if not os.path.isfile(os.path.join(root, relative)):
                store.fetch(relative)
    m = splits.counts[name]

    def where(file: str) -> str:
        return os.path.join(root, splits.path(name, file))

    def load(file: str, rows: int) -> np.ndarray:
        return load_checked(where(file), SPLIT_FILES[file], (rows,))

    counts = list(splits.class_counts[name])
    ids = load(IDS, m)
    labels = load(fmt.LABELS, m)
    class_offsets = load(fmt.CLASS_OFFSETS, len(counts) + 1)
    class_ids = load(fmt.CLASS_IDS, m)
    groups = None if manifest.groups is None else load(fmt.GROUPS, m)
    check_offsets(class_offsets, where(fmt.CLASS_OFFSETS), counts)
    if len(counts) < manifest.num_classes:  # classes an append added since: none in the split
        more = np.full(manifest.num_classes - len(counts), class_offsets[-1], np.int64)
        class_offsets = np.concatenate([class_offsets, more])
    check_range(ids, manifest.num_records, where(IDS), "id")
    check_range(labels, manifest.num_classes, where(fmt.LABELS), "label")
    if groups is not None and manifest.groups is not None:
        check_range(groups, len(manifest.groups.names), where(fmt.GROUPS), "group")
    return SplitView(name, ids, labels, class_offsets, class_ids, groups)


# -- writing -----------------------------------------------------------------------------


def _check_names(names: Sequence[str]) -> None:
    """Split names as the manifest takes them: each a split name, none twice."""
    for k, name in enumerate(names):
        try:
            split_name(f"names[{k}]", name)
        except ValueError as exc:
            raise OptionError(f"save_splits: {exc}") from None
    if len({n.casefold() for n in names}) != len(names):
        raise OptionError(f"save_splits: names {list(names)} name a split twice (ignoring case)")


def _checked_input(
    split_of: Any, names: Sequence[str], labels: Any, num_classes: int, groups: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``split_of``, ``labels`` and ``groups`` as arrays, checked (one min/max pass each)."""
    _check_names(names)
    split_of, labels = np.asarray(split_of), np.asarray(labels)
    arrays = {"split_of": split_of, "labels": labels}
    if groups is not None:
        arrays["groups"] = groups = np.asarray(groups)
    limits = {"split_of": (-1, len(names) - 1), "labels": (0, num_classes - 1), "groups": (0, None)}
    for what, arr in arrays.items():
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or len(arr) != len(split_of):
            raise OptionError(
                f"save_splits: {what} is {arr.dtype} {arr.shape}; give one int per record "
                f"({len(split_of)}, as split_of has)"
            )
        low, high = limits[what]
        if len(arr) and (int(arr.min()) < low or (high is not None and int(arr.max()) > high)):
            raise OptionError(
                f"save_splits: {what} holds {int(arr.min())} .. {int(arr.max())}; give values "
                f"from {low} to {high if high is not None else 'any'}"
            )
    return split_of, labels, groups


def _new_directory(root: str) -> str:
    """A new, empty split directory under ``root/index``; its path relative to ``root``."""
    os.makedirs(os.path.join(root, fmt.INDEX_DIR), exist_ok=True)
    while True:
        relative = f"{fmt.INDEX_DIR}/splits-{secrets.token_hex(4)}"
        try:
            os.mkdir(os.path.join(root, relative))
        except FileExistsError:
            continue
        return relative


def save_splits(
    root: str,
    split_of: np.ndarray,
    names: Sequence[str],
    labels: np.ndarray,
    num_classes: int,
    groups: np.ndarray | None,
    how: Mapping[str, Any],
) -> Splits:
    """Write the files of new splits into a new directory under ``root`` (a dataset or build
    directory) and return the manifest section that names them; O(N), numpy only.

    The caller writes the manifest with the section (``dataclasses.replace(manifest,
    splits=...)``) and handles a full disk (files are written plainly).

    Args:
        root: the dataset (or build) directory.
        split_of: one int per record: the index in ``names`` of its split, -1 for none.
        names: the split names, in order (``train``, ``val``, ``test``).
        labels: the label of every record (the dataset's ``labels.npy``).
        num_classes: the dataset's number of classes.
        groups: the group of every record, or None for a dataset without groups.
        how: how the records were assigned (any JSON object: seed, fractions ...).

    Raises:
        OptionError: a bad name, a name given twice, arrays of other lengths or values out of
            range, or ``how`` that is not a JSON object.
    """
    names = tuple(names)
    split_of, labels, groups = _checked_input(split_of, names, labels, num_classes, groups)
    try:
        how = json.loads(json.dumps(dict(how), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise OptionError(f"save_splits: how is not a JSON object ({exc})") from None
    directory = _new_directory(root)
    # Record ids grouped by split (-1, in no split, first), ascending within one: the rule
    # of the dataset's own class index, one stable radix sort.
    ends, by_split = class_index_of(split_of + 1, len(names) + 1)
    counts, class_counts = {}, {}
    for k, name in enumerate(names):
        ids = by_split[ends[k + 1] : ends[k + 2]]
        own = labels[ids]
        class_offsets, class_ids = class_index_of(own, num_classes)
        arrays = {
            IDS: ids,
            fmt.LABELS: own,
            fmt.CLASS_OFFSETS: class_offsets,
            fmt.CLASS_IDS: class_ids,
        }
        if groups is not None:
            arrays[fmt.GROUPS] = groups[ids]
        os.mkdir(os.path.join(root, directory, name))
        for file, array in arrays.items():
            path = os.path.join(root, directory, name, file)
            np.save(path, array.astype(SPLIT_FILES[file]), allow_pickle=False)
        counts[name], class_counts[name] = len(ids), tuple(np.diff(class_offsets).tolist())
    return Splits(names=names, dir=directory, counts=counts, class_counts=class_counts, how=how)


# -- checking (datumio verify) -----------------------------------------------------------


class _Opened(Protocol):
    """A dataset as :func:`check_splits` reads it (a Dataset, any view of it)."""

    @property
    def path(self) -> str: ...

    @property
    def manifest(self) -> Manifest: ...


def _first(mask: np.ndarray) -> int | None:
    """The first position where ``mask`` is True, or None."""
    found = np.flatnonzero(mask)
    return int(found[0]) if len(found) else None


def _disagreements(
    view: SplitView, where: str, labels: np.ndarray, groups: np.ndarray | None
) -> list[str]:
    """Where one split's files (its ids ascending) disagree with the dataset's ``labels``
    and ``groups``, or with each other."""
    ids, own, out = np.asarray(view.ids), np.asarray(view.labels), []
    bad = _first(own != labels[ids])
    if bad is not None:
        out.append(
            f"{where}/{fmt.LABELS}: position {bad} (record {int(ids[bad])}) has label "
            f"{int(own[bad])}, the dataset's labels.npy {int(labels[ids[bad]])}{_REMAKE}"
        )
    offsets, expected = class_index_of(own, len(view.class_offsets) - 1)
    bad = _first(np.asarray(view.class_offsets) != offsets)
    if bad is not None:
        out.append(
            f"{where}/{fmt.CLASS_OFFSETS}: entry {bad} is {int(view.class_offsets[bad])}, the "
            f"split's labels give {int(offsets[bad])} (its class index disagrees with them)"
            f"{_REMAKE}"
        )
    bad = _first(np.asarray(view.class_ids) != expected)
    if bad is not None:
        out.append(
            f"{where}/{fmt.CLASS_IDS}: entry {bad} is {int(view.class_ids[bad])}, the split's "
            f"labels give {int(expected[bad])} (its class index disagrees with them){_REMAKE}"
        )
    if groups is not None and view.groups is not None:
        bad = _first(np.asarray(view.groups) != groups[ids])
        if bad is not None:
            out.append(
                f"{where}/{fmt.GROUPS}: position {bad} (record {int(ids[bad])}) has group "
                f"{int(view.groups[bad])}, the dataset's groups.npy {int(groups[ids[bad]])}"
                f"{_REMAKE}"
            )
    return out


def check_splits(dataset: _Opened) -> list[str]:
    """Every problem of the dataset's split files, checked against its index (what
    ``datumio verify`` reports; an empty list: sound, or no splits). O(N), numpy only.

    Finds files missing, damaged or out of range, ids that do not ascend, a record in two
    splits, labels or groups that disagree with the dataset's, and a class index that
    disagrees with the split's labels.
    """
    manifest, root = dataset.manifest, dataset.path
    splits = manifest.splits
    if splits is None:
        return []
    n = manifest.num_records
    try:
        labels = np.asarray(load_index_array(root, manifest, fmt.LABELS, n))
        has_groups = manifest.groups is not None
        groups = np.asarray(load_index_array(root, manifest, fmt.GROUPS, n)) if has_groups else None
    except FormatError as exc:
        return [f"the splits cannot be checked: {exc}"]
    owner = np.full(n, -1, np.int64)  # the split that holds each record so far
    problems: list[str] = []
    for k, name in enumerate(splits.names):
        try:
            view = open_split(root, manifest, name)
        except FormatError as exc:
            problems.append(str(exc))
            continue
        where = os.path.join(root, splits.dir, name)
        ids = np.asarray(view.ids)
        bad = _first(np.diff(ids) <= 0)
        if bad is not None:  # the other checks read by these ids
            problems.append(f"{where}/{IDS}: ids do not ascend at position {bad + 1}{_REMAKE}")
            continue
        problems += _disagreements(view, where, labels, groups)
        bad = _first(owner[ids] >= 0)
        if bad is not None:
            other = splits.names[int(owner[ids[bad]])]
            problems.append(
                f"record {int(ids[bad])} is in split {other!r} and in split {name!r}: a record "
                f"is in one split at most{_REMAKE}"
            )
        owner[ids] = k
    return problems
