"""Determinism, resume and epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datumio.errors import OptionError
from datumio.sampling import Sampler

LABELS = np.random.default_rng(1).choice(5, size=997, p=[0.6, 0.2, 0.1, 0.07, 0.03])
ROOT = Path(__file__).resolve().parents[2]


def make(**kw: object) -> Sampler:
    return Sampler(LABELS, seed=11, rank=0, world_size=1, **kw)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(
    stop_after=st.integers(0, 20),
    batch=st.integers(1, 90),
    drop_last=st.booleans(),
    stratified=st.booleans(),
)
def test_resume_from_any_batch_equals_the_uninterrupted_run(
    stop_after: int, batch: int, drop_last: bool, stratified: bool
) -> None:
    kw = {"stratified": True, "batch_size": batch} if stratified else {}
    full = make(**kw)
    full.set_epoch(2)
    expected = list(full.batches(batch, drop_last=drop_last))
    first = make(**kw)
    first.set_epoch(2)
    it = first.batches(batch, drop_last=drop_last)
    head = [next(it) for _ in range(min(stop_after, len(expected)))]
    state = json.loads(json.dumps(first.state_dict()))  # survives a JSON checkpoint
    second = make(**kw)
    second.load_state_dict(state)
    second.set_epoch(2)  # a training loop calling set_epoch again must not lose the position
    tail = list(second.batches(batch, drop_last=drop_last))
    got = head + tail
    assert len(got) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def test_finishing_an_epoch_moves_to_the_next() -> None:
    sampler = make()
    assert list(sampler.batches(100)) and (sampler.epoch, sampler.position) == (1, 0)
    sampler.set_epoch(5)
    assert (sampler.epoch, sampler.position) == (5, 0)
    it = sampler.batches(100)
    next(it)
    assert sampler.position == 100


def test_same_seed_same_plan_and_different_epochs_differ() -> None:
    a, b = make(), make()
    assert np.array_equal(a.epoch_ids(4), b.epoch_ids(4))
    assert np.array_equal(a.epoch_ids(4), a.epoch_ids(4))
    assert not np.array_equal(a.epoch_ids(4), a.epoch_ids(5))
    other = Sampler(LABELS, seed=12, rank=0, world_size=1)
    assert not np.array_equal(a.epoch_ids(4), other.epoch_ids(4))


def test_ids_at_is_random_access() -> None:
    sampler = make()
    whole = sampler.epoch_ids(3)
    positions = np.array([996 - 1, 0, 500, 17, 17])
    assert np.array_equal(sampler.ids_at(positions, 3), whole[positions])
    with pytest.raises(OptionError, match="positions"):
        sampler.ids_at([len(sampler)])


def test_same_plan_in_another_process() -> None:
    code = (
        "import numpy as np, sys; from datumio.sampling import Sampler; "
        "labels = np.random.default_rng(1).choice(5, size=997, p=[0.6, 0.2, 0.1, 0.07, 0.03]); "
        "s = Sampler(labels, seed=11, rank=0, world_size=1); "
        "sys.stdout.write(','.join(map(str, s.epoch_ids(7).tolist())))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="123")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    theirs = np.array([int(x) for x in out.stdout.split(",")])
    assert np.array_equal(theirs, make().epoch_ids(7))


def test_load_state_dict_refuses_a_different_setup() -> None:
    state = make().state_dict()
    with pytest.raises(OptionError, match="world_size"):
        Sampler(LABELS, seed=11, rank=0, world_size=2).load_state_dict(state)
    with pytest.raises(OptionError, match="seed"):
        Sampler(LABELS, seed=3, rank=0, world_size=1).load_state_dict(state)
    with pytest.raises(OptionError, match="options"):
        make(power=0.5).load_state_dict(state)
    with pytest.raises(OptionError, match="format"):
        make().load_state_dict({"format": "other"})


def test_state_from_another_rank_is_accepted() -> None:
    rank0 = Sampler(LABELS, seed=11, rank=0, world_size=2)
    it = rank0.batches(10)
    next(it)
    rank1 = Sampler(LABELS, seed=11, rank=1, world_size=2)
    rank1.load_state_dict(rank0.state_dict())
    assert rank1.position == 10 and rank1.rank == 1


def test_bad_epochs_raise() -> None:
    with pytest.raises(OptionError, match="epoch"):
        make().set_epoch(-1)
    with pytest.raises(OptionError, match="epoch"):
        make().ids_at([0], epoch=-2)
