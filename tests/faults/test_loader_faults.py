"""The Loader under misuse and faults, with real worker processes and shared memory.

* One iterator at a time: a second ``iter(loader)``, ``set_epoch``, ``load_state_dict``
  or ``close()`` ends a live iterator, whose next step raises LoaderError naming the cause
  (never a silent stop that truncates an epoch); the usual epoch loops are unaffected.
* A Loader refuses to be pickled, before and after it starts.
* A stopped worker and a worker stuck on one record are reported once, by pid, batch,
  record and shard, well before ``batch_timeout_s``; then LoaderError, not a hang.
* A SIGKILLed worker is replaced and the epoch's batches are those of an undisturbed run.
* Four processes reading one dataset at once get the same batches as a reference run.
* A dataset nobody may write is read by the Loader, ``datumio verify`` and ``datumio
  inspect`` and left byte- and mtime-identical.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import fault_hooks
import numpy as np
import pytest
from console import console_argv
from fault_support import (
    LineReader,
    digest,
    poison_record,
    reader_command,
    reader_digests,
    reader_loader,
    tree_snapshot,
)

import datumio
from datumio import LoaderError, Transform
from datumio.loader import Loader

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

SPEC = Transform(size=(16, 16), flip=0.5)
BATCH = 4
#: Small, so a stall is reported after max(1 s, 10 %) = 1 s and raises after 5 s.
BATCH_TIMEOUT_S = 5.0
#: Upper bound on any one subprocess of these tests; only a hang comes near it.
PROC_TIMEOUT_S = 60.0
STALL = "without progress"


def _natural(path: Path, **kw: object) -> Loader:
    kw.setdefault("transform", SPEC)
    kw.setdefault("workers", 1)
    return Loader(path, BATCH, sampling="natural", extras=("ids",), **kw)  # type: ignore[arg-type]


def _expected_ids(loader: Loader, epoch: int, lo: int, hi: int) -> np.ndarray:
    """The ids of records ``lo:hi`` of ``epoch`` as the sampler plans them."""
    return loader.sampler.epoch_ids(epoch)[lo:hi]


def _ids(batches: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(batches) if batches else np.empty(0, np.int64)


# -- 1. one iterator at a time ------------------------------------------------------------


def test_inner_loop_over_the_same_loader_ends_the_outer_loop(poison_lmdb: Path) -> None:
    with _natural(poison_lmdb) as loader:
        n = len(loader)
        outer, inner = [], []
        with pytest.raises(LoaderError) as info:
            for _x, _y, ids in loader:
                outer.append(ids.copy())
                for _vx, _vy, vids in loader:  # the mistake: the same Loader for validation
                    inner.append(vids.copy())
        text = str(info.value)
        assert "another iter(loader) was started" in text, text
        assert f"ended after 1 of {n} batches" in text, text
        # The inner loop itself worked: it ran the rest of epoch 0, in order.
        assert len(outer) == 1 and len(inner) == n - 1
        np.testing.assert_array_equal(_ids(outer), _expected_ids(loader, 0, 0, BATCH))
        np.testing.assert_array_equal(_ids(inner), _expected_ids(loader, 0, BATCH, n * BATCH))


def test_validation_peek_inside_the_loop_ends_the_outer_loop(poison_lmdb: Path) -> None:
    with _natural(poison_lmdb) as loader:
        n = len(loader)
        outer, peeked = [], []
        with pytest.raises(LoaderError, match=r"another iter\(loader\) was started") as info:
            for step, (_x, _y, ids) in enumerate(loader):
                outer.append(ids.copy())
                if step == 1:
                    _vx, _vy, vids = next(iter(loader))  # a quick look at "a batch"
                    peeked.append(vids.copy())
        assert f"ended after 2 of {n} batches" in str(info.value)
        assert len(outer) == 2
        # The peek got the next batch of the epoch (the loader's position was 8).
        np.testing.assert_array_equal(_ids(peeked), _expected_ids(loader, 0, 2 * BATCH, 3 * BATCH))


def test_a_new_iterator_takes_over_and_the_old_one_raises(poison_lmdb: Path) -> None:
    with _natural(poison_lmdb, workers=2) as loader:
        old = iter(loader)
        first = next(old)[2].copy()
        new = iter(loader)
        second = [next(new)[2].copy() for _ in range(2)]
        with pytest.raises(LoaderError, match=r"another iter\(loader\) was started"):
            next(old)
        second.extend(ids.copy() for _, _, ids in new)  # the new one runs to the epoch's end
        n = len(loader)
        np.testing.assert_array_equal(first, _expected_ids(loader, 0, 0, BATCH))
        np.testing.assert_array_equal(_ids(second), _expected_ids(loader, 0, BATCH, n * BATCH))
        assert loader.epoch == 1 and loader.position == 0


@pytest.mark.parametrize("action", ["set_epoch", "load_state_dict"])
def test_set_epoch_or_load_state_dict_ends_a_suspended_iterator(
    poison_lmdb: Path, action: str
) -> None:
    with _natural(poison_lmdb) as loader:
        it = iter(loader)
        next(it)
        next(it)
        if action == "set_epoch":
            loader.set_epoch(3)
            named, epoch, lo = "set_epoch(3) was called", 3, 0
        else:
            state = loader.state_dict()  # position 8 of epoch 0
            loader.load_state_dict(state)
            named, epoch, lo = "load_state_dict() was called", 0, 2 * BATCH
        with pytest.raises(LoaderError) as info:
            next(it)
        assert named in str(info.value) and "ended after 2 of" in str(info.value)
        # What the caller asked for is what the next iterator gives.
        _x, _y, ids = next(iter(loader))
        np.testing.assert_array_equal(ids, _expected_ids(loader, epoch, lo, lo + BATCH))


def test_close_ends_an_iterator_and_a_closed_loader_refuses_iter(poison_lmdb: Path) -> None:
    loader = _natural(poison_lmdb)
    it = iter(loader)
    held = next(it)
    loader.close()
    with pytest.raises(LoaderError, match=r"close\(\) was called"):
        next(it)
    with pytest.raises(LoaderError, match="closed"):
        iter(loader)
    assert loader.closed and held[0].shape[0] == BATCH  # a held batch is still readable
    del held


def test_usual_epoch_loops_do_not_raise(poison_lmdb: Path) -> None:
    with _natural(poison_lmdb, workers=2) as loader:
        n = len(loader)
        # Leaving an epoch early with break, then set_epoch for the next one.
        seen: dict[int, list[np.ndarray]] = {}
        for epoch in range(2):
            loader.set_epoch(epoch)
            for step, (_x, _y, ids) in enumerate(loader):
                seen.setdefault(epoch, []).append(ids.copy())
                if step == 2:
                    break
        for epoch in range(2):
            np.testing.assert_array_equal(
                _ids(seen[epoch]), _expected_ids(loader, epoch, 0, 3 * BATCH)
            )
        # set_epoch to the epoch already running is a no-op: a live iterator goes on.
        loader.set_epoch(2)
        it = iter(loader)
        a = next(it)[2].copy()
        loader.set_epoch(2)
        b = next(it)[2].copy()
        np.testing.assert_array_equal(np.concatenate([a, b]), _expected_ids(loader, 2, 0, 8))
        del it
        # Whole epochs back to back, with and without set_epoch (already there after one).
        for epoch in (3, 4):
            loader.set_epoch(epoch)
            got = [ids.copy() for _, _, ids in loader]
            assert len(got) == n
            np.testing.assert_array_equal(_ids(got), _expected_ids(loader, epoch, 0, n * BATCH))
            assert loader.epoch == epoch + 1 and loader.position == 0
        got = [ids.copy() for _, _, ids in loader]  # epoch 5, no set_epoch at all
        np.testing.assert_array_equal(_ids(got), _expected_ids(loader, 5, 0, n * BATCH))


# -- 2. pickling --------------------------------------------------------------------------


def test_pickling_a_loader_raises_a_clear_type_error(poison_lmdb: Path) -> None:
    with _natural(poison_lmdb) as loader:
        for when in ("before start", "while iterating"):
            for protocol in (0, pickle.HIGHEST_PROTOCOL):
                with pytest.raises(TypeError) as info:
                    pickle.dumps(loader, protocol=protocol)
                text = str(info.value)
                assert "Loader cannot be pickled" in text, (when, text)
                assert "mmap" not in text, (when, text)
            if when == "before start":
                it = iter(loader)
                next(it)
        # A refused pickle leaves the loader working.
        _x, _y, ids = next(it)
        np.testing.assert_array_equal(ids, _expected_ids(loader, 0, BATCH, 2 * BATCH))


# -- 3. stalls ----------------------------------------------------------------------------


def _stall_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "datumio" and r.levelno == logging.WARNING and STALL in r.getMessage()
    ]


def test_a_stopped_worker_is_reported_once_then_raises(
    poison_lmdb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datumio")
    loader = Loader(
        poison_lmdb, BATCH, transform=SPEC, workers=2, epoch_size=64,
        batch_timeout_s=BATCH_TIMEOUT_S,
    )  # fmt: skip
    victim = 0
    try:
        it = iter(loader)
        next(it)
        victim = loader.worker_pids[0]
        os.kill(victim, signal.SIGSTOP)
        with pytest.raises(LoaderError) as info:
            for _ in it:
                pass
        raised_wall = time.time()
    finally:
        if victim:
            os.kill(victim, signal.SIGCONT)
        loader.close()
    text = str(info.value)
    assert f"no batch arrived for {BATCH_TIMEOUT_S} s" in text and f"pid {victim}" in text
    # One warning for the stopped worker over the ~10 polls of the wait (the other worker
    # may be reported too if the machine starves it of CPU for a second: that is right).
    warnings = [w for w in _stall_warnings(caplog) if f"(pid {victim})" in w.getMessage()]
    assert len(warnings) == 1, [w.getMessage() for w in _stall_warnings(caplog)]
    message = warnings[0].getMessage()
    assert re.search(rf"worker \d \(pid {victim}\) .*batch \d+", message), message
    assert f"batch_timeout_s={BATCH_TIMEOUT_S:g} s" in message
    # Before the timeout: the warning comes a stall period (1 s) into the wait, the error
    # at its end (an order, not a duration: a loaded machine only makes both later).
    assert warnings[0].created < raised_wall


def test_a_worker_stuck_on_one_record_names_it_and_its_shard(
    poison_lmdb: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datumio")
    poison = poison_record(poison_lmdb)
    with datumio.open(poison_lmdb) as ds:
        shard = ds.shard_path(ds.locate(poison)[0])
        assert ds.locate(poison)[0] > 0  # not the first shard: the message must find it
    gate = tmp_path / "release"
    spec = Transform(
        size=(16, 16), layout="HWC", dtype="uint8",
        user_fn=functools.partial(fault_hooks.hang_on_poison, gate=str(gate)),
    )  # fmt: skip
    with _natural(poison_lmdb, transform=spec, batch_timeout_s=BATCH_TIMEOUT_S) as loader:
        order = list(loader.sampler.epoch_ids(0))
        stuck_batch = order.index(poison) // BATCH
        assert stuck_batch < len(loader)
        got: list[np.ndarray] = []
        try:
            with pytest.raises(LoaderError) as info:
                for _x, _y, ids in loader:
                    got.append(ids.copy())
        finally:
            gate.touch()  # let the worker finish, so close() stops it cleanly
    assert f"no batch arrived for {BATCH_TIMEOUT_S} s" in str(info.value)
    assert len(got) == stuck_batch  # every batch before the stuck one arrived
    # One warning for the stuck record over the ~10 polls of the wait.
    warnings = [w for w in _stall_warnings(caplog) if f"record {poison} " in w.getMessage()]
    assert len(warnings) == 1, [w.getMessage() for w in _stall_warnings(caplog)]
    message = warnings[0].getMessage()
    done = order.index(poison) % BATCH
    assert f"is on record {poison} (shard {shard}) of batch {stuck_batch} ({done} done)" in (
        message
    ), message
    assert re.search(r"worker 0 \(pid \d+\)", message), message
    assert f"record {poison} (shard {shard})" in str(info.value)


# -- 4. determinism under a killed worker -------------------------------------------------


def _epoch(loader: Loader) -> Iterator[tuple[np.ndarray, ...]]:
    for batch in loader:
        yield tuple(a.copy() for a in batch)


def test_a_killed_worker_changes_no_batch(
    poison_lmdb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datumio")
    spec = Transform(size=(16, 16), flip=0.5, user_fn=fault_hooks.slow)

    def make() -> Loader:
        return Loader(
            poison_lmdb, BATCH, transform=spec, workers=2, seed=9, epoch_size=48,
            extras=("ids",),
        )  # fmt: skip

    with make() as loader:
        expected = list(_epoch(loader))
        assert loader.stats.worker_restarts == 0
    with make() as loader:
        it = _epoch(loader)
        # Each plan goes to the least busy worker, so batches 0 and 1 come one from each
        # worker: after them the victim has produced a batch and holds later ones.
        got = [next(it), next(it)]
        victim = loader.worker_pids[0]
        os.kill(victim, signal.SIGKILL)
        got.extend(it)
        assert loader.stats.worker_restarts >= 1
        assert victim not in loader.worker_pids and len(loader.worker_pids) == 2
    assert any("died (killed by SIGKILL)" in r.getMessage() for r in caplog.records)
    assert len(got) == len(expected) == len(loader)
    for b, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        assert len(mine) == 3
        for name, x, y in zip(("images", "labels", "ids"), mine, theirs, strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"batch {b} {name}")


# -- 5. concurrent readers ----------------------------------------------------------------


def test_four_processes_read_the_same_dataset_at_once(poison_lmdb: Path) -> None:
    seed = 21
    with reader_loader(poison_lmdb, seed, workers=2) as loader:
        reference = reader_digests(loader)
    assert len(set(reference)) == len(reference)  # distinct batches: a mix-up would show
    procs = [
        subprocess.Popen(
            reader_command(poison_lmdb, seed, "go"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        readers = [LineReader(p) for p in procs]
        # Every process has its worker running before any reads: they overlap for sure.
        for p, reader in zip(procs, readers, strict=True):
            try:
                line = reader.next_line(PROC_TIMEOUT_S)
            except AssertionError as exc:
                p.kill()
                p.wait(timeout=PROC_TIMEOUT_S)
                err = p.stderr.read() if p.stderr else ""
                raise AssertionError(f"{exc}; its stderr: {err}") from None
            assert line == "READY", line
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("GO\n")
            p.stdin.flush()
        outputs = [reader.rest(PROC_TIMEOUT_S) for reader in readers]
        for p, out in zip(procs, outputs, strict=True):
            rc = p.wait(timeout=PROC_TIMEOUT_S)
            err = p.stderr.read() if p.stderr else ""
            assert rc == 0, err
            assert len(out) == 1 and json.loads(out[0]) == reference, (out, err)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream is not None:
                    stream.close()


# -- 6. a read-only dataset ---------------------------------------------------------------

_PR_CAPBSET_DROP = 24

WRITE_PROBE = """
import os, sys
root = sys.argv[1]
shard = os.path.join(root, "shards", sorted(os.listdir(os.path.join(root, "shards")))[0])
attempts = {
    "append to manifest.json": lambda: open(os.path.join(root, "manifest.json"), "ab"),
    "rewrite a shard": lambda: open(shard, "r+b"),
    "create a file beside the manifest": lambda: open(os.path.join(root, "new"), "xb"),
    "create a lock file beside a shard": lambda: open(shard + "-lock", "xb"),
}
for what, attempt in attempts.items():
    try:
        attempt().close()
    except PermissionError:
        print("denied:", what)
    else:
        print("WROTE:", what)
