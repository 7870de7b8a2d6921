"""Elastic resume of the Loader: an epoch begun on N ranks, merged, finished on M ranks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datumio.augment import Transform
from datumio.errors import OptionError
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(60)

#: Random crop and flip: a record's pixels depend on the seed of its draw.
SPEC = Transform(size=(16, 16), resize=24, flip=0.5, layout="HWC", dtype="uint8")
#: Balanced draws of ``tiny_lmdb`` (8 records, 5 red, 3 blue): records repeat in an epoch.
EPOCH = 24
BATCH = 2


def _ranks(path: Path, world: int, **kw: Any) -> list[Loader]:
    options: dict[str, Any] = {"workers": 1, "seed": 5, "extras": ("ids",), "drop_last": False}
    return [
        Loader(path, BATCH, rank=r, world_size=world, **{**options, **kw}) for r in range(world)
    ]


def _take(loader: Loader, count: int) -> list[tuple[int, np.ndarray]]:
    """``count`` batches (all that are left for -1) as (record id, pixels) pairs."""
    out: list[tuple[int, np.ndarray]] = []
    if count == 0:
        return out
    for k, (images, _, ids) in enumerate(loader):
        out += [(int(i), x.copy()) for i, x in zip(ids, images, strict=True)]
        del images, ids
        if k + 1 == count:
            break
    return out


def _served_then_merged(
    loaders: list[Loader], batches: list[int]
) -> tuple[list[tuple[int, np.ndarray]], dict[str, Any]]:
    """Rank r serves batches[r] batches; every rank's state merged, through JSON both ways."""
    served = [pair for loader, n in zip(loaders, batches, strict=True) for pair in _take(loader, n)]
    states = [json.loads(json.dumps(loader.state_dict())) for loader in loaders]
    return served, json.loads(json.dumps(Loader.merge_states(states)))


