"""Runs that write one dataset at the same time: one writer at a time, never a lost record.

Every run that writes OUT (a new dataset, ``--append``, ``--overwrite``, ``--resume``) holds
an exclusive lock on ``.OUT.lock`` beside OUT from before it reads anything there to its
end. The first run is held at its ``start`` step (``DATUMIO_TEST_HOOK=ready=FILE;hold=FILE``,
after it has read the dataset's manifest), so the second one meets it there however fast
the machine is: it stops at once naming the first run's pid, or waits with ``--wait``.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import builders
import fault_support
import pytest
from fault_support import LineReader, wait_until
from leaks import session_members

import datumio
from datumio.shards.verify import verify

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

RUN_TIMEOUT_S = builders.INGEST_TIMEOUT_S
FLAGS = ["--encode", "png", "--shard-size", "4", "--workers", "2", "--quiet"]
BASE = {"a": 6, "b": 5}
FIRST = {"a": 4, "c": 3}
SECOND = {"b": 3, "d": 4}


draw = functools.partial(fault_support.draw_folders, side=12)


def files_of(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.png")}


ingest_cli = functools.partial(builders.ingest_cli, flags=FLAGS)


def finish(proc: subprocess.Popen[str]) -> str:
    """Everything the process printed, once it has exited (its workers gone too)."""
    output, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert wait_until(lambda: session_members(proc.pid) == [], 10), "workers outlived the run"
    return output


class Held:
    """A run stopped at its ``start`` step until :meth:`release`."""

    def __init__(self, proc: subprocess.Popen[str], go: Path) -> None:
        self.proc = proc
        self._go = go

    def release(self) -> str:
        self._go.touch()
        output = finish(self.proc)
        assert self.proc.returncode == 0, output
        return output


class Runs:
    """``datumio-ingest`` processes of one test (stdout and stderr merged, for LineReader);
    any still running when the test ends (it failed) are killed with their workers."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._procs: list[subprocess.Popen[str]] = []

    def start(self, src: Path, out: Path, *args: str, hook: str = "") -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "datumio", "ingest", str(src), str(out), *FLAGS, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "DATUMIO_TEST_HOOK": hook},
            start_new_session=True,
        )
        self._procs.append(proc)
        return proc

    def held(self, src: Path, out: Path, *args: str) -> Held:
        ready, go = self._tmp_path / "ready", self._tmp_path / "go"
        proc = self.start(src, out, *args, hook=f"ready={ready};hold={go}")
        reached = wait_until(lambda: ready.exists() or proc.poll() is not None, 60)
        assert reached and ready.exists(), "the first run never reached its start"
        return Held(proc, go)

    def kill_the_rest(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=RUN_TIMEOUT_S)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    started = Runs(tmp_path)
    try:
        yield started
    finally:
        started.kill_the_rest()


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """(dataset out.lmdb holding BASE, its input, the FIRST and the SECOND new input)."""
    base = draw(tmp_path / "base", BASE, 0)
    out = tmp_path / "data" / "out.lmdb"
    builders.build_dataset(base, out, encode="png", shard_records=4)
    return out, base, draw(tmp_path / "first", FIRST, 1), draw(tmp_path / "second", SECOND, 2)


def sources(out: Path) -> list[str]:
    with datumio.open(out) as ds:
        return [ds.source(i) for i in range(len(ds))]


def assert_only_the_dataset_is_left(out: Path) -> None:
    assert [p.name for p in out.parent.iterdir()] == [out.name], "lock or temporary left"


