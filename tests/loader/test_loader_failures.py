"""Failure behaviour with real processes: bad records, raising and dying workers, cleanup."""

from __future__ import annotations

import _posixshmem
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import loader_hooks
import numpy as np
import pytest

import datumio
from datumio.augment import Transform
from datumio.errors import LoaderError, WorkerError
from datumio.loader import Loader, slots

pytestmark = pytest.mark.timeout(60)

SPEC = Transform(size=(16, 16), flip=0.5)


def _natural(path: str | Path, **kw: object) -> Loader:
    kw.setdefault("transform", SPEC)
    kw.setdefault("workers", 2)
    return Loader(path, 3, sampling="natural", extras=("ids",), **kw)  # type: ignore[arg-type]


def test_corrupt_record_is_replaced_counted_and_logged_once(
    corrupt_copy: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    path, bad = corrupt_copy
    ds = datumio.open(path)
    caplog.set_level(logging.WARNING, logger="datumio")
    with _natural(path) as loader:
        for _ in range(2):
            ids = np.concatenate([i.copy() for _, _, i in loader])
            assert bad not in ids
            assert len(ids) == len(loader) * 3
        assert loader.stats.replaced == 2 and loader.stats["replaced_ids"] == {bad: 2}
    warnings = [r for r in caplog.records if f"record {bad}" in r.getMessage()]
    assert len(warnings) == 1
    # The replacement is the next record of the same class, deterministically.
    members = ds.class_index(int(ds.labels[bad]))
    assert f"using record {int(members[1])}" in warnings[0].getMessage()


def test_strict_raises_with_record_and_shard(corrupt_copy: tuple[str, int]) -> None:
    path, bad = corrupt_copy
    ds = datumio.open(path)
    with _natural(path, strict=True) as loader, pytest.raises(WorkerError) as info:
        for _ in loader:
            pass
    err = info.value
    assert err.record == bad and err.shard == ds.shard_path(0)
    assert f"record {bad}" in str(err) and "CRC32" in str(err)


@pytest.mark.parametrize("hook", [loader_hooks.fail_always, loader_hooks.fail_unpicklable])
def test_worker_exception_reaches_the_caller(small_lmdb: Path, hook: object) -> None:
    spec = Transform(size=(16, 16), user_fn=hook)  # type: ignore[arg-type]
    with _natural(small_lmdb, transform=spec) as loader:
        loader.start()
        with pytest.raises(WorkerError) as info:
            next(iter(loader))
    text = str(info.value)
    assert hook.__name__ in text and "Worker traceback" in text  # type: ignore[attr-defined]
    assert "boom from user_fn" in text or "Unpicklable: cannot pickle me" in text
    assert info.value.record >= 0 and info.value.shard.endswith(".mdb")
    assert f"record {info.value.record} (shard " in text


def test_a_failed_batch_leaves_the_worker_running_for_the_next_one(small_lmdb: Path) -> None:
    spec = Transform(size=(16, 16), user_fn=loader_hooks.fail_always)
    with _natural(small_lmdb, transform=spec, workers=1) as loader:
        with pytest.raises(WorkerError):
            next(iter(loader))
        pids = loader.worker_pids
        with pytest.raises(WorkerError):
            next(iter(loader))  # the same worker, still alive: nothing was restarted
        assert loader.worker_pids == pids and loader.stats.worker_restarts == 0


def _reference(path: str | Path, spec: Transform) -> list[np.ndarray]:
    with Loader(path, 4, transform=spec, epoch_size=96, workers=2, seed=5) as loader:
        return [x.copy() for x, _ in loader]


def test_sigkilled_worker_is_replaced_and_its_batch_reissued(small_lmdb: Path) -> None:
    spec = Transform(size=(16, 16), user_fn=loader_hooks.slow)
    expected = _reference(small_lmdb, spec)
    got = []
    with Loader(small_lmdb, 4, transform=spec, epoch_size=96, workers=2, seed=5) as loader:
        it = iter(loader)
        got.append(next(it)[0].copy())
        victim = loader.worker_pids[0]
        os.kill(victim, signal.SIGKILL)
        got.append(next(it)[0].copy())
        got.extend(x.copy() for x, _ in it)
        assert loader.stats.worker_restarts >= 1
        assert victim not in loader.worker_pids and len(loader.worker_pids) == 2
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_batch_that_keeps_killing_workers_raises(small_lmdb: Path) -> None:
    spec = Transform(size=(16, 16), user_fn=loader_hooks.die)
    with (
        _natural(small_lmdb, transform=spec, max_restarts=1) as loader,
        pytest.raises(LoaderError, match=r"killed 2 workers|died without finishing"),
    ):
        next(iter(loader))


def test_close_gc_and_training_loop_errors_leave_nothing(small_lmdb: Path) -> None:
    loader = _natural(small_lmdb)
    next(iter(loader))
    pids, names = loader.worker_pids, loader.segment_names
    assert len(pids) == 2 and all(os.path.exists(f"/dev/shm/{n}") for n in names)
    loader.close()
    assert not any(os.path.exists(f"/dev/shm/{n}") for n in names)
    loader.close()  # idempotent

    loader = _natural(small_lmdb)
    with pytest.raises(RuntimeError, match="training step"):
        for _ in loader:
            raise RuntimeError("training step failed")
    names = loader.segment_names
    del loader
    gc.collect()
    assert not any(os.path.exists(f"/dev/shm/{n}") for n in names)


def test_held_batch_survives_close(small_lmdb: Path) -> None:
    loader = _natural(small_lmdb)
    images, labels, ids = next(iter(loader))
    snapshot = images.copy()
    loader.close()
    np.testing.assert_array_equal(images, snapshot)  # still mapped; only the name is gone
    del images, labels, ids


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_segments_of_dead_runs_are_removed_at_start(small_lmdb: Path) -> None:
    name = f"datumio_{_dead_pid()}_deadbeef_slot0"
    fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_RDWR, mode=0o600)
    os.close(fd)
    mine = f"datumio_{os.getpid()}_feedface_slot0"
    fd = _posixshmem.shm_open("/" + mine, os.O_CREAT | os.O_RDWR, mode=0o600)
    os.close(fd)
    try:
        with _natural(small_lmdb, workers=1) as loader:
            loader.start()
            assert not os.path.exists(f"/dev/shm/{name}")
            assert os.path.exists(f"/dev/shm/{mine}")  # a live process's segment stays
    finally:
        _posixshmem.shm_unlink("/" + mine)


