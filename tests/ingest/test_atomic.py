"""A dataset is complete or absent: kill -9 an ingest at many moments, then rerun it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from leaks import session_members

import datumio
from datumio.ingest import atomic
from datumio.tools.demo import write_demo_images


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "images"
    write_demo_images(str(root))
    return root


def _ingest_cmd(src: Path, out: Path) -> list[str]:
    code = "import sys; from datumio.tools.ingest_cmd import main; sys.exit(main())"
    return [sys.executable, "-c", code, str(src), str(out), "--encode", "png", "--quiet"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
@pytest.mark.parametrize("delay", [0.05, 0.3, 0.6, 1.0, 1.5])
def test_kill_9_leaves_no_dataset_and_rerun_succeeds(src: Path, tmp_path: Path, delay: float):
    out = tmp_path / "out.lmdb"
    proc = subprocess.Popen([*_ingest_cmd(src, out), "--workers", "2"], start_new_session=True)
    time.sleep(delay)
    finished = proc.poll() is not None
    with contextlib.suppress(ProcessLookupError):  # the run may have finished already
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_members(proc.pid) == [], "ingest workers outlived their parent"
    if out.exists():
        # Only a finished run may leave OUT, and then it is complete.
        assert (out / "manifest.json").exists()
        assert len(datumio.open(out)) == 632
    else:
        assert not finished
    subprocess.run([*_ingest_cmd(src, out), "--overwrite"], check=True)
    ds = datumio.open(out)
    assert len(ds) == 632
    assert [p.name for p in tmp_path.iterdir()] == ["out.lmdb"], "stale temporaries remain"


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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_clean_up(src: Path, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "out.lmdb"
    proc = subprocess.Popen([*_ingest_cmd(src, out), "--workers", "2"], start_new_session=True)
    time.sleep(0.4)
    if proc.poll() is not None:
        pytest.skip("ingest finished before the signal could be sent")
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=30) == 130
    deadline = time.monotonic() + 5
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_members(proc.pid) == []
    assert list(tmp_path.iterdir()) == []


WATCH = """
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
missing = looks = 0
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
    (out / "manifest.json").write_text("0")
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCH, str(out), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.3)  # let the watcher start polling
        for k in range(1, 301):
            tmp = atomic.make_tmp(str(out))
            Path(tmp, "manifest.json").write_text(str(k))
            atomic.publish(tmp, str(out), overwrite=True)
    finally:
        stop.touch()
        output, _ = watcher.communicate(timeout=30)
    missing, looks = (int(v) for v in output.split())
    assert looks > 300 and missing == 0
    assert (out / "manifest.json").read_text() == "300"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.lmdb", "stop"]


def test_exchange_swaps_a_file_and_a_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.write_text("file")
    if not atomic.exchange(str(a), str(b)):
        pytest.skip("no RENAME_EXCHANGE here")
    assert a.read_text() == "file" and b.is_dir()
