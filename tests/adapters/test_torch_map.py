"""datumio.adapters.torch.MapDataset and collate: a map-style Dataset whose samples are the
Loader's (same Transform path, same fields), keyed by (seed, epoch, index) whatever the
DataLoader workers, over real shards read in real DataLoader worker processes."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, build_dataset, make_dataset
from PIL import Image

import datumio
from datumio.errors import OptionError

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from datumio.adapters.torch import MapDataset, TorchSampler, collate  # noqa: E402

pytestmark = pytest.mark.timeout(120)

#: A random crop and flip: the draws show in the pixels.
RANDOM = datumio.Transform(size=(16, 16), crop_scale=(0.2, 1.0), flip=0.5)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 PNGs of two classes, each side drawn from 12..39 pixels: sizes differ."""
    drawing = Drawing({"a": 6, "b": 4}, size=range(12, 40), picture="gradient", seed=4)
    return make_dataset(tmp_path_factory.mktemp("mixed"), drawing)


def _epoch(ds: MapDataset, sampler: TorchSampler, workers: int) -> list[torch.Tensor]:
    sampler.set_epoch(0)
    loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers)
    return [t for batch in loader for t in batch]


def test_default_collate_works_on_mixed_sizes_with_the_loader_default(mixed):
    ds = MapDataset(mixed)
    assert len(ds) == 10
    assert len({datumio.open(mixed).shape(i)[:2] for i in range(10)}) > 1
    images, labels = next(iter(DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 224, 224, 3) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 0]
    # the Loader's own default for this dataset: the same pixels for the same record
    with datumio.Loader(mixed, 5, workers=1, extras=("ids",), sampling="natural") as loader:
        for batch_images, _, ids in loader:
            for image, record in zip(batch_images, ids, strict=True):
                assert np.array_equal(ds[int(record)][0].numpy(), image)


def test_a_transform_gives_the_loaders_size_layout_and_normalisation(mixed):
    spec = datumio.Transform(size=(20, 24))  # a plain resize: no draws, float32 CHW normalised
    ds = MapDataset(mixed, spec)
    image, _ = ds[3]
    assert image.shape == (3, 20, 24) and image.dtype == torch.float32
    assert ds.transform.mean is not None  # resolved against the dataset's statistics
    with datumio.Loader(mixed, 5, workers=1, transform=spec, extras=("ids",)) as loader:
        for images, labels, ids in loader:
            for k, record in enumerate(ids):
                got, got_label = ds[int(record)]
                assert np.array_equal(got.numpy(), images[k]) and got_label == labels[k]


def test_any_num_workers_gives_the_same_tensors_and_epochs_differ(mixed):
    ds = MapDataset(mixed, RANDOM, seed=5)
    sampler = TorchSampler(ds, seed=1)
    ds[0]  # shards opened here: forked workers must open their own
    alone = _epoch(ds, sampler, 0)
    two = _epoch(ds, sampler, 2)
    assert len(alone) == len(two) == 2 * 3  # 10 records in batches of 4: 3 batches
    for a, b in zip(alone, two, strict=True):
        assert torch.equal(a, b)
    ds.set_epoch(1)
    other = _epoch(ds, sampler, 2)
    assert not torch.equal(torch.cat(alone[::2]), torch.cat(other[::2]))  # other draws
    assert all(torch.equal(a, b) for a, b in zip(alone[1::2], other[1::2], strict=True))
    ds.set_epoch(0)
    sampler.set_epoch(0)
    order = list(sampler)
    again = pickle.loads(pickle.dumps(ds))  # pickles by path, reopens its shards
    for k, image in enumerate(torch.cat(two[::2])):  # same (seed, epoch, index), same tensor
        assert torch.equal(again[order[k]][0], image)
    assert again.epoch == 0 and MapDataset(mixed, RANDOM, seed=6)[7][0].ne(again[7][0]).any()