@pytest.mark.parametrize(
    ("old", "new", "batches"),
    [(4, 2, [1, 2, 0, 3]), (2, 3, [1, 2]), (1, 4, [2]), (3, 3, [1, 2, 3]), (1, 1, [3])],
)
def test_every_draw_of_the_epoch_is_served_once_over_both_worlds(
    tiny_lmdb: Path, old: int, new: int, batches: list[int]
) -> None:
    olds = _ranks(tiny_lmdb, old, epoch_size=EPOCH)
    # On the same world size the old Loaders go on, drawing the rest of an epoch they began.
    news = olds if new == old else _ranks(tiny_lmdb, new, epoch_size=EPOCH)
    try:
        served, merged = _served_then_merged(olds, batches)
        rest = EPOCH - len(served)
        assert rest % new == 0  # nothing of the rest is cut, so the epoch is whole
        assert (merged["epoch"], merged["position"]) == (0, 0)
        lengths = set()
        for loader in news:
            loader.load_state_dict(merged)
            assert len(loader) == loader.batches_left == -(-(rest // new) // BATCH)
            lengths.add(len(loader))
            served += _take(loader, -1)
            assert (loader.epoch, loader.position) == (1, 0)
            assert len(loader) == -(-(EPOCH // new) // BATCH)  # whole epochs on the new world
        assert len(lengths) == 1  # the new ranks stay in step
    finally:
        for loader in {*olds, *news}:
            loader.close()
    (whole,) = _ranks(tiny_lmdb, 1, epoch_size=EPOCH)
    expected = Counter(whole.sampler.epoch_ids(0).tolist())
    assert Counter(i for i, _ in served) == expected


def test_a_record_served_after_the_resume_has_the_pixels_of_the_uninterrupted_run(
    shapes_lmdb: Path,
) -> None:
    # shapes_lmdb: 46 records drawn once each (natural), so a record id names one draw.
    def ranks(world: int) -> list[Loader]:
        return _ranks(shapes_lmdb, world, sampling="natural", transform=SPEC)

    olds, news = ranks(2), ranks(3)
    try:
        before, merged = _served_then_merged(olds, [1, 3])  # ranks at different positions
        for loader in news:
            loader.load_state_dict(merged)
        after = [pair for loader in news for pair in _take(loader, -1)]
        for loader in olds:  # back to the start of epoch 0: the uninterrupted run
            state = loader.state_dict()
            state["position"] = state["sampler"]["position"] = 0
            loader.load_state_dict(state)
        whole = dict(pair for loader in olds for pair in _take(loader, -1))
    finally:
        for loader in olds + news:
            loader.close()
    assert len(after) == (46 - 4 * BATCH) // 3 * 3 and not {i for i, _ in before} & {
        i for i, _ in after
    }
    compared = 0
    for record, pixels in before + after:
        if record in whole:  # the last draw of 46 is beyond the two old ranks' 23 each
            np.testing.assert_array_equal(pixels, whole[record], err_msg=f"record {record}")
            compared += 1
    assert compared >= 44


def test_the_seeds_of_the_rest_are_its_plan_positions_and_padded_draws_get_their_own(
    tiny_lmdb: Path,
) -> None:
    # No iteration: the sampler's arithmetic only, no worker starts.
    olds = _ranks(tiny_lmdb, 2, pad=True)
    states = [loader.state_dict() for loader in olds]
    states[1] = {**states[1], "position": 1, "sampler": {**states[1]["sampler"], "position": 1}}
    merged = Loader.merge_states(states)  # rank 1 served plan position 1: 7 of 8 left
    (new,) = [r for r in _ranks(tiny_lmdb, 3, pad=True) if r.sampler.rank == 2]
    new.load_state_dict(merged)
    assert len(new.sampler) == 3 and len(new) == 2  # 7 over 3 ranks, padded to 9
    # Rank 2 takes entries 2, 5 and 8 of the rest [0, 2, 3, 4, 5, 6, 7]; 8 wraps to 0.
    # Rank 2 takes entries 2, 5 and 8 of the rest [0, 2, 3, 4, 5, 6, 7]; entry 8 wraps to 1.
    assert new.sampler.plan_positions(np.arange(3), 0).tolist() == [3, 6, 8 + 1]
    # Plan position g of the old world was position g // 2 of rank g % 2.
    expected = [olds[g % 2].sampler.ids_at([g // 2], 0)[0] for g in (3, 6, 2)]
    assert new.sampler.ids_at([0, 1, 2], 0).tolist() == expected


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"epoch": 1}, "disagree on epoch"),
        ({"seed": 6}, "disagree on seed"),
        ({"batch_size": 3}, "disagree on batch_size"),
    ],
)
def test_states_of_other_epochs_seeds_or_batch_sizes_are_refused(
    tiny_lmdb: Path, change: dict[str, int], said: str
) -> None:
    loaders = _ranks(tiny_lmdb, 2)
    kw = {k: v for k, v in change.items() if k != "epoch"}
    other = Loader(tiny_lmdb, kw.pop("batch_size", BATCH), rank=1, world_size=2, **kw)
    other.set_epoch(change.get("epoch", 0))
    with pytest.raises(OptionError, match=said):
        Loader.merge_states([loaders[0].state_dict(), other.state_dict()])


def test_what_is_not_every_rank_of_loader_states_is_refused(tiny_lmdb: Path) -> None:
    loaders = _ranks(tiny_lmdb, 2)
    states = [loader.state_dict() for loader in loaders]
    with pytest.raises(OptionError, match="an empty list"):
        Loader.merge_states([])
    with pytest.raises(OptionError, match=r"entry 1 .*Sampler's state"):
        Loader.merge_states([states[0], loaders[1].sampler.state_dict()])
    with pytest.raises(OptionError, match=r"entry 0 .*not a datumio state"):
        Loader.merge_states([{"epoch": 0}, states[1]])
    with pytest.raises(OptionError, match=r"takes a non-empty list .* got dict"):
        Loader.merge_states(states[0])  # type: ignore[arg-type]
    with pytest.raises(OptionError, match=r"ranks \[0, 0\]"):
        Loader.merge_states([states[0], states[0]])
    merged = Loader.merge_states(states)
    with pytest.raises(OptionError, match="batch_size"):
        Loader(tiny_lmdb, 4, rank=0, world_size=3, seed=5).load_state_dict(merged)
