"""The original API (BatchGenerator, DataGenerator) under faults, on real worker processes.

The Loader's failure guarantees, for ``get_batch(workers=N)``:

* A worker SIGKILLed mid-pass is replaced and the pass's batches are those of ``workers=0``.
* A batch that keeps killing workers raises LoaderError naming it, within seconds.
* A worker exception raises WorkerError naming the batch, the sample, the exception type
  and message, after every batch before the failing one was yielded.
* Ctrl-C, SIGTERM and SIGKILL of a training script leave no process; its segments go with
  it, or (SIGKILL of the whole group) with the next stale-segment cleanup in another process.
* Leaving a pass early (``close()`` or dropping the iterator) leaves nothing behind.
* A lambda data_loader travels by value; one that cannot be sent at all (it holds a lock)
  is a clear OptionError at start, not a hang.
* The next pass of a generator removes the segments a SIGKILLed run left (as a Loader
  start does).

Part of the fault suite (``-m faults``); the leak check of tests/datagen/conftest.py runs
after every test.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing
from leaks import leaks, remove_segments_of, session_members, wait_until

from datumio import LoaderError, OptionError, WorkerError
from datumio._process import pid_alive
from datumio.datagen import BatchGenerator, DataGenerator, img_loader
from datumio.loader import remove_stale_segments

#: Above the waits of one test (WAIT_S each), so that on a slow machine a wait fails with
#: its message, and the ``finally`` cleans up, before pytest-timeout strikes.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

BATCH = 4
SEED = 3
#: 22 files: five batches of 4 and a last one of 2.
NUM_FILES = 22
#: The poisoned file is the second sample of this batch of the shuffled pass: mid-pass,
#: after the first batches went to both workers, and never the main process's probe sample.
POISON_BATCH = 2
RNG_AUG = {
    "output_shape": (10, 10),
    "zoom_range": (0.9, 1.1),
    "rotation_range": (-20, 20),
    "do_flip_lr": True,
}
#: Upper bound on any wait of these tests; only a hang comes near it.
WAIT_S = 30.0


# -- data_loaders run by the workers (top level: they pickle by reference) ----------------


def kill_loader(path: str, victim: str, main_pid: int, marker: str = "") -> np.ndarray:
    """``img_loader``, but a worker that loads ``victim`` SIGKILLs itself: every time, or
    with ``marker`` only the first time (the attempt that creates the marker file)."""
    if path == victim and os.getpid() != main_pid:
        if not marker:
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass  # a replacement worker: load it like any other file
        else:
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    return img_loader(path)


def failing_loader(path: str, victim: str) -> np.ndarray:
    """``img_loader``, but ``victim`` raises ValueError (in any process)."""
    if path == victim:
        raise ValueError(f"cannot read {os.path.basename(path)}: bad header")
    return img_loader(path)


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def pictures(tmp_path: Path) -> list[str]:
    """NUM_FILES small random PNG pictures, all distinct."""
    drawing = Drawing({"pictures": NUM_FILES}, size=(12, 12), seed=5)
    drawing.draw(tmp_path)
    return [str(tmp_path / rel) for *_, rel in drawing.files()]


def _files(paths: list[str], data_loader: Callable[..., np.ndarray], **kw: object) -> DataGenerator:
    """Labels are the sample indices, so a pass's labels are its sample order."""
    return DataGenerator(
        paths, np.arange(len(paths)), data_loader=data_loader, dl_kwargs=kw, rng_aug_params=RNG_AUG
    )


def _pass_order(paths: list[str]) -> list[int]:
    """The sample order of the shuffled pass of seed SEED (the same for every generator)."""
    gen = DataGenerator(paths, np.arange(len(paths)))
    batches = gen.get_batch(batch_size=BATCH, shuffle=True, rng_seed=SEED, workers=0)
    return np.concatenate([by for _, by in batches]).tolist()


def _poison(paths: list[str]) -> tuple[str, int]:
    """(path, sample index) of the second sample of batch POISON_BATCH of the pass."""
    order = _pass_order(paths)
    index = order[POISON_BATCH * BATCH + 1]
    assert index != order[0]  # the main process loads order[0] to learn the sample shape
    return paths[index], index


def _collect(batches: Iterable[tuple[np.ndarray, np.ndarray]], into: list) -> None:
    for bx, by in batches:
        into.append((bx, by))


def _assert_same_batches(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for b, ((x, y), (ex, ey)) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_array_equal(y, ey, err_msg=f"batch {b} labels")
        np.testing.assert_array_equal(x, ex, err_msg=f"batch {b} pixels")


def _segments(pid: int) -> list[str]:
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(f"datumio_{pid}_"))


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no line from the training script within {timeout} s"
    return proc.stdout.readline()


# -- 1. a killed worker is replaced and changes no batch ----------------------------------


