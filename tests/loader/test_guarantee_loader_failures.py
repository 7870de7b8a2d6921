"""Two ``docs/loader.md`` failure rules, where the other tests cannot tell them apart.

* A record that fails to read is replaced by the next record *of the same class*,
  cyclically in the class's id list: the last record of a class is replaced by the first
  one, never by the next id (which belongs to another class).
* A batch that has killed ``max_restarts + 1`` workers raises ``LoaderError`` saying so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from loader_hooks import die
from loader_support import corrupt_record

import datumio
from datumio.augment import Transform
from datumio.errors import LoaderError
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(60)

SPEC = Transform(size=(16, 16))


def test_the_last_record_of_a_class_is_replaced_by_the_first(
    small_lmdb: Path, tmp_path: Path
) -> None:
    path = str(tmp_path / "copy.lmdb")
    shutil.copytree(small_lmdb, path)
    ds = datumio.open(path)
    members = ds.class_index(1)
    bad = int(members[-1])
    assert bad + 1 < len(ds) and ds.labels[bad + 1] != 1  # the next id is another class's
    corrupt_record(path, bad)
    with Loader(path, 3, transform=SPEC, workers=1, sampling="natural", extras=("ids",)) as ld:
        planned = ld.sampler.epoch_ids(0)
        batches = [(labels.copy(), ids.copy()) for _, labels, ids in ld]
    labels = np.concatenate([b[0] for b in batches])
    used = np.concatenate([b[1] for b in batches])
    at = int(np.flatnonzero(planned == bad)[0])
    assert used[at] == members[0]
    assert labels.tolist() == ds.labels[planned].tolist()  # every class keeps its draws


def test_a_batch_that_killed_max_restarts_plus_one_workers_raises_saying_so(
    small_lmdb: Path,
) -> None:
    spec = Transform(size=(16, 16), user_fn=die)
    with (
        Loader(small_lmdb, 3, transform=spec, workers=1, max_restarts=1) as loader,
        pytest.raises(LoaderError, match=r"batch 0 killed 2 workers"),
    ):
        next(iter(loader))
