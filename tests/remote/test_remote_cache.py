"""The shard cache of a remote dataset: eviction to its byte limit, and a cache directory
full of garbage healing itself at open."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from remote_support import cache_root, shard_bytes

import datumio
from datumio.remote import cache as remote_cache

pytestmark = pytest.mark.timeout(120)

#: FRESH_S for the eviction test: short, so that it need not sleep 2 s per shard.
_FRESH_S = 0.2


def _read_every_shard(ds, want, root: Path, bound: int) -> None:
    """Read every record, shard after shard, pausing past FRESH_S between shards (a shard
    read within FRESH_S is never evicted); the cache stays within ``bound`` bytes."""
    for shard in range(ds.num_shards):
        for i in range(int(ds.shard_offsets[shard]), int(ds.shard_offsets[shard + 1])):
            assert np.array_equal(ds.image(i), want.image(i)), f"record {i}"
        held = shard_bytes(root)
        assert Path(ds.shard_path(shard)).name in held
        assert sum(held.values()) <= bound, f"after shard {shard}: {held}"
        time.sleep(_FRESH_S * 1.5)  # what was read is no longer fresh: it may go


def test_eviction_keeps_the_cache_under_its_limit(http, local, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(remote_cache, "FRESH_S", _FRESH_S)
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
