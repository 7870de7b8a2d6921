"""The loader over a remote dataset: the same epoch, byte for byte, as over the local
copy; loaders sharing one cache download every shard once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from remote_support import assert_same_epoch, cache_root, epoch, shard_bytes

import datumio

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def local_epochs(data_root: Path) -> dict[str, list]:
    """The reference epoch of each local dataset (workers started and stopped here)."""
    return {name: epoch(str(data_root / name)) for name in ("out.lmdb", "out.h5")}


@pytest.mark.parametrize("name", ["out.lmdb", "out.h5"])
@pytest.mark.parametrize("server", ["s3", "http"])
def test_loader_epoch_equals_local(request, server, name, local_epochs, local, tmp_path) -> None:
    if server == "s3":
        s3 = request.getfixturevalue("s3")
        url, options = s3.url(name), s3.options()
    else:
        url, options = request.getfixturevalue("http").url(name), {}
    ds = datumio.open(url, cache_dir=str(tmp_path), storage_options=options)
    got = epoch(ds)
    assert_same_epoch(got, local_epochs[name])

    want = local[name]
    shards = {want.locate(int(i))[0] for batch in got for i in batch[2]}
    assert len(shards) >= 3, "the epoch should read several shards"
    landed = shard_bytes(cache_root(tmp_path, url))
    assert {Path(want.shard_path(s)).name for s in shards} <= set(landed)
    whole = {Path(entry.file).name: entry.file_bytes for entry in want.manifest.shards}
    assert all(whole[file] == size for file, size in landed.items()), landed


def test_loaders_sharing_a_cache_download_each_shard_once(http, local, tmp_path) -> None:
    http.delay_s = 0.15  # every shard GET is slow: the loaders' downloads overlap
    url = http.url("out.lmdb")
    first = datumio.open(url, cache_dir=str(tmp_path))
    second = datumio.open(url, cache_dir=str(tmp_path))
    assert first.path == second.path
    with (
        datumio.Loader(first, 4, workers=2, seed=5, epoch_size=60, extras=("ids",)) as a,
        datumio.Loader(second, 4, workers=2, seed=5, epoch_size=60, extras=("ids",)) as b,
    ):
        for batch_a, batch_b in zip(a, b, strict=True):  # four workers reading at once
            assert batch_a[2].tobytes() == batch_b[2].tobytes()
            assert batch_a[0].tobytes() == batch_b[0].tobytes()

    names = [Path(local["out.lmdb"].shard_path(s)).name for s in range(first.num_shards)]
    assert http.shard_gets("out.lmdb") == dict.fromkeys(names, 1)
    assert sorted(shard_bytes(cache_root(tmp_path, url))) == names


def _lockstep_epoch(dataset) -> list[tuple[np.ndarray, ...]]:
    with datumio.Loader(
        dataset, 4, workers=2, seed=3, epoch_size=60, locality=1, lockstep=True, extras=("ids",)
    ) as loader:
        return [tuple(np.array(a) for a in batch) for batch in loader]


def test_a_cache_smaller_than_the_dataset_with_the_lockstep_order(http, local, tmp_path) -> None:
    want = local["out.lmdb"]
    sizes = [entry.file_bytes for entry in want.manifest.shards]
    limit = 2 * max(sizes)  # two of five shards
    url = http.url("out.lmdb")
    root = cache_root(tmp_path, url)
    reference = _lockstep_epoch(want)
    for run in range(2):
        ds = datumio.open(url, cache_dir=str(tmp_path), cache_limit=limit)
        got = _lockstep_epoch(ds)
        for k, (g, w) in enumerate(zip(got, reference, strict=True)):
            assert all(a.tobytes() == b.tobytes() for a, b in zip(g, w, strict=True)), (run, k)
        # workers closed the shards their next batches did not read, so the cache could
        # evict them: it ends within its limit plus the shard that landed last
        held = shard_bytes(root)
        assert sum(held.values()) <= limit + max(sizes), (run, held)
    gets = http.shard_gets("out.lmdb")
    assert sum(gets.values()) > want.num_shards, gets  # evicted shards came back in run 2