def test_shm_capacity_is_checked_with_a_clear_message(
    small_lmdb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.statvfs("/dev/shm")

    class Tiny:
        f_bavail = 10
        f_frsize = real.f_frsize
        f_flag = real.f_flag

    monkeypatch.setattr(slots.os, "statvfs", lambda path: Tiny())
    loader = _natural(small_lmdb)
    with pytest.raises(LoaderError) as info:
        loader.start()
    text = str(info.value)
    needed = loader.options.num_slots * loader.layout.slot_bytes
    assert f"{needed} bytes" in text and f"{10 * real.f_frsize} bytes free" in text
    assert "--shm-size" in text and "batch_size" in text
    loader.close()


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_lambda_user_fn_travels_by_value(small_lmdb: Path, method: str) -> None:
    """A lambda or nested function is sent as code (cloudpickle): the batch shows its work."""
    offset = 7
    spec = Transform(size=(16, 16), dtype="uint8", user_fn=lambda image, rng: image // 2 + offset)
    with _natural(small_lmdb, transform=spec, start_method=method) as loader:
        images = next(iter(loader))[0]
        assert images.min() >= offset and images.max() <= 255 // 2 + offset


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_an_unpicklable_user_fn_is_refused_with_what_to_do(small_lmdb: Path, method: str) -> None:
    lock = threading.Lock()  # nothing can send a lock to another process

    def locked(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        with lock:
            return image

    spec = Transform(size=(16, 16), user_fn=locked)
    with (
        pytest.raises(datumio.OptionError, match="open them inside the function") as info,
        _natural(small_lmdb, transform=spec, start_method=method) as loader,
    ):
        next(iter(loader))
    assert "user_fn" in str(info.value) and method in str(info.value)


def _sleeping(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "S"


def test_a_failed_batch_raises_only_when_the_loop_reaches_it(
    small_lmdb: Path, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 2 fails while batch 1 is done: both messages are read in one wait, yet batch 1
    is served first and the error comes at batch 2."""
    mark = tmp_path / "failed"
    monkeypatch.setenv("DATUMIO_TEST_MARK", str(mark))  # spawn: the worker sees it
    spec = Transform(size=(16, 16), user_fn=loader_hooks.fail_on_ninth_call_marked)
    with Loader(
        small_lmdb, 4, transform=spec, workers=1, prefetch=4, start_method="spawn"
    ) as loader:
        it = iter(loader)
        next(it)
        (pid,) = loader.worker_pids
        deadline = time.monotonic() + 30
        while not (mark.exists() and _sleeping(pid)):  # batch 2 failed and was reported
            assert time.monotonic() < deadline, "the worker never reached its ninth call"
            time.sleep(0.01)
        batch = next(it)  # batch 1: its message and batch 2's failure are both waiting
        assert len(batch[0]) == 4
        with pytest.raises(WorkerError, match="ninth call"):
            next(it)
