"""A Loader over a stored split: its worker processes read the split's records only, the
pixels they write are those of the split view, and a saved state resumes on its split only."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from split_support import round_robin, write_splits

import datumio
from datumio.augment import Transform, apply, sample_rng
from datumio.errors import OptionError
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(60)

SPEC = Transform(size=(24, 24), resize=32, flip=0.5)


@pytest.fixture(scope="module")
def split_small(small_lmdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``small_lmdb`` (21 records, 3 classes) split train/val/test round robin."""
    out = tmp_path_factory.mktemp("split-small") / "data.lmdb"
    shutil.copytree(small_lmdb, out)
    write_splits(out, round_robin(21, skip=5))
    return out


def test_workers_read_the_split_and_only_its_records(split_small: Path) -> None:
    val = datumio.open(split_small, split="val")
    members = {val.source(i) for i in range(len(val))}
    with Loader(
        split_small, 3, transform=SPEC, split="val", workers=2, extras=("ids",), seed=5
    ) as loader:
        assert loader.dataset.split == "val" and len(loader.sampler) == len(val)
        batches = [(x.copy(), y.copy(), i.copy()) for x, y, i in loader]
    spec = loader.transform
    assert batches
    for b, (x, y, ids) in enumerate(batches):
        assert {val.source(int(i)) for i in ids} <= members
        np.testing.assert_array_equal(y, val.labels[ids])
        for k, position in enumerate(ids.tolist()):
            out = np.empty(x.shape[1:], np.float32)
            payload, shape = val.read(position), val.shape(position)
            apply(spec, payload, sample_rng(5, 0, 3 * b + k), out, shape=shape)
            np.testing.assert_array_equal(x[k], out)  # the worker decoded the split's record


def test_a_split_view_or_a_whole_dataset_given_to_a_loader(split_small: Path) -> None:
    whole, test = datumio.open(split_small), datumio.open(split_small, split="test")
    with Loader(test, 2, workers=1, sampling="natural", extras=("ids",)) as loader:
        assert loader.dataset is test
        ids = np.concatenate([i.copy() for _, _, i in loader])
    assert len(set(ids.tolist())) == len(ids) == len(test) // 2 * 2  # each record once
    assert set(ids.tolist()) <= set(range(len(test)))
    with Loader(whole, 2, workers=1, split="test", sampling="natural") as chosen:
        assert chosen.dataset.split == "test" and len(chosen.dataset) == len(test)
    with pytest.raises(OptionError, match="the Dataset given is split 'test'"):
        Loader(test, 2, workers=1, split="val")
    with pytest.raises(OptionError, match="its splits: 'train', 'val', 'test'"):
        Loader(split_small, 2, workers=1, split="dev")


def test_a_state_resumes_on_its_own_split_only(split_small: Path, tmp_path: Path) -> None:
    with Loader(split_small, 2, split="train", workers=1, seed=1) as loader:
        it = iter(loader)
        next(it)
        state = loader.state_dict()
        expected = [y.copy() for _, y in it]
    assert state["split"] == "train" and state["split_dir"].startswith("index/splits-")
    with Loader(split_small, 2, split="train", workers=1, seed=1) as again:
        again.load_state_dict(state)
        resumed = [y.copy() for _, y in again]
    assert len(resumed) == len(expected) > 0
    assert all(np.array_equal(a, b) for a, b in zip(resumed, expected, strict=True))
    for split, saved in (("val", "split 'val'"), (None, "the whole dataset")):
        with (
            Loader(split_small, 2, split=split, workers=1, seed=1) as loader,
            pytest.raises(OptionError) as info,
        ):
            loader.load_state_dict(state)
        assert str(info.value) == (
            f"cannot resume: the state was saved on split 'train' but this loader reads "
            f"{saved}; build the Loader with split='train'"
        )
    with Loader(split_small, 2, workers=1, seed=1) as whole:
        whole_state = whole.state_dict()
    assert "split" not in whole_state
    with (
        Loader(split_small, 2, split="train", workers=1, seed=1) as loader,
        pytest.raises(OptionError, match="saved on the whole dataset but this loader reads"),
    ):
        loader.load_state_dict(whole_state)

    # The same name after the splits were made again: other records, refused.
    copy = tmp_path / "resplit.lmdb"
    shutil.copytree(split_small, copy)
    write_splits(copy, round_robin(21, skip=4))
    with (
        Loader(copy, 2, split="train", workers=1, seed=1) as loader,
        pytest.raises(OptionError, match="the dataset's splits were made again since"),
    ):
        loader.load_state_dict(state)
