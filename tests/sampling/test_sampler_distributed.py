"""Ranks: disjoint positions of one epoch plan, equal batch counts, rank discovery."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datumio.errors import OptionError
from datumio.sampling import Sampler
from datumio.sampling._distributed import resolve_rank

LABELS = np.random.default_rng(0).choice(6, size=1003, p=[0.5, 0.2, 0.15, 0.1, 0.04, 0.01])


@settings(max_examples=25, deadline=None)
@given(world=st.integers(1, 7), epoch_size=st.integers(7, 3000), seed=st.integers(0, 99))
def test_ranks_are_disjoint_and_cover_the_epoch(world: int, epoch_size: int, seed: int) -> None:
    single = Sampler(LABELS, epoch_size=epoch_size, seed=seed, rank=0, world_size=1)
    plan = single.epoch_ids(3)
    per_rank = [
        Sampler(LABELS, epoch_size=epoch_size, seed=seed, rank=r, world_size=world).epoch_ids(3)
        for r in range(world)
    ]
    sizes = {ids.size for ids in per_rank}
    assert sizes == {epoch_size // world}
    # rank r owns plan positions r, r + W, r + 2W, ...: disjoint, and with the tail dropped
    # together they are exactly the first (E // W) * W positions of the single-rank plan
    interleaved = np.stack(per_rank, axis=1).reshape(-1)
    assert np.array_equal(interleaved, plan[: interleaved.size])


@pytest.mark.parametrize("world", [2, 3, 8])
def test_pad_wraps_to_the_epoch_start(world: int) -> None:
    epoch_size = 1003
    per_rank = [
        Sampler(LABELS, epoch_size=epoch_size, rank=r, world_size=world, pad=True).epoch_ids(0)
        for r in range(world)
    ]
    rank_size = -(-epoch_size // world)
    assert all(ids.size == rank_size for ids in per_rank)
    plan = Sampler(LABELS, epoch_size=epoch_size, rank=0, world_size=1).epoch_ids(0)
    interleaved = np.stack(per_rank, axis=1).reshape(-1)
    wrapped = np.concatenate([plan, plan])[: interleaved.size]
    assert np.array_equal(interleaved, wrapped)


@pytest.mark.parametrize("drop_last", [True, False])
def test_every_rank_gets_the_same_number_of_batches(drop_last: bool) -> None:
    counts = {
        len(list(Sampler(LABELS, rank=r, world_size=3).batches(64, drop_last=drop_last)))
        for r in range(3)
    }
    assert len(counts) == 1
    assert counts == {Sampler(LABELS, rank=0, world_size=3).num_batches(64, drop_last)}


def test_stratified_ranks_are_disjoint_and_each_batch_is_stratified() -> None:
    batch, world = 20, 3
    samplers = [
        Sampler(LABELS, power=0.5, stratified=True, batch_size=batch, rank=r, world_size=world)
        for r in range(world)
    ]
    all_ids = np.concatenate([s.epoch_ids(1) for s in samplers])
    assert all_ids.size == samplers[0].epoch_size
    plan = samplers[0].plan()
    assert np.array_equal(np.bincount(LABELS[all_ids], minlength=6), plan.draws)
    share = plan.draws * batch / samplers[0].epoch_size
    for sampler in samplers:
        for ids in sampler.batches():
            got = np.bincount(LABELS[ids], minlength=6)
            assert np.all(got >= np.floor(share)) and np.all(got <= np.ceil(share))


def test_env_vars_give_rank_and_world_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    sampler = Sampler(LABELS)
    assert (sampler.rank, sampler.world_size) == (2, 4)
    assert len(sampler) == LABELS.size // 4
    assert Sampler(LABELS, rank=1).rank == 1  # an argument overrides only its own value
    assert Sampler(LABELS, rank=0, world_size=1).world_size == 1


def test_no_env_means_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    if "torch" in sys.modules:
        monkeypatch.delitem(sys.modules, "torch")
    assert resolve_rank(None, None) == (0, 1)


def test_bad_env_vars_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(OptionError, match="RANK"):
        resolve_rank(None, None)
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(OptionError, match="rank"):
        resolve_rank(None, None)


def test_initialised_torch_distributed_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    dist = types.SimpleNamespace(
        is_available=lambda: True,
        is_initialized=lambda: True,
        get_rank=lambda: 1,
        get_world_size=lambda: 2,
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(distributed=dist))
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_rank(None, None) == (1, 2)


def test_datumio_does_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys, numpy as np; from datumio.sampling import Sampler; "
        "Sampler(np.arange(10) % 2).epoch_ids(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