"""


def _drop_capabilities() -> None:
    """In a child before exec: empty the capability bounding set, so the root process that
    execs next has no capabilities and file permissions bind it like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap})")


def _reader_identity(workdir: str, env: dict[str, str]) -> tuple[str, dict[str, object]]:
    """Who runs the readers, so that the dataset's permissions bind them: (who, Popen kwargs).

    Not root: this user. Root ignores permissions, so: the user nobody when it can run this
    interpreter; otherwise (an interpreter under a private /root, say) root with every
    capability dropped, for which a file's mode binds as for its owner.
    """
    if os.geteuid() != 0:
        return "this user", {}
    nobody: dict[str, object] = {"user": 65534, "group": 65534, "extra_groups": []}
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import datumio"],
            cwd=workdir,
            env=env,
            capture_output=True,
            timeout=PROC_TIMEOUT_S,
            **nobody,  # type: ignore[arg-type]
        )
        if probe.returncode == 0:
            return "nobody", nobody
    except OSError:
        pass
    return "root without capabilities", {"preexec_fn": _drop_capabilities}


def _set_modes(root: str, dirs: int, files: int) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), files)
        os.chmod(dirpath, dirs)


@pytest.fixture
def shared_tmp() -> Iterator[str]:
    """A world-traversable directory under /tmp (pytest's tmp_path is private to us)."""
    root = tempfile.mkdtemp(prefix="datumio-ro-", dir="/tmp")
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        _set_modes(root, 0o755, 0o644)
        shutil.rmtree(root)


