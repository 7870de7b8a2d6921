"""Multi-label balancing: every record is drawn as its rarest label."""

from __future__ import annotations

import numpy as np
import pytest

from datumio.errors import OptionError
from datumio.sampling import Sampler
from datumio.sampling._multilabel import rarest_label


def _ragged(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(r) for r in rows])
    values = np.array([v for r in rows for v in r], dtype=np.int64)
    return offsets, values


def test_each_record_takes_its_rarest_label() -> None:
    # label 0: 4 records, label 1: 2 records, label 2: 1 record, label 3: 2 records
    rows = [[0], [0, 1], [0, 1, 2], [0, 3], [], [3]]
    got = rarest_label(*_ragged(rows), num_labels=4)
    # [0] -> 0; [0,1] -> 1 (2 < 4); [0,1,2] -> 2; [0,3] -> 3; [] -> 4 (none); [3] -> 3
    assert got.tolist() == [0, 1, 2, 3, 4, 3]


def test_ties_go_to_the_lower_id() -> None:
    got = rarest_label(*_ragged([[2, 1], [1], [2]]), num_labels=3)
    assert got.tolist() == [1, 1, 2]  # labels 1 and 2 both have 2 records


def test_balanced_sampling_over_rarest_labels() -> None:
    rng = np.random.default_rng(0)
    rows = [[0] for _ in range(90)] + [[0, 1] for _ in range(9)] + [[0, 1, 2]]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    groups = rarest_label(*_ragged(rows), num_labels=3)
    sampler = Sampler(np.zeros(len(rows), dtype=np.int64), "balanced", groups=groups, seed=1)
    ids = sampler.epoch_ids(0)
    drawn = groups[ids]
    # 100 draws over 3 groups: largest remainder gives 34/33/33 (ties to the lower id)
    assert np.bincount(drawn, minlength=3).tolist() == [34, 33, 33]
    holders_of_2 = [i for i, r in enumerate(rows) if 2 in r]
    assert np.isin(ids, holders_of_2).sum() == 33  # the one record with label 2, 33 times


def test_bad_input_is_refused() -> None:
    with pytest.raises(OptionError, match="offsets"):
        rarest_label([1, 2], [0, 0], 2)
    with pytest.raises(OptionError, match="ids"):
        rarest_label([0, 1], [5], 2)
    with pytest.raises(OptionError, match="decrease"):
        rarest_label([0, 2, 1, 2], [0, 1], 2)