def assert_every_record_of(out: Path, *inputs: Path) -> None:
    """``out`` holds the files of ``inputs`` and no other, is sound, and stands alone."""
    assert sorted(sources(out)) == sorted(set().union(*(files_of(src) for src in inputs)))
    assert verify(out).ok
    assert_only_the_dataset_is_left(out)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_second_append_stops_at_once_naming_the_first(
    runs: Runs, inputs: tuple[Path, Path, Path, Path], executor: str
) -> None:
    if executor == "dask":
        pytest.importorskip("distributed")
    out, base, first, second = inputs
    held = runs.held(first, out, "--append", "--executor", executor)
    refused = ingest_cli(second, out, "--append")
    assert refused.returncode == 1, refused.stderr
    assert f"another datumio run (pid {held.proc.pid})" in refused.stderr, refused.stderr
    assert "--wait" in refused.stderr and "Traceback" not in refused.stderr
    waited = ingest_cli(second, out, "--append", "--wait", "0.5")
    assert waited.returncode == 1 and "after waiting 0.5 s" in waited.stderr, waited.stderr
    held.release()
    assert sorted(sources(out)) == sorted(files_of(base) | files_of(first))
    done = ingest_cli(second, out, "--append")
    assert done.returncode == 0, done.stderr
    assert_every_record_of(out, base, first, second)


def test_a_second_append_with_wait_waits_and_both_keep_every_record(
    runs: Runs, inputs: tuple[Path, Path, Path, Path]
) -> None:
    out, base, first, second = inputs
    held = runs.held(first, out, "--append")
    waiting = runs.start(second, out, "--append", "--wait", "forever")
    reader = LineReader(waiting)
    line = reader.next_line(timeout=60)
    assert "waiting for it to finish" in line, line
    held.release()
    rest = reader.rest(timeout=RUN_TIMEOUT_S)
    assert waiting.wait(timeout=RUN_TIMEOUT_S) == 0, rest
    assert wait_until(lambda: session_members(waiting.pid) == [], 10)
    with datumio.open(out) as ds:
        assert ds.manifest.generation == 2  # two appends, one after the other
    assert_every_record_of(out, base, first, second)


def test_appends_started_together_keep_every_record(
    runs: Runs, inputs: tuple[Path, Path, Path, Path]
) -> None:
    """The case first reported: started at once, both said done, one's records were gone."""
    out, base, first, second = inputs
    both = [runs.start(new, out, "--append", "--wait", "forever") for new in (first, second)]
    outputs = [finish(run) for run in both]
    assert [run.returncode for run in both] == [0, 0], outputs
    assert_every_record_of(out, base, first, second)


@pytest.mark.parametrize("flags", [[], ["--overwrite"], ["--resume"]])
def test_every_writer_of_a_new_dataset_takes_its_turn(
    tmp_path: Path, runs: Runs, flags: list[str]
) -> None:
    src = draw(tmp_path / "src", BASE, 0)
    out = tmp_path / "data" / "out.lmdb"
    held = runs.held(src, out)
    refused = ingest_cli(src, out, *flags)
    assert refused.returncode == 1, refused.stderr
    assert f"(pid {held.proc.pid})" in refused.stderr, refused.stderr
    assert not out.exists()
    held.release()
    assert sorted(sources(out)) == sorted(files_of(src))
    assert_only_the_dataset_is_left(out)


def test_the_lock_of_a_killed_run_binds_no_one(tmp_path: Path, runs: Runs) -> None:
    """The kernel drops a dead run's lock; its file, left behind, is taken over and removed."""
    src = draw(tmp_path / "src", BASE, 0)
    out = tmp_path / "data" / "out.lmdb"
    killed = runs.start(src, out, hook="kill=start")
    finish(killed)
    assert killed.returncode == -signal.SIGKILL
    lock = out.parent / ".out.lmdb.lock"
    assert lock.read_text().startswith(f"datumio writer lock: pid {killed.pid} ")
    done = ingest_cli(src, out, "--resume")
    assert done.returncode == 0, done.stderr
    assert_only_the_dataset_is_left(out)


def test_a_file_named_like_the_lock_that_datumio_did_not_write_is_left_alone(
    tmp_path: Path,
) -> None:
    src = draw(tmp_path / "src", BASE, 0)
    out = tmp_path / "data" / "out.lmdb"
    out.parent.mkdir()
    mine = out.parent / ".out.lmdb.lock"
    mine.write_text("my own notes\n")
    refused = ingest_cli(src, out)
    assert refused.returncode == 1, refused.stderr
    assert "was not written by datumio" in refused.stderr and str(mine) in refused.stderr
    assert mine.read_text() == "my own notes\n"
    assert sorted(p.name for p in out.parent.iterdir()) == [".out.lmdb.lock"]
