"""`datumio verify` finds bit rot, truncated and missing shards, and changes nothing on disk."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, make_dataset
from console import console_argv

import datumio
from datumio.shards.verify import verify

#: 12 noise PNGs of 2 classes, 16x20.
NOISE = Drawing({"a": 6, "b": 6}, size=(16, 20), names="{k}", seed=1)


def _make(tmp_path: Path, suffix: str, encode: str = "png") -> Path:
    return make_dataset(tmp_path, NOISE, suffix=suffix, encode=encode, shard_records=5)


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_sound_dataset(tmp_path: Path, suffix: str) -> None:
    out = _make(tmp_path, suffix)
    report = verify(out, decode=True)
    assert report.ok, report.problems
    assert report.records_checked == 12 and report.shards_checked == 3


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_flipped_bit_is_found_and_named(tmp_path: Path, suffix: str) -> None:
    out = _make(tmp_path, suffix, encode="raw")
    with datumio.open(out) as ds:
        record = 6
        payload = ds.read(record)
        shard, _ = ds.locate(record)
        shard_file = Path(ds.shard_path(shard))
    data = bytearray(shard_file.read_bytes())
    at = data.find(payload)
    assert at >= 0
    data[at + 100] ^= 0x01
    shard_file.write_bytes(bytes(data))
    report = verify(out)
    assert not report.ok
    [problem] = report.problems
    assert problem.record == record and problem.shard == f"shards/{shard_file.name}"
    assert "CRC32" in problem.what
    result = subprocess.run(
        console_argv(["datumio", "verify", str(out)]), capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"record {record}" in result.stdout and shard_file.name in result.stdout


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_truncated_and_deleted_shards_are_reported(tmp_path: Path, suffix: str) -> None:
    out = _make(tmp_path, suffix)
    shards = sorted((out / "shards").iterdir())
    with open(shards[0], "r+b") as fh:
        fh.truncate(shards[0].stat().st_size // 2)
    shards[2].unlink()
    report = verify(out)
    names = {p.shard for p in report.problems}
    assert f"shards/{shards[0].name}" in names and f"shards/{shards[2].name}" in names
    assert any("missing" in p.what for p in report.problems if p.shard.endswith(shards[2].name))
    assert report.shards_checked == 1  # the intact middle shard was still checked
    result = subprocess.run(
        console_argv(["datumio", "verify", str(out), "--json"]), capture_output=True, text=True
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False


def test_read_only_copy_is_left_identical(tmp_path: Path) -> None:
    out = _make(tmp_path, ".lmdb")
    before = _snapshot(out)
    modes = {}
    for path in [out, *out.rglob("*")]:
        modes[path] = path.stat().st_mode
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        if os.geteuid() != 0:  # root ignores permissions; the snapshot still proves no writes
            with pytest.raises(PermissionError):
                (out / "probe").write_text("x")
        result = subprocess.run(
            console_argv(["datumio", "verify", str(out), "--decode"]), capture_output=True
        )
        assert result.returncode == 0, result.stdout
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert _snapshot(out) == before


def test_not_a_dataset(tmp_path: Path) -> None:
    result = subprocess.run(
        console_argv(["datumio", "verify", str(tmp_path)]), capture_output=True, text=True
    )
    assert result.returncode == 1 and "manifest.json" in result.stdout


def _undecodable_record(out: Path, record: int) -> None:
    """Scramble ``record``'s PNG bytes (same length) in its HDF5 shard and store their new
    CRC32 (in the shard and the manifest): sound bytes, but no longer an image."""
    import h5py

    from datumio.shards.base import records_crc32

    with datumio.open(out) as ds:
        shard, local = ds.locate(record)
        path = ds.shard_path(shard)
    with h5py.File(path, "r+") as f:
        start, end = (int(v) for v in f["payload_offsets"][local : local + 2])
        old = f["payload"][start:end].tobytes()
        new = old[:8] + bytes(b ^ 0x5A for b in old[8:])  # the PNG signature, then noise
        f["payload"][start:end] = np.frombuffer(new, np.uint8)
        crcs = f["crc32"][:]
        crcs[local] = zlib.crc32(new)
        f["crc32"][:] = crcs
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"][shard]["records_crc32"] = records_crc32(crcs)
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_decode_finds_a_record_whose_bytes_are_sound_but_no_image(tmp_path: Path) -> None:
    out = _make(tmp_path, ".h5")
    _undecodable_record(out, 6)
    assert verify(out).ok  # the CRC32s agree: only decoding can tell
    report = verify(out, decode=True)
    [problem] = report.problems
    assert problem.record == 6 and "does not decode" in problem.what
    quick = subprocess.run(
        console_argv(["datumio", "verify", str(out)]), capture_output=True, text=True
    )
    assert quick.returncode == 0, quick.stdout + quick.stderr
    decoded = subprocess.run(
        console_argv(["datumio", "verify", str(out), "--decode"]), capture_output=True, text=True
    )
    assert decoded.returncode == 1, decoded.stdout + decoded.stderr
    assert "record 6" in decoded.stdout and "does not decode" in decoded.stdout