def test_a_worker_killed_mid_pass_is_replaced_and_changes_no_batch(
    pictures: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datumio")
    victim, _ = _poison(pictures)
    marker = tmp_path / "killed-once"
    gen = _files(pictures, kill_loader, victim=victim, main_pid=os.getpid(), marker=str(marker))
    kw = {"batch_size": BATCH, "shuffle": True, "rng_seed": SEED}
    expected = list(gen.get_batch(**kw, workers=0))
    assert not marker.exists()  # the main process never kills itself
    got = list(gen.get_batch(**kw, workers=2))
    assert marker.exists(), "no worker loaded the poisoned file: nothing was killed"
    deaths = [
        r.getMessage() for r in caplog.records if "died (killed by SIGKILL)" in r.getMessage()
    ]
    assert len(deaths) == 1, deaths
    assert len(expected) == 6
    _assert_same_batches(got, expected)


# -- 2. a batch that keeps killing workers fails the pass ---------------------------------


@pytest.mark.timeout(30)  # the guarantee: an error within seconds, never a hang
def test_a_batch_that_keeps_killing_workers_raises_loader_error(pictures: list[str]) -> None:
    victim, index = _poison(pictures)
    gen = _files(pictures, kill_loader, victim=victim, main_pid=os.getpid())
    kw = {"batch_size": BATCH, "shuffle": True, "rng_seed": SEED}
    got: list = []
    with pytest.raises(LoaderError) as info:
        _collect(gen.get_batch(**kw, workers=2), got)
    assert not isinstance(info.value, WorkerError)  # a death, not an exception
    text = str(info.value)
    match = re.search(
        rf"batch {POISON_BATCH} killed (\d+) workers \(last: killed by SIGKILL\)", text
    )
    assert match and int(match.group(1)) > 1, text
    records = re.search(r"its records \[([\d, ]*)\]", text)
    assert records and index in [int(v) for v in records.group(1).split(",")], text
    # Nothing after the poisoned batch was yielded, and what was yielded is right.
    assert len(got) <= POISON_BATCH
    reference = list(_files(pictures, img_loader).get_batch(**kw, workers=0))
    _assert_same_batches(got, reference[: len(got)])


# -- 3. a worker exception reaches the caller after the batches before it ------------------


def test_a_worker_exception_raises_worker_error_after_the_earlier_batches(
    pictures: list[str],
) -> None:
    victim, index = _poison(pictures)
    gen = _files(pictures, failing_loader, victim=victim)
    kw = {"batch_size": BATCH, "shuffle": True, "rng_seed": SEED}
    expected: list = []
    with pytest.raises(ValueError, match="bad header"):
        _collect(gen.get_batch(**kw, workers=0), expected)
    got: list = []
    with pytest.raises(WorkerError) as info:
        _collect(gen.get_batch(**kw, workers=2), got)
    assert len(expected) == POISON_BATCH
    _assert_same_batches(got, expected)
    err = info.value
    head, _, tb = str(err).partition("\n\nWorker traceback:\n")
    name = os.path.basename(victim)
    assert re.fullmatch(
        rf"datagen worker \d+ failed at batch {POISON_BATCH}, sample {index}: "
        rf"ValueError: cannot read {re.escape(name)}: bad header",
        head,
    ), head
    assert "in failing_loader" in tb and tb.rstrip().endswith(
        f"ValueError: cannot read {name}: bad header"
    )
    assert err.batch == POISON_BATCH and err.record == index


# -- 4. a training script ended by a signal ------------------------------------------------

TRAIN = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from datumio.datagen import BatchGenerator

    if __name__ == "__main__":
        X = np.random.default_rng(0).integers(0, 256, (256, 24, 24, 3), dtype=np.uint8)
        aug = {"output_shape": (16, 16), "rotation_range": (-20, 20), "do_flip_lr": True}
        gen = BatchGenerator(X, np.arange(len(X)), rng_aug_params=aug)
        ready = False
        while True:  # pass after pass, until a signal ends the run
            for bx, by in gen.get_batch(batch_size=8, shuffle=True, workers=2):
                if not ready:
                    prefix = f"datumio_{os.getpid()}_"
                    mine = sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))
                    print("READY", *mine, flush=True)
                    ready = True
                time.sleep(0.005)
    """
)

CLEANUP = (
    "from datumio.loader import remove_stale_segments; print(*remove_stale_segments(), sep='\\n')"
)


@contextlib.contextmanager
def _training_script(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    """TRAIN running in its own session, past its first batch: (process, its segment names,
    its stderr file). Whatever the test does, nothing of the session outlives the block."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        line = _first_line(proc, WAIT_S).split()
        assert line and line[0] == "READY", (line, errors.read_text())
        names = line[1:]
        # The shared X and one output slot per batch prepared ahead (max(2, workers)).
        assert len(names) == 3 and sum(n.endswith("_x") for n in names) == 1, names
        assert all(os.path.exists(f"/dev/shm/{n}") for n in names)
        assert len(session_members(proc.pid)) >= 3  # the script, its fork server, workers
        yield proc, names, errors
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
        remove_segments_of(proc.pid)  # a failed test must not leave them in /dev/shm
        assert proc.stdout is not None
        proc.stdout.close()


