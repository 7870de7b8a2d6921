"""The sampler on a real dataset from ingest: its stored class index gives the same plan."""

from __future__ import annotations

import numpy as np
import pytest
from builders import Drawing, build_dataset

import datumio


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> datumio.Dataset:
    root = tmp_path_factory.mktemp("sampler")
    counts = {"class0": 40, "class1": 12, "class2": 3, "class3": 0}  # class3: an empty class
    drawing = Drawing(counts, size=(8, 8), picture="solid", names="{k}")
    src = drawing.draw(root / "src")
    labels = drawing.write_labels(root / "labels.csv", groups=2)
    options = {"labels_file": str(labels), "class_names": tuple(counts)}
    return datumio.open(build_dataset(src, root / "d.lmdb", **options))


@pytest.mark.filterwarnings("ignore:1 class\\(es\\) have no records")
@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "natural"}, {"mode": "balanced"}, {"power": 0.5}, {"weights": {0: 1, 2: 3}}],
)
def test_dataset_and_labels_array_agree(dataset: datumio.Dataset, kwargs: dict) -> None:
    from_dataset = datumio.Sampler(dataset, seed=7, **kwargs)
    from_labels = datumio.Sampler(np.asarray(dataset.labels), seed=7, **kwargs)
    for epoch in (0, 3):
        np.testing.assert_array_equal(from_dataset.epoch_ids(epoch), from_labels.epoch_ids(epoch))


def test_balanced_over_a_real_dataset(dataset: datumio.Dataset) -> None:
    with pytest.warns(UserWarning, match=r"have no records and are skipped: \[3\]"):
        sampler = datumio.Sampler(dataset, "balanced", epoch_size=300, seed=1)
    ids = sampler.epoch_ids(0)
    counts = np.bincount(dataset.labels[ids], minlength=4)
    assert counts.tolist() == [100, 100, 100, 0]  # the empty class is skipped
    rare = dataset.class_index(2)
    per_record = np.bincount(ids, minlength=len(dataset))[rare]
    assert per_record.min() >= 33 and per_record.max() <= 34  # floor/ceil of 100/3
    plan = sampler.plan().to_dict()
    assert plan["draws"] == [100, 100, 100, 0]


def test_groups_from_the_labels_file(dataset: datumio.Dataset) -> None:
    assert dataset.groups is not None
    sampler = datumio.Sampler(dataset, "balanced", groups=dataset.groups, epoch_size=100)
    counts = np.bincount(dataset.groups[sampler.epoch_ids(0)], minlength=2)
    assert counts.tolist() == [50, 50]
