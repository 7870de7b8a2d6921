"""The shard cache of a remote dataset: eviction to its byte limit, and a cache directory
full of garbage healing itself at open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from remote_support import cache_root, shard_bytes

import datumio
from datumio.remote.cache import ShardCache, _unlink_locked

pytestmark = pytest.mark.timeout(120)


def _read_every_shard(ds, want, root: Path, bound: int) -> None:
    """Read every record, shard after shard, keeping only the shard being read open (as a
    loader worker does); the cache stays within ``bound`` bytes."""
    for shard in range(ds.num_shards):
        ids = range(int(ds.shard_offsets[shard]), int(ds.shard_offsets[shard + 1]))
        for i in ids:
            assert np.array_equal(ds.image(i), want.image(i)), f"record {i}"
        ds.retain(ids)  # the shards before this one are closed: they may go
        held = shard_bytes(root)
        assert Path(ds.shard_path(shard)).name in held
        assert sum(held.values()) <= bound, f"after shard {shard}: {held}"


def test_eviction_keeps_the_cache_under_its_limit(http, local, tmp_path) -> None:
    want = local["out.lmdb"]
    sizes = [entry.file_bytes for entry in want.manifest.shards]
    limit = sum(sizes) // 3
    assert limit < sum(sizes) - max(sizes), "the limit must force evictions"
    url = http.url("out.lmdb")
    root = cache_root(tmp_path, url)
    ds = datumio.open(url, cache_dir=str(tmp_path), cache_limit=limit)
    _read_every_shard(ds, want, root, limit + max(sizes))
    assert Path(ds.shard_path(0)).name not in shard_bytes(root), "nothing was evicted"
    ds.close()  # drop the open shards: an evicted one must come back from the server

    again = datumio.open(url, cache_dir=str(tmp_path), cache_limit=limit)
    _read_every_shard(again, want, root, limit + max(sizes))
    again.close()
    gets = http.shard_gets("out.lmdb")
    assert gets["shard-00000.mdb"] == 2, gets  # evicted, then downloaded again
    assert sum(gets.values()) > ds.num_shards


def test_a_shard_in_use_is_never_evicted(http, local, tmp_path) -> None:
    want = local["out.lmdb"]
    sizes = [entry.file_bytes for entry in want.manifest.shards]
    url = http.url("out.lmdb")
    root = cache_root(tmp_path, url)
    holder = datumio.open(url, cache_dir=str(tmp_path), cache_limit=max(sizes))
    assert np.array_equal(holder.image(0), want.image(0))  # shard 0 open (pinned)
    other = datumio.open(url, cache_dir=str(tmp_path), cache_limit=max(sizes))
    last = len(want) - 1
    for i in range(int(want.shard_offsets[1]), len(want)):  # every other shard, one by one
        assert np.array_equal(other.image(i), want.image(i)), f"record {i}"
        other.retain([i])
    held = shard_bytes(root)
    assert Path(holder.shard_path(0)).name in held, "a shard in use was evicted"
    # Over the limit by the shards in use when the last one landed: 0 (holder), the one
    # ``other`` read before (closed only after), the last one.
    n = want.num_shards
    assert set(held) == {Path(want.shard_path(s)).name for s in (0, n - 2, n - 1)}, held
    assert np.array_equal(holder.image(1), want.image(1)), "the holder lost its shard"

    holder.close()  # shard 0 is free now: the next landing evicts it
    other.retain([])
    assert np.array_equal(
        other.image(int(want.shard_offsets[1])), want.image(int(want.shard_offsets[1]))
    )
    assert Path(holder.shard_path(0)).name not in shard_bytes(root)
    assert np.array_equal(other.image(last), want.image(last))
    other.close()
    assert http.shard_gets("out.lmdb")["shard-00000.mdb"] == 1


def test_an_evictor_that_opened_an_older_copy_leaves_the_new_one(tmp_path) -> None:
    """An evictor opens a shard, and before it takes the lock another process evicts that
    copy and a download lands a new one, which a reader pins: the evictor's lock is on the
    old copy, so it must not unlink the new one from under the reader."""
    cache = ShardCache(str(tmp_path), limit=0)
    path = tmp_path / "shards" / "shard-00000.mdb"
    path.parent.mkdir()
    path.write_bytes(b"old copy")
    stale = os.open(path, os.O_RDONLY)  # the evictor's open ...
    try:
        path.unlink()  # ... another process evicts that copy ...
        path.write_bytes(b"new copy")  # ... and a download lands a new one
        pinned = cache.pin("shards/shard-00000.mdb")
        assert pinned is not None
        try:
            assert not _unlink_locked(stale, str(path)), "the evictor took the new copy"
            assert path.read_bytes() == b"new copy"
        finally:
            os.close(pinned)
    finally:
        os.close(stale)
    assert cache.evict() == [str(path)], "an unheld copy is still evicted"
    assert not path.exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_cache_full_of_garbage_heals_at_open(http, local, data_root, tmp_path) -> None:
    want = local["out.lmdb"]
    url = http.url("out.lmdb")
    shards = cache_root(tmp_path, url) / "shards"
    shards.mkdir(parents=True)
    dead = shards / f"shard-00001.mdb.part-{_dead_pid()}-abcd1234"
    dead.write_bytes(b"\0" * 5000)
    live = shards / "shard-00003.mdb.part-1-abcd1234"  # pid 1 is alive: a download under way
    live.write_bytes(b"\0" * 100)
    whole = (data_root / "out.lmdb" / "shards" / "shard-00002.mdb").read_bytes()
    truncated = shards / "shard-00002.mdb"
    truncated.write_bytes(whole[: len(whole) // 3])

    ds = datumio.open(url, cache_dir=str(tmp_path))
    assert not dead.exists(), "a dead download's leftover survived the open"
    assert not truncated.exists(), "a shard of the wrong size survived the open"
    assert live.exists(), "the open removed a live process's download"
    for i in range(len(want)):
        assert np.array_equal(ds.image(i), want.image(i)), f"record {i}"
    ds.close()
    assert truncated.read_bytes() == whole
    assert http.shard_gets("out.lmdb")["shard-00002.mdb"] == 1
    assert sorted(p.name for p in shards.iterdir()) == sorted(
        [Path(want.shard_path(s)).name for s in range(want.num_shards)] + [live.name]
    )
