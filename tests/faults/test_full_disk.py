"""A full disk: an error that says where and what to do, and no finished work lost.

The disk is a real tmpfs mounted for the test (root or CAP_SYS_ADMIN; skipped otherwise),
sized from an uninterrupted run so that the first shards fit and a later one does not, or
filled to its last page by a filler file at a chosen moment. Records are raw pixels, so
shards have real bytes. After the failure the disk is made larger (a remount) or the filler
is deleted, and ``--resume`` finishes the run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import builders
import fault_support
import pytest
from fault_support import wait_until

import datumio
from datumio import errors
from datumio.shards.verify import verify

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

RUN_TIMEOUT_S = builders.INGEST_TIMEOUT_S
#: Four raw 64x64 RGB records (48 KiB of payload) per shard, two shards at a time.
FLAGS = ["--encode", "raw", "--shard-size", "4", "--workers", "2", "--quiet"]
BIG_KIB = 8192


@dataclass(frozen=True)
class Disk:
    """A tmpfs mounted at ``path``."""

    path: Path

    def resize(self, kib: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={kib}k", str(self.path)], check=True)

    def entries(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir())

    def fill(self) -> Path:
        """Take every free page with a filler file (unbuffered writes: nothing is left to
        flush, so nothing fails later); its path."""
        filler = self.path / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, bytes(4096))
        except OSError:
            pass
        finally:
            os.close(fd)
        assert shutil.disk_usage(self.path).free == 0
        return filler


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    path = tmp_path / "disk"
    path.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={BIG_KIB}k", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command to make a small filesystem with")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield Disk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


draw = functools.partial(fault_support.draw_folders, side=64, vary=False)


ingest_cli = functools.partial(builders.ingest_cli, flags=FLAGS)


def digest(path: Path) -> list[tuple[str, int, int]]:
    with datumio.open(path) as ds:
        return [(ds.source(i), ds[i][1], zlib.crc32(ds.image(i).tobytes())) for i in range(len(ds))]


def room_for(path: Path, shards: float) -> int:
    """KiB that hold about ``shards`` shards of the dataset at ``path`` while it is built
    (each with its sidecar), and the build's small files."""
    sizes = sorted(-(-p.stat().st_size // 4096) * 4 for p in (path / "shards").iterdir())
    return int(shards * (sizes[-1] + 16)) + 16


def kept_build(disk: Disk, name: str) -> Path:
    (build,) = [p for p in disk.path.iterdir() if p.name.startswith(f".{name}.tmp-")]
    return build


def assert_says_the_disk_is_full(err: str, disk: Disk, build: Path) -> None:
    assert "Traceback" not in err, err
    assert "No space left on device" in err or "Input/output error" in err, err
    assert f"cannot write {disk.path}" in err and "free on its filesystem now" in err, err
    assert f"kept in {build}" in err and "--resume" in err, err


def finished_shards(build: Path) -> int:
    """Shards of a kept build with their sidecar; no partial shard file may be left."""
    shards = sorted(p.name for p in (build / "shards").iterdir())
    cars = sorted(p.name for p in (build / "sidecars").iterdir())
    assert not [n for n in shards if n.startswith(".")], f"partial shard left: {shards}"
    assert [n.split(".")[0] for n in shards] == [n.split(".")[0] for n in cars]
    return len(cars)


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_a_full_disk_stops_the_run_and_resume_reuses_every_finished_shard(
    tmp_path: Path, disk: Disk, suffix: str
) -> None:
    src = draw(tmp_path / "src", {"a": 12, "b": 12}, 0)
    whole = tmp_path / f"whole{suffix}"
    assert ingest_cli(src, whole).returncode == 0
    out = disk.path / f"out{suffix}"
    disk.resize(room_for(whole, 2.5))
    failed = ingest_cli(src, out)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    build = kept_build(disk, out.name)
    assert_says_the_disk_is_full(failed.stderr, disk, build)
    assert not out.exists()
    finished = finished_shards(build)
    assert 1 <= finished < 6
    disk.resize(BIG_KIB)
    resumed = ingest_cli(src, out, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["shards_reused"] == finished
    assert digest(out) == digest(whole)
    assert verify(out).ok
    assert disk.entries() == [out.name], "a temporary or the lock was left"


def test_a_full_disk_while_writing_the_index_keeps_every_shard(tmp_path: Path, disk: Disk) -> None:
    """The driver's own files (index, statistics, manifest): the last shard fills the disk
    (a filler file takes what is left), then the index cannot be written."""
    src = draw(tmp_path / "src", {"a": 8, "b": 8}, 0)
    out = disk.path / "out.lmdb"
    options = datumio.IngestOptions(encode="raw", shard_records=4, workers=2)

    def fill_the_disk(done: int, total: int) -> None:
        if done == total:
            disk.fill()

    with pytest.raises(errors.DatumioError) as caught:
        datumio.ingest(src, out, options, progress=fill_the_disk)
    build = kept_build(disk, out.name)
    assert isinstance(caught.value, errors.DiskFullError)
    message = str(caught.value)
    assert f"cannot write {build / 'index'}" in message and "free on its filesystem now" in message
    assert caught.value.path.startswith(str(build / "index")) and "resume" in message
    assert finished_shards(build) == 4
    (disk.path / "filler").unlink()
    report = datumio.ingest(src, out, dataclasses.replace(options, resume=True))
    assert report.shards_reused == 4 and report.num_records == 16
    assert verify(out).ok
    assert disk.entries() == [out.name]


def test_a_full_disk_during_an_append_keeps_the_dataset_and_resume_finishes_it(
    tmp_path: Path, disk: Disk
) -> None:
    base = draw(tmp_path / "base", {"a": 4, "b": 4}, 0)
    new = draw(tmp_path / "new", {"a": 8, "c": 8}, 1)
    out, fresh = disk.path / "out.lmdb", tmp_path / "fresh.lmdb"
    for target in (out, fresh):
        assert ingest_cli(base, target).returncode == 0
    before = digest(out)
    used = sum(-(-p.stat().st_size // 4096) * 4 for p in out.rglob("*") if p.is_file())
    disk.resize(used + room_for(fresh, 2.5))
    failed = ingest_cli(new, out, "--append")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    build = kept_build(disk, out.name)
    assert_says_the_disk_is_full(failed.stderr, disk, build)
    assert digest(out) == before and verify(out).ok  # the dataset is the one it was
    finished = finished_shards(build)
    assert finished >= 1
    disk.resize(BIG_KIB)
    resumed = ingest_cli(new, out, "--append", "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["shards_reused"] == finished
    assert ingest_cli(new, fresh, "--append").returncode == 0
    assert digest(out) == digest(fresh)
    assert verify(out).ok
    assert disk.entries() == [out.name]


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_a_disk_full_to_its_last_page_when_the_shards_start_is_an_error_not_a_crash(
    tmp_path: Path, disk: Disk, suffix: str
) -> None:
    """Not a page free when the tasks open their shard writers. LMDB once made a lock file
    beside each shard and wrote its first page through a memory map: on a full tmpfs the
    kernel killed the worker with SIGBUS, leaving that file, and the run lost its build."""
    src = draw(tmp_path / "src", {"a": 4, "b": 4}, 0)
    out = disk.path / f"out{suffix}"
    ready, go = tmp_path / "ready", tmp_path / "go"
    command = [sys.executable, "-m", "datumio", "ingest", str(src), str(out), *FLAGS]
    hook = {**os.environ, "DATUMIO_TEST_HOOK": f"ready={ready};hold={go}"}
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=hook) as run:
        try:
            assert wait_until(lambda: ready.exists() or run.poll() is not None, RUN_TIMEOUT_S)
            assert ready.exists(), "the run never reached its start"
            filler = disk.fill()  # the build folder and the plan are written: shards are next
            go.touch()
            _, err = run.communicate(timeout=RUN_TIMEOUT_S)
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode == 1, err
    build = kept_build(disk, out.name)
    assert_says_the_disk_is_full(err, disk, build)
    assert f"cannot write {build / 'shards'}" in err, err
    assert finished_shards(build) == 0 and not out.exists()
    filler.unlink()
    resumed = ingest_cli(src, out, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["records"] == 8 and report["shards_reused"] == 0
    assert verify(out).ok
    assert disk.entries() == [out.name]
