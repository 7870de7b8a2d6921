"""datumio.adapters.torch: zero-copy tensors that keep their slot, worker refusal, Sampler."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import datumio
from datumio.errors import OptionError

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from datumio.adapters.torch import TorchIterable, TorchSampler  # noqa: E402

SPEC = datumio.Transform(size=(16, 16), normalize=False)


def _loader(path: str | Path, **kw) -> datumio.Loader:
    opts = {"workers": 1, "transform": SPEC, "extras": ("ids",), "seed": 3, **kw}
    return datumio.Loader(path, 4, **opts)


def test_tensors_view_the_slot_without_copy(shapes_lmdb):
    with _loader(shapes_lmdb, prefetch=1, slots=3) as loader:
        for images, labels, _ in DataLoader(TorchIterable(loader), batch_size=None):
            assert isinstance(images, torch.Tensor) and images.dtype == torch.float32
            assert images.shape == (4, 3, 16, 16) and labels.dtype == torch.int64
            # the tensor's memory is the slot the loader handed out, not a copy
            assert images.data_ptr() in {s.address for s in loader._runtime.ring.segments}
            break


def test_held_tensors_are_not_overwritten(shapes_lmdb):
    """Hold the tensors of the first two batches through a whole epoch: they never change.

    slots=4: one in flight, the loop's current batch, and the two held ones.
    """
    with _loader(shapes_lmdb, prefetch=1, slots=4) as loader:
        held, snapshots = [], []
        batches = 0
        for batch in TorchIterable(loader):
            batches += 1
            if len(held) < 2:
                held.append(batch)
                snapshots.append([t.clone() for t in batch])
        assert batches == len(loader) > 4  # many more batches than free slots went by
        for batch, snap in zip(held, snapshots, strict=True):
            for t, s in zip(batch, snap, strict=True):
                assert torch.equal(t, s)
        # and they are the records the ids say
        images, _, ids = held[1]
        with _loader(shapes_lmdb, copy=True) as again:
            first = list(again)[:2]
        assert np.array_equal(first[1][2], ids.numpy())
        assert np.array_equal(first[1][0], images.numpy())


def test_same_batches_as_the_loader(shapes_lmdb):
    with _loader(shapes_lmdb, copy=True) as loader:
        expected = list(loader)
    with _loader(shapes_lmdb) as loader:
        got = [tuple(t.clone() for t in b) for b in TorchIterable(loader)]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        for t, a in zip(g, e, strict=True):
            assert np.array_equal(t.numpy(), a)


def test_dataloader_num_workers_is_refused(shapes_lmdb):
    with _loader(shapes_lmdb) as loader:
        dl = DataLoader(
            TorchIterable(loader), batch_size=None, num_workers=1, multiprocessing_context="fork"
        )
        with pytest.raises(Exception, match="num_workers") as info:
            next(iter(dl))
        assert "OptionError" in repr(info.value) or isinstance(info.value, OptionError)


def test_pin_memory_without_accelerator_warns_and_copies_nothing(shapes_lmdb):
    with _loader(shapes_lmdb) as loader:
        ds = TorchIterable(loader, pin_memory=True, device="cpu")
        if torch.cuda.is_available():
            images = next(iter(ds))[0]
            assert images.is_pinned()
        else:
            with pytest.warns(UserWarning, match="pin_memory"):
                images = next(iter(ds))[0]
        assert images.device.type == "cpu"


def test_len_and_set_epoch(shapes_lmdb):
    with _loader(shapes_lmdb) as loader:
        ds = TorchIterable(loader)
        assert len(ds) == len(loader)
        ds.set_epoch(5)
        assert loader.epoch == 5


def test_wraps_only_a_loader():
    with pytest.raises(OptionError, match="Loader"):
        TorchIterable([1, 2, 3])


# -- TorchSampler ---------------------------------------------------------------------------


def test_sampler_balanced_with_a_dataloader():
    labels = np.repeat(np.arange(4), [40, 20, 10, 2])
    sampler = TorchSampler(labels, "balanced", seed=1)
    assert len(sampler) == len(labels)
    data = torch.arange(len(labels))
    drawn = torch.cat(list(DataLoader(data, batch_size=8, sampler=sampler)))
    counts = np.bincount(labels[drawn.numpy()], minlength=4)
    assert counts.tolist() == [18, 18, 18, 18]


def test_sampler_epochs_and_determinism():
    labels = np.repeat(np.arange(3), [30, 10, 5])
    a, b = TorchSampler(labels, seed=7), TorchSampler(labels, seed=7)
    first = list(a)
    assert first == list(b) and all(isinstance(i, int) for i in first)
    assert a.epoch == 1  # iterating moves to the next epoch
    second = list(a)
    assert second != first
    b.set_epoch(1)
    assert list(b) == second


def test_sampler_distributed_ranks_are_disjoint():
    labels = np.repeat(np.arange(3), [30, 10, 5])
    ranks = [list(TorchSampler(labels, "natural", seed=2, rank=r, world_size=3)) for r in range(3)]
    assert [len(r) for r in ranks] == [15, 15, 15]
    assert sorted(i for r in ranks for i in r) == list(range(45))


def test_sampler_targets_dataset_and_pickle():
    class FolderLike(torch.utils.data.Dataset):
        targets = (0, 0, 0, 1)

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return i

    sampler = TorchSampler(FolderLike(), weights={0: 1.0, 1: 3.0}, seed=0)
    clone = pickle.loads(pickle.dumps(sampler))
    assert list(clone) == list(sampler)
    assert isinstance(clone, TorchSampler)


def test_sampler_mode_second_or_by_name_and_balanced_gives_way_to_weights():
    labels = np.repeat(np.arange(3), [30, 10, 5])
    natural = list(TorchSampler(labels, "natural", seed=4))
    assert list(TorchSampler(labels, mode="natural", seed=4)) == natural
    assert natural != list(TorchSampler(labels, seed=4))  # the default is balanced
    assert TorchSampler(labels, seed=4).sampler.options.mode == "balanced"
    for second in ("natural", "balanced"):  # "balanced" second is given, not the default
        with pytest.raises(TypeError, match="mode twice"):
            TorchSampler(labels, second, mode="power", power=0.5)  # type: ignore[arg-type]
    weights = {0: 1.0, 2: 3.0}
    expected = datumio.Sampler(labels, weights=weights, seed=4)
    for given in (
        TorchSampler(labels, "balanced", weights=weights, seed=4),
        TorchSampler(labels, mode="balanced", weights=weights, seed=4),
    ):
        assert given.sampler.options.mode == "weights"
        assert list(given) == [int(i) for i in expected.epoch_ids(0)]


def test_sampler_takes_every_sampler_keyword_and_refuses_others():
    labels = np.repeat(np.arange(4), [40, 20, 10, 2])
    sampler = TorchSampler(labels, stratified=True, batch_size=8, epoch_size=64, seed=1)
    drawn = np.asarray(list(sampler))
    assert len(drawn) == 64
    for batch in drawn.reshape(8, 8):  # stratified: every batch holds each class twice
        assert np.bincount(labels[batch], minlength=4).tolist() == [2, 2, 2, 2]
    with pytest.raises(TypeError, match="seed"):
        TorchSampler(labels, sed=1)


def test_the_adapters_are_plain_classes_of_this_module(shapes_lmdb):
    assert issubclass(TorchIterable, torch.utils.data.IterableDataset)
    assert issubclass(TorchSampler, torch.utils.data.Sampler)
    assert (TorchIterable.__module__, TorchIterable.__qualname__) == (
        "datumio.adapters.torch",
        "TorchIterable",
    )
    with _loader(shapes_lmdb) as loader, pytest.raises(OptionError, match="ahead=0"):
        TorchIterable(loader, ahead=0)
