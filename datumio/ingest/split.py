"""``datumio.split()`` / ``datumio split``: store train/val/test splits in a dataset.

A split is a view, a list of record ids: no record is copied or moved. The splits are
assigned by :func:`datumio.sampling._split.assign_splits` (stratified by label; whole
groups with groups) and written by :func:`datumio.shards.splits.save_splits` into a new
directory inside the dataset. Then the manifest naming them replaces ``manifest.json`` in
one ``os.replace``, so a reader finds the old splits or the new ones, never a mix. Last,
the split directories older than the one just replaced are removed (only ``index/splits-*``
directories: nothing this code did not write). The one just replaced is kept, so a reader
that opened the old view, and a Loader whose workers start (or restart) after the split,
still read the files they were given; one split later it goes too.

The run holds the dataset's writer lock (:mod:`datumio.ingest.lock`) from before it reads
the manifest to after the old directory is gone, as an ingest, an append or another split
does: one writer at a time.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.checks import apply, flag, integer, number, optional
from datumio.errors import IngestError, OptionError
from datumio.ingest.disk import writing
from datumio.ingest.lock import writer_lock
from datumio.remote.urls import is_url, public
from datumio.sampling._split import assign_splits, split_names
from datumio.shards import format as fmt
from datumio.shards.index import load_index_array
from datumio.shards.manifest import (
    Manifest,
    Splits,
    normal_path,
    read_manifest,
    write_manifest,
)
from datumio.shards.splits import save_splits

#: The largest seed (``numpy.random.SeedSequence`` takes any int >= 0; JSON keeps 63 bits).
_MAX_SEED = 2**63 - 1
#: How the directories :func:`save_splits` makes start (``index/splits-1a2b3c4d``).
_MADE = "splits-"
_FRACTION = number(0.0, 1.0, want="a fraction of each class from 0 to below 1")
_WAIT = number(0.0, want="the seconds to wait for another run writing the dataset (0: do not wait)")


@dataclass(frozen=True, kw_only=True)
class SplitRequest:
    """What :func:`split_dataset` is asked to do, checked when made.

    Raises:
        OptionError: a value out of range (named, with what to give), or ``val`` and
            ``test`` that leave nothing to train on.
    """

    #: Share of each class that goes to ``val`` (0: no val split).
    val: float = 0.1
    #: Share of each class that goes to ``test`` (0: no test split).
    test: float = 0.0
    #: The same seed gives the same splits of the same dataset.
    seed: int = 0
    #: Keep every group in one split; None: when the dataset has groups.
    by_group: bool | None = None
    #: Seconds to wait for another run writing the dataset (None: as long as it takes).
    wait: float | None = 0.0

    def __post_init__(self) -> None:
        apply(self, _CHECKS)
        split_names(self.fractions)  # leaves records to train on

    @property
    def fractions(self) -> dict[str, float]:
        """The held-out splits' fractions by name (a fraction of 0 makes no split)."""
        return {"val": self.val, "test": self.test}

    def how(self, by_group: bool) -> dict[str, Any]:
        """How the splits were made, as the manifest records it."""
        return {
            "method": "stratified by label" + (", whole groups" if by_group else ""),
            "fractions": {k: v for k, v in self.fractions.items() if v > 0},
            "seed": self.seed,
            "by_group": by_group,
        }


_CHECKS = {
    "val": _FRACTION,
    "test": _FRACTION,
    "seed": integer(0, _MAX_SEED, want="an int >= 0"),
    "by_group": optional(flag),
    "wait": optional(_WAIT),
}


