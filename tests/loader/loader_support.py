"""Helpers of the loader tests: corrupting a record (datasets come from tests/builders.py)."""

from __future__ import annotations

from pathlib import Path

import datumio


def corrupt_record(dataset_dir: str, record: int) -> None:
    """Flip bytes inside ``record``'s payload in its LMDB shard (its CRC then fails)."""
    ds = datumio.open(dataset_dir)
    payload = ds.read(record)
    shard = ds.shard_path(ds.locate(record)[0])
    ds.close()
    data = bytearray(Path(shard).read_bytes())
    at = data.find(payload)
    assert at >= 0 and data.find(payload, at + 1) < 0
    middle = at + len(payload) // 2
    for j in range(middle, middle + 32):
        data[j] ^= 0xFF
    Path(shard).write_bytes(bytes(data))