def test_options_are_checked(mixed):
    with pytest.raises(OptionError, match="seed=-1"):
        MapDataset(mixed, seed=-1)
    with pytest.raises(OptionError, match="fields='boxes'"):
        MapDataset(mixed, fields="boxes")
    with pytest.raises(OptionError, match="no field 'boxes'"):
        MapDataset(mixed, fields=("boxes",))
    with pytest.raises(OptionError, match="batch_zmuv"):
        MapDataset(mixed, datumio.Transform(size=(8, 8), batch_zmuv=True))
    with pytest.raises(OptionError, match="epoch=-2"):
        MapDataset(mixed).set_epoch(-2)


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 black 40x32 images, record k with k % 4 white boxes (class k % 3) and an int n=k."""
    src = tmp_path_factory.mktemp("boxes")
    rows = []
    for k in range(6):
        img = np.zeros((32, 40, 3), np.uint8)
        found = [[2 + 9 * j, 4, 8 + 9 * j, 12 + j, k % 3] for j in range(k % 4)]
        for x0, y0, x1, y1, _ in found:
            img[y0:y1, x0:x1] = 255
        Image.fromarray(img).save(src / f"s{k}.png")
        rows.append({"path": f"s{k}.png", "label": "ab"[k % 2], "boxes": found, "n": k})
    labels = src / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return build_dataset(src, src.parent / "boxes.lmdb", labels_file=str(labels))


def test_fields_are_the_loaders_and_collate_pads_them(boxes):
    spec = datumio.Transform(size=(16, 20), flip=1.0, normalize=False)  # every sample mirrored
    ds = MapDataset(boxes, spec, fields=("boxes", "n"))
    sample = ds[5]
    assert isinstance(sample, dict)
    assert list(sample) == ["image", "label", "boxes", "boxes_classes", "boxes_count", "n"]
    assert sample["boxes"].shape == (1, 4) and sample["boxes_classes"].tolist() == [2]
    assert sample["boxes_count"].shape == sample["n"].shape == ()
    assert sample["boxes_count"].item() == 1 and sample["n"].item() == 5
    opts = {"fields": ("boxes", "n"), "extras": ("ids",), "sampling": "natural"}
    with datumio.Loader(boxes, 6, workers=1, transform=spec, **opts) as loader:
        batch = dict(zip(loader.batch_names, next(iter(loader)), strict=True))
    for k, record in enumerate(batch["ids"]):
        one = ds[int(record)]
        assert isinstance(one, dict)
        n = int(batch["boxes_count"][k])
        assert one["boxes_count"].item() == n == int(record) % 4
        assert np.array_equal(one["boxes"].numpy(), batch["boxes"][k, :n])  # mirrored
        assert np.array_equal(one["boxes_classes"].numpy(), batch["boxes_classes"][k, :n])
        assert np.array_equal(one["image"].numpy(), batch["images"][k])
    out = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate, num_workers=1)))
    assert out["image"].shape == (4, 3, 16, 20) and out["label"].tolist() == [0, 1, 0, 1]
    assert out["boxes_count"].tolist() == [0, 1, 2, 3] and out["n"].tolist() == [0, 1, 2, 3]
    assert out["boxes"].shape == (4, 3, 4) and out["boxes_classes"].shape == (4, 3)
    assert out["boxes"][0].eq(0).all() and out["boxes_classes"][1].tolist() == [1, -1, -1]
    assert torch.equal(out["boxes"][2, :2], ds[2]["boxes"])  # type: ignore[call-overload]


def test_a_split_has_the_splits_records(dataset_factory):
    path = dataset_factory(Drawing({"a": 8, "b": 6}, size=(12, 12)))
    datumio.split(path, val=0.25, seed=2)
    val = datumio.open(path, split="val")
    ds = MapDataset(path, split="val")
    assert len(ds) == len(val) < 14
    whole = datumio.open(path)
    for i in range(len(ds)):
        image, label = ds[i]
        assert label == int(val.labels[i])
        assert np.array_equal(image.numpy(), whole[int(val.ids[i])][0])
    drawn = set(TorchSampler(ds, "natural"))
    assert drawn == set(range(len(ds)))
