"""A split of a dataset at a URL: opening it fetches that split's files with the index (no
shard), the view reads the records the local one does, in the workers too, and the copy
``datumio verify`` reads has every split's files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, make_dataset
from remote_support import LoopbackHTTP, cache_root
from split_support import round_robin, write_splits

import datumio
from datumio.remote import local_copy
from datumio.shards.splits import check_splits

pytestmark = pytest.mark.timeout(120)

DRAWING = Drawing({"ant": 7, "bee": 5}, size=(16, 16), picture="noise", seed=21)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackHTTP, Path]]:
    """A 12-record dataset in 3 shards, split train/val/test, served over HTTP; (server,
    the local dataset)."""
    root = tmp_path_factory.mktemp("served-splits")
    path = make_dataset(root, DRAWING, shard_records=4)
    write_splits(path, round_robin(12, skip=5))
    server = LoopbackHTTP(root)
    try:
        yield server, path
    finally:
        server.close()


def _split_gets(server: LoopbackHTTP, path: Path, name: str) -> dict[str, int]:
    splits = datumio.open(path).manifest.splits
    assert splits is not None
    folder = f"/{path.name}/{splits.dir}/{name}/"
    return {
        file: server.gets(folder + file)
        for file in ("ids.npy", "labels.npy", "class_offsets.npy", "class_ids.npy")
    }


def test_a_split_at_a_url_fetches_its_files_and_reads_its_records(
    served: tuple[LoopbackHTTP, Path], tmp_path: Path
) -> None:
    server, path = served
    url = server.url(f"{path.name}")
    want = datumio.open(path, split="val")
    ds = datumio.open(url, split="val", cache_dir=str(tmp_path))
    assert server.shard_gets(path.name) == {}, "opening a split downloaded a shard"
    assert set(_split_gets(server, path, "val").values()) == {1}
    assert set(_split_gets(server, path, "test").values()) == {0}, "another split came down"
    np.testing.assert_array_equal(ds.ids, want.ids)
    np.testing.assert_array_equal(ds.class_ids, want.class_ids)
    for i in range(len(want)):
        np.testing.assert_array_equal(ds.image(i), want.image(i))
        assert ds.source(i) == want.source(i)

    other = ds.with_split("test")  # the other split's files come down when it is opened
    assert set(_split_gets(server, path, "test").values()) == {1}
    np.testing.assert_array_equal(other.ids, datumio.open(path, split="test").ids)
    with datumio.Loader(ds, 2, workers=1, sampling="natural", extras=("ids",)) as loader:
        for _, labels, ids in loader:
            np.testing.assert_array_equal(labels, want.labels[ids])
    ds.close()
    other.close()


def test_the_copy_verify_reads_has_every_split(
    served: tuple[LoopbackHTTP, Path], tmp_path: Path
) -> None:
    server, path = served
    url = server.url(path.name)
    copy = local_copy(url, cache_dir=str(tmp_path))
    assert Path(copy) == cache_root(tmp_path, url)
    assert check_splits(datumio.open(copy)) == []
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(
            datumio.open(copy, split=name).ids, datumio.open(path, split=name).ids
        )
