"""Opening a dataset at a URL: instant (no shard read), the same index as the local copy,
records downloaded on first read; a URL that is no dataset says so."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from remote_support import NOT_A_DATASET, cache_root, shard_bytes

import datumio
from datumio.remote import RemoteError

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("name", ["out.lmdb", "out.h5"])
def test_s3_open_reads_no_shard_and_matches_local(s3, local, name, tmp_path: Path) -> None:
    want = local[name]
    ds = datumio.open(s3.url(name), cache_dir=str(tmp_path), storage_options=s3.options())
    root = cache_root(tmp_path, s3.url(name))
    assert Path(ds.path) == root
    assert shard_bytes(root) == {}, "opening downloaded a shard"
    assert len(ds) == len(want) and ds.num_shards == want.num_shards > 2
    assert ds.class_names == want.class_names
    assert np.array_equal(ds.counts, want.counts)
    assert np.array_equal(ds.labels, want.labels)

    ids = [0, int(want.shard_offsets[2]) + 1, len(want) - 1]  # shards 0, 2 and the last
    for i in ids:
        assert np.array_equal(ds.image(i), want.image(i)), f"record {i}"
        assert ds.read(i) == want.read(i)
    read = {Path(want.shard_path(want.locate(i)[0])).name for i in ids}
    assert sorted(shard_bytes(root)) == sorted(read), "not just the shards read came down"
    ds.close()


def test_http_open_reads_no_shard_and_matches_local(http, local, tmp_path: Path) -> None:
    want = local["out.lmdb"]
    ds = datumio.open(http.url("out.lmdb"), cache_dir=str(tmp_path))
    assert http.shard_gets("out.lmdb") == {}, "opening downloaded a shard"
    assert (len(ds), ds.class_names) == (len(want), want.class_names)
    i = int(want.shard_offsets[1])
    assert np.array_equal(ds.image(i), want.image(i))
    assert http.shard_gets("out.lmdb") == {"shard-00001.mdb": 1}
    ds.close()


def test_http_url_without_manifest_is_no_dataset(http, tmp_path: Path) -> None:
    url = http.url(NOT_A_DATASET)
    with pytest.raises(RemoteError) as info:
        datumio.open(url, cache_dir=str(tmp_path))
    message = str(info.value)
    assert f"{url}/manifest.json does not exist" in message
    assert "not a datumio dataset" in message


def test_s3_url_without_manifest_is_no_dataset(s3, tmp_path: Path) -> None:
    url = s3.url("absent.lmdb")
    with pytest.raises(RemoteError) as info:
        datumio.open(url, cache_dir=str(tmp_path), storage_options=s3.options())
    assert f"{url}/manifest.json does not exist" in str(info.value)
    assert "not a datumio dataset" in str(info.value)


def test_prefetch_in_the_opening_process_downloads(http, tmp_path: Path) -> None:
    ds = datumio.open(http.url("out.lmdb"), cache_dir=str(tmp_path))
    assert ds.store is not None
    ds.advise(range(int(ds.shard_offsets[1]), int(ds.shard_offsets[2])))  # shard 1's records
    deadline = time.monotonic() + 30  # a readiness wait (milliseconds on loopback), no bound
    while not ds.store.present(1) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ds.store.present(1), "advise() did not download the coming shard"