def split_dataset(
    path: str | os.PathLike[str],
    *,
    val: float = 0.1,
    test: float = 0.0,
    seed: int = 0,
    by_group: bool | None = None,
    wait: float | None = 0.0,
    events: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Splits:
    """Store train/val(/test) splits in the dataset at ``path``, replacing any it has.

    Each class is split in the given fractions (``train`` takes the rest), records chosen
    at random by ``seed``; with groups, every record of a group lands in one split
    (``docs/ingest.md``, "Splits"). Read a split with ``datumio.open(path, split="val")``
    or ``Loader(path, split="train")``.

    Args:
        path: a local dataset directory.
        val: share of each class for ``val`` (0: none).
        test: share of each class for ``test`` (0: none).
        seed: the same seed gives the same splits.
        by_group: keep each group (the labels file's group column) in one split; None:
            when the dataset has groups.
        wait: seconds to wait for another run writing the dataset (0: stop at once; None:
            as long as it takes).
        events: called with ``"wait"`` once, when the run starts to wait for another.
        stop: polled while waiting; True stops the wait as Ctrl-C would.

    Returns:
        The splits as the new manifest records them.

    Raises:
        OptionError: a bad fraction, seed or wait, or ``by_group=True`` for a dataset
            without groups.
        IngestError: ``path`` is a URL, or another run writes the dataset (past ``wait``).
        FormatError: ``path`` is not a dataset this datumio reads.
    """
    request = SplitRequest(val=val, test=test, seed=seed, by_group=by_group, wait=wait)
    if is_url(path):
        shown = public(str(path))
        raise IngestError(
            f"{shown} is a URL: splits are written into a local dataset; split a local copy "
            "and publish it (docs/remote.md), or split before uploading"
        )
    root = os.path.abspath(os.fspath(path))
    read_manifest(root)  # not a dataset: refused before the lock makes anything
    with writer_lock(root, request.wait, shown=str(path), events=events, stop=stop):
        return _split_locked(root, request)


def _split_locked(root: str, request: SplitRequest) -> Splits:
    """The split itself, under the writer lock: assign, save, commit, tidy."""
    manifest = read_manifest(root)
    grouped = _by_group(root, manifest, request.by_group)
    labels = np.asarray(load_index_array(root, manifest, fmt.LABELS, manifest.num_records))
    groups = None
    if manifest.groups is not None:
        groups = np.asarray(load_index_array(root, manifest, fmt.GROUPS, manifest.num_records))
    split_of, names = assign_splits(
        labels, groups if grouped else None, request.fractions, request.seed
    )
    before = _made(root)
    try:
        with writing(os.path.join(root, fmt.INDEX_DIR)):
            splits = save_splits(
                root, split_of, names, labels, manifest.num_classes, groups, request.how(grouped)
            )
        with writing(os.path.join(root, fmt.MANIFEST)):
            write_manifest(root, dataclasses.replace(manifest, splits=splits))
    except BaseException:  # a full disk, Ctrl-C: the old manifest stands; the new files go
        for name in _made(root) - before:  # this run's (it holds the lock)
            shutil.rmtree(os.path.join(root, fmt.INDEX_DIR, name), ignore_errors=True)
        raise
    kept = {os.path.basename(normal_path(splits.dir))}
    if manifest.splits is not None:
        kept.add(os.path.basename(normal_path(manifest.splits.dir)))
    for name in _made(root) - kept:  # older splits, and any a killed split left
        shutil.rmtree(os.path.join(root, fmt.INDEX_DIR, name), ignore_errors=True)
    return splits


def _made(root: str) -> set[str]:
    """The split directories under ``index/`` (``splits-*``, as :func:`save_splits` names
    them)."""
    try:
        entries = os.listdir(os.path.join(root, fmt.INDEX_DIR))
    except FileNotFoundError:
        return set()
    return {name for name in entries if re.fullmatch(_MADE + "[0-9a-f]{8}", name)}


def _by_group(root: str, manifest: Manifest, by_group: bool | None) -> bool:
    if by_group is None:
        return manifest.groups is not None
    if by_group and manifest.groups is None:
        raise OptionError(
            f"by_group=True, but {root} has no groups (they come from a labels file's group "
            "column at ingest): split by record (by_group=False, --no-by-group)"
        )
    return by_group
