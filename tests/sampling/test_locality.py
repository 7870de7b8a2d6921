"""The locality order: the same draws and class mix per batch, fewer shards per batch."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from builders import Drawing, make_dataset

import datumio
from datumio.errors import OptionError
from datumio.inspect.sampling import sampling_report
from datumio.sampling import Sampler

BATCH = 16


def _mixed(n: int = 2000, shards: int = 40, classes: int = 5) -> SimpleNamespace:
    """Records of every class in every shard (an ingest of shuffled input)."""
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 10, classes) * 100  # long-tailed-ish
    labels = rng.permutation(np.repeat(np.arange(classes), counts))[:n]
    offsets = np.linspace(0, len(labels), shards + 1).astype(np.int64)
    return SimpleNamespace(labels=labels, shard_offsets=offsets, class_names=None)


def _shards_per_batch(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    shard = np.searchsorted(offsets, ids, side="right") - 1
    rows = np.sort(shard[: len(shard) // BATCH * BATCH].reshape(-1, BATCH), axis=1)
    return (np.diff(rows, axis=1) != 0).sum(axis=1) + 1


@pytest.mark.parametrize("mode", ["balanced", "natural", "power"])
def test_same_draws_and_class_mix_per_batch_fewer_shards(mode: str) -> None:
    data = _mixed()
    kw = {"power": 0.5} if mode == "power" else {}
    plain = Sampler(data, mode, seed=3, stratified=True, batch_size=BATCH, **kw)
    local = Sampler(data, mode, seed=3, locality=2, batch_size=BATCH, **kw)
    for epoch in (0, 1):
        a, b = plain.epoch_ids(epoch), local.epoch_ids(epoch)
        assert not np.array_equal(a, b)
        assert np.array_equal(np.sort(a), np.sort(b))  # the same records, as often
        # every position keeps its class: each batch's class mix is unchanged
        assert np.array_equal(data.labels[a], data.labels[b])
        spread_plain = _shards_per_batch(a, data.shard_offsets)
        spread_local = _shards_per_batch(b, data.shard_offsets)
        # windows of 2 shards; classes drift a window apart at most, batches straddle edges
        assert spread_local.mean() <= 5 and spread_local.mean() < spread_plain.mean() / 2.5
    assert not np.array_equal(local.epoch_ids(0), local.epoch_ids(1))  # windows move per epoch


def test_ranks_share_one_locality_plan() -> None:
    data = _mixed()
    kw = {"seed": 1, "locality": 3, "batch_size": BATCH}
    whole = Sampler(data, "balanced", **kw).epoch_ids(0)
    ranks = [Sampler(data, "balanced", rank=r, world_size=4, **kw) for r in range(4)]
    parts = [s.epoch_ids(0) for s in ranks]
    # the ranks split one epoch of draws, disjoint positions, the same multiset as one rank
    together = np.concatenate(parts)
    assert len(together) == len(whole) - len(whole) % (BATCH * 4)
    assert set(np.unique(together)) <= set(np.unique(whole))
    again = Sampler(data, "balanced", rank=2, world_size=4, **kw)
    assert np.array_equal(again.ids_at(np.arange(100, 164), 0), parts[2][100:164])  # pure
    assert all(len(set(a.tolist()) & set(b.tolist())) < len(a) for a, b in [parts[:2]])


def test_locality_options_are_checked() -> None:
    data = _mixed()
    with pytest.raises(OptionError, match="locality"):
        Sampler(data, "balanced", locality=-1)
    with pytest.raises(OptionError, match="batch_size"):
        Sampler(data, "balanced", locality=2)
    with pytest.raises(OptionError, match="Dataset"):
        Sampler(data.labels, "balanced", locality=2, batch_size=BATCH)  # no shard offsets
    state = Sampler(data, "balanced", locality=2, batch_size=BATCH).state_dict()
    with pytest.raises(OptionError):  # another order: no silent resume
        Sampler(data, "balanced", stratified=True, batch_size=BATCH).load_state_dict(state)


def test_the_sampling_report_shows_the_shards_a_batch_reads() -> None:
    data = _mixed()
    plain = sampling_report(data, "balanced", batch_size=BATCH, seed=2).shards_per_batch
    local = sampling_report(data, "balanced", batch_size=BATCH, seed=2, locality=1)
    assert plain is not None and local.shards_per_batch is not None
    assert local.shards_per_batch.mean <= 4 and plain.mean > 10


def test_a_loader_with_locality_reads_fewer_shards_per_batch(tmp_path: Path) -> None:
    """Records of both classes in every shard (a shuffled ingest): a batch reads a window."""
    drawing = Drawing({"a": 80, "b": 80}, size=(8, 8), channels=1, picture="solid")
    out = make_dataset(tmp_path, drawing, shuffle=True, seed=4, shard_records=10)
    ds = datumio.open(out)
    shards = zip(ds.shard_offsets[:-1], ds.shard_offsets[1:], strict=True)
    assert all(len(set(ds.labels[a:b].tolist())) == 2 for a, b in shards)
    spec = datumio.Transform(size=(8, 8), dtype="uint8")
    spreads = {}
    for locality in (0, 1):
        with datumio.Loader(
            str(out),
            BATCH,
            transform=spec,
            workers=1,
            locality=locality,
            extras=("ids",),
            copy=True,
        ) as loader:
            ids = np.concatenate([b[2] for b in loader])
            assert len(ids) == len(loader) * BATCH
        spreads[locality] = _shards_per_batch(ids, ds.shard_offsets).mean()
    assert spreads[1] <= 4 < spreads[0]