def _gone(names: list[str]) -> bool:
    return not any(os.path.exists(f"/dev/shm/{n}") for n in names)


@pytest.mark.parametrize(
    ("sig", "whole_group"),
    [
        (signal.SIGINT, True),  # Ctrl-C in a terminal reaches the whole foreground group
        (signal.SIGTERM, False),
        (signal.SIGKILL, False),
        (signal.SIGKILL, True),  # the resource tracker dies too: a later cleanup removes them
    ],
    ids=["ctrl-c", "sigterm", "sigkill", "sigkill-group"],
)
def test_training_script_ended_by_a_signal_leaves_nothing(
    tmp_path: Path, sig: signal.Signals, whole_group: bool
) -> None:
    with _training_script(tmp_path) as (proc, names, errors):
        if whole_group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        proc.wait(timeout=WAIT_S)
        assert wait_until(lambda: not session_members(proc.pid), 10.0), session_members(proc.pid)
        if sig == signal.SIGKILL and whole_group:
            # Nobody of the dead run was left to unlink them: a cleanup in another process
            # (what the next Loader start runs) must recognise them as stale.
            assert all(os.path.exists(f"/dev/shm/{n}") for n in names)
            cleanup = subprocess.run(
                [sys.executable, "-c", CLEANUP], capture_output=True, text=True, timeout=WAIT_S
            )
            assert cleanup.returncode == 0, cleanup.stderr
            assert set(names) <= set(cleanup.stdout.split()), cleanup.stdout
        assert wait_until(lambda: _gone(names), 5.0), names
        if sig == signal.SIGINT:
            # The KeyboardInterrupt unwound the pass, which unlinked its own segments: the
            # resource tracker had nothing left to clean up (after SIGTERM it warns of them).
            text = errors.read_text()
            assert "KeyboardInterrupt" in text and "leaked shared_memory" not in text, text


def test_the_next_generator_pass_removes_a_killed_runs_segments(tmp_path: Path) -> None:
    with _training_script(tmp_path) as (proc, names, _):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
        assert wait_until(lambda: not session_members(proc.pid), 10.0), session_members(proc.pid)
        try:
            X = np.random.default_rng(2).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
            gen = BatchGenerator(X, rng_aug_params=RNG_AUG)
            assert len(list(gen.get_batch(batch_size=BATCH, rng_seed=0, workers=1))) == 4
            assert _gone(names), names
        finally:
            remove_stale_segments()  # expected to fail above: the leak check must still pass


# -- 5. leaving a pass early --------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "del"])
def test_leaving_a_pass_early_releases_workers_and_segments(how: str) -> None:
    X = np.random.default_rng(1).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    gen = BatchGenerator(X, rng_aug_params=RNG_AUG)
    it = gen.get_batch(batch_size=BATCH, rng_seed=0, workers=2)
    next(it)
    names = _segments(os.getpid())
    workers = [p.pid for p in multiprocessing.active_children()]
    assert len(names) == 3 and len(workers) == 2, (names, workers)
    assert all(pid_alive(pid) for pid in workers)
    if how == "close":
        it.close()
    else:
        del it
    assert not [n for n in names if os.path.exists(f"/dev/shm/{n}")]  # at once, no GC wait
    assert leaks(timeout_s=5.0) is None


# -- 6. a start that cannot work ----------------------------------------------------------


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_a_lambda_data_loader_travels_by_value(pictures: list[str], start_method: str) -> None:
    gen = DataGenerator(pictures, data_loader=lambda path: img_loader(path) // 3)
    here = next(iter(gen.get_batch(batch_size=BATCH, workers=0)))
    pooled = next(iter(gen.get_batch(batch_size=BATCH, workers=2, start_method=start_method)))
    assert np.array_equal(here, pooled) and here.max() <= 255 // 3


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_an_unpicklable_data_loader_is_a_clear_option_error(
    pictures: list[str], start_method: str
) -> None:
    lock = threading.Lock()  # nothing can send a lock to another process

    def locked_loader(path: str) -> np.ndarray:
        with lock:
            return img_loader(path)

    gen = DataGenerator(pictures, data_loader=locked_loader)
    assert next(iter(gen.get_batch(batch_size=BATCH, workers=0))).shape == (BATCH, 12, 12, 3)
    with pytest.raises(OptionError) as info:
        next(iter(gen.get_batch(batch_size=BATCH, workers=2, start_method=start_method)))
    text = str(info.value)
    assert f"cannot send the worker configuration to a {start_method!r} worker" in text, text
    assert "lock" in text and "must be picklable" in text, text
    assert not _segments(os.getpid())
    assert not multiprocessing.active_children()
