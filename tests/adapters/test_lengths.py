"""The adapters' lengths after a mid-epoch resume: the rest of the epoch, then whole ones."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import datumio

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported
pytest.importorskip("torch")
from torch.utils.data import DataLoader

from datumio.adapters.torch import TorchIterable, TorchSampler

BATCH = 2


def _loader(path: Path) -> datumio.Loader:
    return datumio.Loader(path, BATCH, workers=1, seed=7, extras=("ids",))


def test_torch_iterable_resumed_has_the_rest_of_the_epoch(tiny_lmdb: Path) -> None:
    with _loader(tiny_lmdb) as loader:
        it = iter(DataLoader(TorchIterable(loader), batch_size=None))
        next(it)
        state = json.loads(json.dumps(TorchIterable(loader).state_dict()))
        whole = len(loader)
    with _loader(tiny_lmdb) as loader:
        wrapped = TorchIterable(loader)
        wrapped.load_state_dict(state)
        batches = DataLoader(wrapped, batch_size=None)
        assert len(batches) == len(wrapped) == whole - 1
        assert len(list(batches)) == whole - 1
        assert len(batches) == len(list(batches)) == whole


def test_torch_sampler_resumed_has_the_rest_of_the_epoch() -> None:
    labels = np.repeat(np.arange(2), [6, 4])
    first = TorchSampler(labels, seed=1)
    taken = next(first.sampler.batches(3)).tolist()  # a place 3 indices into the epoch
    state = json.loads(json.dumps(first.state_dict()))
    resumed = TorchSampler(labels, seed=1)
    resumed.load_state_dict(state)
    assert len(resumed) == 7
    rest = list(resumed)
    assert len(rest) == 7 and sorted(taken + rest) == sorted(list(TorchSampler(labels, seed=1)))
    assert len(resumed) == len(list(resumed)) == 10
    resumed.load_state_dict(state)
    resumed.set_epoch(4)
    assert len(resumed) == 10


def test_keras_dataset_resumed_has_the_rest_of_the_epoch(tiny_lmdb: Path) -> None:
    from datumio.adapters.keras import KerasDataset

    with _loader(tiny_lmdb) as loader:
        it = iter(loader)
        next(it)
        state = json.loads(json.dumps(loader.state_dict()))
        whole = len(loader)
    with _loader(tiny_lmdb) as loader:
        ds = KerasDataset(loader)
        ds.load_state_dict(state)
        assert len(ds) == whole - 1
        assert len([ds[i] for i in range(len(ds))]) == whole - 1
        ds.on_epoch_end()
        assert len(ds) == whole
