"""LMDB shards grow their map as needed instead of failing with MapFullError."""

from __future__ import annotations

import zlib
from pathlib import Path

import lmdb
import numpy as np
import pytest

from datumio.errors import FormatError
from datumio.shards import lmdb_backend
from datumio.shards.lmdb_backend import LmdbShardReader, LmdbShardWriter


def test_map_grows_past_its_initial_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lmdb_backend, "_INITIAL_MAP_BYTES", 256 << 10)
    path = str(tmp_path / "shard-00000.mdb")
    writer = LmdbShardWriter(path, {"shard": 0}, num_classes=2)
    rng = np.random.default_rng(0)
    payloads = [rng.bytes(200_000) for _ in range(40)]  # 8 MB >> 256 KiB initial map
    for i, payload in enumerate(payloads):
        writer.add(payload, i % 2, zlib.crc32(payload), (1, 1, 3))
    summary = writer.close()
    assert summary.num_records == 40 and summary.file_bytes > 8_000_000
    assert not Path(path + "-lock").exists()
    reader = LmdbShardReader(path)
    assert [reader.get(i) for i in range(40)] == payloads
    np.testing.assert_array_equal(reader.meta("labels"), np.arange(40) % 2)
    reader.close()
    env = lmdb.open(path, subdir=False, readonly=True, lock=False, max_dbs=2)
    assert env.stat()["entries"] == 2  # the two named databases
    env.close()


def test_truncated_shard_is_an_error_not_a_sigbus(tmp_path: Path) -> None:
    path = str(tmp_path / "shard-00000.mdb")
    writer = LmdbShardWriter(path, {"shard": 0}, num_classes=1)
    for i in range(50):
        payload = bytes([i]) * 50_000
        writer.add(payload, 0, zlib.crc32(payload), (1, 1, 3))
    size = writer.close().file_bytes
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(FormatError, match=r"shard-00000\.mdb is truncated"):
        LmdbShardReader(path)
