"""Elastic resume: an epoch begun on N ranks, saved by every rank, finished on M ranks."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from datumio.errors import OptionError
from datumio.sampling import Sampler

#: 24 records of 3 long-tailed classes: balanced mode repeats the small class.
LABELS = np.repeat(np.arange(3), [12, 8, 4])
BATCH = 2


def _ranks(world: int, mode: str, **kw: object) -> list[Sampler]:
    return [Sampler(LABELS, mode, seed=3, rank=r, world_size=world, **kw) for r in range(world)]  # type: ignore[arg-type]


def _served_then_merged(mode: str, world: int, batches: list[int]) -> tuple[list[int], dict]:
    """Rank r serves batches[r] batches of epoch 0; every rank's state, merged (via JSON)."""
    served: list[int] = []
    samplers = _ranks(world, mode)
    for sampler, count in zip(samplers, batches, strict=True):
        it = sampler.batches(BATCH, drop_last=False)
        for _ in range(count):
            served += next(it).tolist()
    states = [json.loads(json.dumps(s.state_dict())) for s in samplers]
    return served, json.loads(json.dumps(Sampler.merge_states(states)))


@pytest.mark.parametrize("mode", ["natural", "balanced"])
@pytest.mark.parametrize(
    ("old", "new", "batches"),
    [(4, 2, [2] * 4), (2, 3, [3, 3]), (1, 4, [4]), (2, 2, [3, 3]), (3, 3, [1, 2, 3])],
)
def test_every_record_of_the_epoch_is_served_once_on_the_new_world(
    mode: str, old: int, new: int, batches: list[int]
) -> None:
    served, merged = _served_then_merged(mode, old, batches)
    lengths = set()
    for sampler in _ranks(new, mode):
        sampler.load_state_dict(merged)
        lengths.add(len(sampler))
        served += [i for ids in sampler.batches(BATCH, drop_last=False) for i in ids.tolist()]
        assert (sampler.epoch, len(sampler)) == (1, 24 // new)  # then whole epochs again
    (whole,) = _ranks(1, mode)
    assert Counter(served) == Counter(whole.epoch_ids().tolist())
    assert len(lengths) == 1  # ranks stay in step


def test_the_uneven_rest_is_dropped_without_pad_and_wrapped_with_it() -> None:
    served, merged = _served_then_merged("natural", 2, [1, 1])  # 20 left over 3 ranks
    rest = [Sampler(LABELS, "natural", seed=3, rank=r, world_size=3) for r in range(3)]
    for sampler in rest:
        sampler.load_state_dict(merged)
    assert [len(s) for s in rest] == [6, 6, 6]
    left = [i for s in rest for i in s.epoch_ids().tolist()]
    assert len(set(left) | set(served)) == 22 and not set(left) & set(served)
    padded = _ranks(2, "natural", pad=True)
    for sampler in padded:
        next(sampler.batches(BATCH))
    merged = Sampler.merge_states([s.state_dict() for s in padded])
    wrapped = _ranks(3, "natural", pad=True)
    for sampler in wrapped:
        sampler.load_state_dict(merged)
    assert [len(s) for s in wrapped] == [7, 7, 7]
    assert len({i for s in wrapped for i in s.epoch_ids().tolist()}) == 20


def test_a_state_saved_in_the_rest_resumes_on_the_same_world_only() -> None:
    _, merged = _served_then_merged("balanced", 4, [1] * 4)
    first, again = _ranks(2, "balanced"), _ranks(2, "balanced")
    first[1].load_state_dict(merged)
    expected = list(first[1].batches(BATCH))
    first[0].load_state_dict(merged)
    next(first[0].batches(BATCH))
    state = json.loads(json.dumps(first[0].state_dict()))
    again[1].load_state_dict(merged)
    it = again[1].batches(BATCH)
    next(it)
    again[0].load_state_dict(state)  # rank 0's own state, same world: the rest goes on
    rank0 = Sampler(LABELS, "balanced", seed=3, rank=0, world_size=2)
    rank0.load_state_dict(merged)
    assert [b.tolist() for b in again[0].batches(BATCH)] == [
        b.tolist() for b in list(rank0.batches(BATCH))[1:]
    ]
    assert [b.tolist() for b in it] == [b.tolist() for b in expected[1:]]
    with pytest.raises(OptionError, match="resumes only on the same world size"):
        Sampler.merge_states([first[0].state_dict(), again[1].state_dict()])


def test_one_rank_alone_or_mixed_states_are_refused() -> None:
    samplers = _ranks(2, "balanced")
    next(samplers[0].batches(BATCH))
    with pytest.raises(OptionError, match="merge_states"):
        _ranks(4, "balanced")[0].load_state_dict(samplers[0].state_dict())
    with pytest.raises(OptionError, match=r"ranks \[0\] of world_size 2"):
        Sampler.merge_states([samplers[0].state_dict()])
    with pytest.raises(OptionError, match=r"ranks \[0, 0\]"):
        Sampler.merge_states([samplers[0].state_dict()] * 2)
    other = Sampler(LABELS, "balanced", seed=4, rank=1, world_size=2)
    with pytest.raises(OptionError, match="disagree on seed"):
        Sampler.merge_states([samplers[0].state_dict(), other.state_dict()])


@pytest.mark.parametrize("kw", [{"stratified": True, "batch_size": 2}])
def test_a_stratified_plan_is_refused_on_another_world(kw: dict) -> None:
    samplers = [Sampler(LABELS, seed=3, rank=r, world_size=2, **kw) for r in range(2)]
    for sampler in samplers:
        next(sampler.batches())
    merged = Sampler.merge_states([s.state_dict() for s in samplers])
    same = Sampler(LABELS, seed=3, rank=1, world_size=2, **kw)
    same.load_state_dict(merged)  # same world, ranks in step: a plain resume
    assert same.position == 2
    with pytest.raises(OptionError, match="cannot resume a stratified sampler on world_size 4"):
        Sampler(LABELS, seed=3, rank=0, world_size=4, **kw).load_state_dict(merged)