def test_a_read_only_dataset_is_read_and_left_untouched(poison_lmdb: Path, shared_tmp: str) -> None:
    copy = os.path.join(shared_tmp, "ro.lmdb")
    shutil.copytree(poison_lmdb, copy)
    with datumio.open(copy) as ds:
        records = len(ds)
    seed = 4
    with reader_loader(poison_lmdb, seed, workers=1) as loader:
        reference = reader_digests(loader)
    _set_modes(copy, 0o555, 0o444)
    before = tree_snapshot(copy)
    env = {**os.environ, "HOME": shared_tmp, "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    who, identity = _reader_identity(shared_tmp, env)

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=shared_tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=PROC_TIMEOUT_S,
            **identity,  # type: ignore[arg-type]
        )

    probe = run([sys.executable, "-c", WRITE_PROBE, copy])
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("denied:") for line in lines), (who, lines)

    loaded = run(reader_command(copy, seed))
    assert loaded.returncode == 0, (who, loaded.stderr)
    assert json.loads(loaded.stdout) == reference

    verified = run(console_argv(["datumio", "verify", copy, "--quiet"]))
    assert verified.returncode == 0, (who, verified.stdout, verified.stderr)
    assert f"{records} records checked" in verified.stdout and "sound" in verified.stdout

    inspected = run(console_argv(["datumio", "inspect", copy, "--quiet", "--json"]))
    assert inspected.returncode == 0, (who, inspected.stdout, inspected.stderr)
    summary = json.loads(inspected.stdout)
    assert summary["records"] == records and summary["integrity"]["ok"] is True, summary

    after = tree_snapshot(copy)
    assert after.keys() == before.keys(), (who, sorted(after.keys() ^ before.keys()))
    changed = [rel for rel in before if before[rel] != after[rel]]
    assert not changed, (who, changed)


def test_digest_covers_every_array() -> None:
    # The digests above compare images, labels and ids: a change in any one shows.
    a = (np.zeros((2, 2), np.float32), np.array([1, 2]), np.array([3, 4]))
    for k in range(3):
        b = list(a)
        b[k] = b[k] + 1
        assert digest(b) != digest(a)
