"""A dataset is complete or absent: temporaries, the atomic swap, stale runs.

Killing and signalling whole ingests is the fault suite's job (``tests/faults``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from datumio.ingest import atomic


def test_stale_temporary_of_a_dead_run_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "x.lmdb"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".x.lmdb.tmp-{dead.stdout.strip()}-abcd"
    (stale / "shards").mkdir(parents=True)
    live = Path(atomic.make_tmp(str(out)))  # ours: alive, must stay
    removed = atomic.clean_stale(str(out))
    assert removed == [str(stale)]
    assert not stale.exists() and live.exists()


WATCH = """
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
missing = looks = 0
print("ready", flush=True)
while not os.path.exists(stop):
    looks += 1
    if not os.path.exists(os.path.join(path, "manifest.json")):
        missing += 1
print(missing, looks)
"""


@pytest.mark.skipif(atomic._renameat2() is None, reason="no renameat2 (Linux, glibc >= 2.28)")
def test_overwrite_never_leaves_out_missing(tmp_path: Path) -> None:
    """Another process polling OUT during 300 replacements never finds it missing."""
    out, stop = tmp_path / "out.lmdb", tmp_path / "stop"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "datumio", "k": 0}')
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCH, str(out), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert watcher.stdout is not None and watcher.stdout.readline() == "ready\n"
        for k in range(1, 301):
            tmp = atomic.make_tmp(str(out))
            Path(tmp, "manifest.json").write_text(f'{{"format": "datumio", "k": {k}}}')
            atomic.publish(tmp, str(out), overwrite=True)
    finally:
        stop.touch()
        output, _ = watcher.communicate(timeout=30)
    missing, looks = (int(v) for v in output.split())
    assert looks > 300 and missing == 0
    assert json.loads((out / "manifest.json").read_text())["k"] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.lmdb", "stop"]


def test_exchange_swaps_a_file_and_a_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.write_text("file")
    if not atomic.exchange(str(a), str(b)):
        pytest.skip("no RENAME_EXCHANGE here")
    assert a.read_text() == "file" and b.is_dir()
