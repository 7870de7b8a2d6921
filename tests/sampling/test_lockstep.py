"""The lockstep locality order: every class reads the same window of shards at the same time."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from datumio.errors import OptionError
from datumio.sampling import Sampler

BATCH = 16


def _even(shards: int = 8, per_class: int = 10, classes: int = 4) -> SimpleNamespace:
    """Every shard holds ``per_class`` records of every class (a shuffled ingest, idealised)."""
    block = np.repeat(np.arange(classes), per_class)
    rng = np.random.default_rng(5)
    labels = np.concatenate([rng.permutation(block) for _ in range(shards)])
    offsets = np.arange(shards + 1, dtype=np.int64) * len(block)
    return SimpleNamespace(labels=labels, shard_offsets=offsets, class_names=None)


def _shard(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.searchsorted(offsets, ids, side="right") - 1


def _batches(values: np.ndarray) -> list[set[int]]:
    return [set(values[i : i + BATCH].tolist()) for i in range(0, len(values), BATCH)]


@pytest.mark.parametrize("mode", ["balanced", "natural"])
def test_every_batch_reads_the_current_window_only(mode: str) -> None:
    data = _even()
    sampler = Sampler(data, mode, seed=2, locality=1, lockstep=True, batch_size=BATCH)
    plain = Sampler(data, mode, seed=2, stratified=True, batch_size=BATCH)
    for epoch in (0, 1):
        ids = sampler.epoch_ids(epoch)
        # each position keeps its class: quotas and each batch's class mix are unchanged
        assert np.array_equal(data.labels[ids], data.labels[plain.epoch_ids(epoch)])
        shards = _shard(ids, data.shard_offsets)
        # one window (1 shard) per phase of 40 positions, 2.5 batches: a batch straddles
        # at most one phase boundary
        assert max(len(b) for b in _batches(shards)) <= 2
        # the windows follow each other: each shard's draws form one run in time
        runs = shards[np.r_[True, np.diff(shards) != 0]]
        assert sorted(runs.tolist()) == list(range(8)), runs
        # inside its phase a class cycles through its records there: none drawn twice
        # before all of them were drawn once
        for shard in range(8):
            for c in range(4):
                drawn = ids[(shards == shard) & (data.labels[ids] == c)]
                counts = np.bincount(drawn - data.shard_offsets[shard], minlength=40)
                mine = counts[
                    data.labels[data.shard_offsets[shard] : data.shard_offsets[shard + 1]] == c
                ]
                assert mine.max() - mine.min() <= 1, (shard, c, mine)
    assert not np.array_equal(sampler.epoch_ids(0), sampler.epoch_ids(1))


def test_classes_of_uneven_density_stay_in_step() -> None:
    # Every class in every shard, in numbers that differ from shard to shard: the plain
    # locality order lets dense classes fall behind (batches reading 3 shards), lockstep
    # keeps every batch in one window or two.
    rng = np.random.default_rng(1)
    blocks = [rng.permutation(np.repeat(np.arange(4), rng.integers(3, 18, 4))) for _ in range(8)]
    offsets = np.cumsum([0] + [len(b) for b in blocks])
    data = SimpleNamespace(labels=np.concatenate(blocks), shard_offsets=offsets, class_names=None)
    widest = {}
    for lockstep in (False, True):
        sampler = Sampler(data, "balanced", seed=2, locality=1, lockstep=lockstep, batch_size=BATCH)
        widest[lockstep] = max(
            len(b) for e in range(3) for b in _batches(_shard(sampler.epoch_ids(e), offsets))
        )
    assert widest == {False: 3, True: 2}


def test_a_class_missing_from_the_window_reads_the_next_window_that_has_it() -> None:
    data = _even()
    labels = data.labels.copy()
    labels[(labels == 3) & (np.arange(len(labels)) >= 40)] = 2  # class 3 only in shard 0
    data.labels = labels
    sampler = Sampler(data, "balanced", seed=0, locality=1, lockstep=True, batch_size=BATCH)
    ids = sampler.epoch_ids(0)
    rare = ids[labels[ids] == 3]
    assert len(rare) == len(ids) // 4  # its balanced quota, all from shard 0
    assert set(_shard(rare, data.shard_offsets).tolist()) == {0}
    # the other classes still move window by window
    other = _shard(ids[labels[ids] != 3], data.shard_offsets)
    assert len(other[np.r_[True, np.diff(other) != 0]]) == 8


def test_lockstep_is_a_pure_function_of_seed_and_epoch() -> None:
    data = _even()
    kw = {"locality": 2, "lockstep": True, "batch_size": BATCH}
    a = Sampler(data, "balanced", seed=4, **kw)
    b = Sampler(data, "balanced", seed=4, **kw)
    assert np.array_equal(a.epoch_ids(3), b.epoch_ids(3))
    assert np.array_equal(a.ids_at(np.arange(20, 52), 3), a.epoch_ids(3)[20:52])
    assert not np.array_equal(a.epoch_ids(3), Sampler(data, "balanced", seed=5, **kw).epoch_ids(3))


def test_lockstep_options_are_checked() -> None:
    data = _even()
    with pytest.raises(OptionError, match="locality"):
        Sampler(data, "balanced", lockstep=True, batch_size=BATCH)
    with pytest.raises(OptionError, match="lockstep"):
        Sampler(data, "balanced", locality=1, lockstep=1, batch_size=BATCH)
    state = Sampler(data, "balanced", locality=1, lockstep=True, batch_size=BATCH).state_dict()
    with pytest.raises(OptionError):  # another order: no silent resume
        Sampler(data, "balanced", locality=1, batch_size=BATCH).load_state_dict(state)
