"""Stored splits for tests: what making splits does to a dataset, in one call.

:func:`write_splits` writes the split files into the dataset with
:func:`datumio.shards.splits.save_splits` and then its manifest with the new section, as
making splits again does; :func:`round_robin` is an assignment that puts records of every
class and shard in every split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datumio.shards import format as fmt
from datumio.shards.index import load_index_array
from datumio.shards.manifest import read_manifest, write_manifest
from datumio.shards.manifest_sections import Splits
from datumio.shards.splits import save_splits

NAMES = ("train", "val", "test")


def round_robin(n: int, splits: int = 3, skip: int = 7) -> np.ndarray:
    """Record ``i`` in split ``i % splits``, but every ``skip``-th record in none (-1)."""
    split_of = np.arange(n) % splits
    split_of[::skip] = -1
    return split_of


def write_splits(
    path: Path | str,
    split_of: np.ndarray,
    names: Sequence[str] = NAMES,
    how: Mapping[str, Any] | None = None,
) -> Splits:
    """Make splits of the dataset at ``path``: ``split_of[i]`` is record ``i``'s split (an
    index into ``names``; -1: none). The files, then the manifest naming them; the section."""
    root = str(path)
    manifest = read_manifest(root)
    n = manifest.num_records
    labels = np.asarray(load_index_array(root, manifest, fmt.LABELS, n))
    groups = None
    if manifest.groups is not None:
        groups = np.asarray(load_index_array(root, manifest, fmt.GROUPS, n))
    splits = save_splits(
        root, split_of, names, labels, manifest.num_classes, groups, how or {"seed": 0}
    )
    write_manifest(root, dataclasses.replace(manifest, splits=splits))
    return splits
