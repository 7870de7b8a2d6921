"""Leak checks shared by every test that starts processes or shared memory.

After such a test: no ``/dev/shm/datumio_<pid>_*`` segment of this process (or of a dead
one that appeared during the test, unless another pytest run on the machine may have left
it), and no process below this one except multiprocessing's own resource tracker and fork
server, which live as long as the test run.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterator
from multiprocessing import forkserver, resource_tracker

import pytest

from datumio._process import pid_alive

SHM = "/dev/shm"
_SEGMENT = re.compile(r"^datumio_(\d+)_")


def leaked_segments(known: frozenset[str] = frozenset()) -> list[str]:
    """datumio segments of this process, or of a dead process unless in ``known`` (there
    before the test began: another test run on this machine may leave one, on purpose)."""
    out = []
    for name in os.listdir(SHM):
        m = _SEGMENT.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or (name not in known and not pid_alive(pid)):
            out.append(name)
    return out


def remove_segments_of(pid: int) -> list[str]:
    """Unlink what is left of process ``pid``'s datumio segments (a test's cleanup after a
    subprocess it killed, when the test failed before the code under test could)."""
    removed = []
    for name in os.listdir(SHM):
        if name.startswith(f"datumio_{pid}_"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(SHM, name))
                removed.append(name)
    return removed


def _processes() -> list[tuple[int, list[str]]]:
    """(pid, fields after the command name) of every live (non-zombie) process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z":
            found.append((int(entry), fields))
    return found


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (a subprocess started with a new session)."""
    return [pid for pid, fields in _processes() if int(fields[3]) == sid]


def _infrastructure() -> set[int]:
    pids = set()
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None):
        pids.add(tracker._pid)
    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None):
        pids.add(server._forkserver_pid)
    return pids


def live_descendants() -> list[int]:
    """Processes below this one, not counting the resource tracker and fork server."""
    helpers = _infrastructure()
    parents: dict[int, list[int]] = {}
    for pid, fields in _processes():
        parents.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    todo = [os.getpid()]
    while todo:
        for kid in parents.get(todo.pop(), []):
            todo.append(kid)
            if kid not in helpers:
                found.append(kid)
    return found


def _other_test_runs() -> list[int]:
    """Live pytest processes that are neither this one nor below it (another checkout's or
    another session's run on the same machine)."""
    mine = {os.getpid(), *live_descendants()}
    found = []
    for pid, _ in _processes():
        if pid in mine:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"pytest" in arg for arg in argv[:3]):
            found.append(pid)
    return found


def _left(known: frozenset[str]) -> tuple[list[str], list[multiprocessing.Process], list[int]]:
    segments = leaked_segments(known)
    foreign = [n for n in segments if not n.startswith(f"datumio_{os.getpid()}_")]
    if foreign and _other_test_runs():
        # A dead process's segment may then be another run's (its kill tests leave some on
        # purpose, for a while): only this process's own segments count.
        segments = [n for n in segments if n not in foreign]
    procs = [p for p in multiprocessing.active_children() if p.is_alive()]
    return segments, procs, live_descendants()


def leaks(timeout_s: float = 5.0, known: frozenset[str] = frozenset()) -> str | None:
    """None when nothing leaked within ``timeout_s``, else what is left (segments of dead
    processes in ``known`` do not count)."""
    if not any(_left(known)):
        return None  # the common case, cheap: no garbage collection, no waiting
    gc.collect()
    deadline = time.monotonic() + timeout_s
    while True:
        segments, procs, others = _left(known)
        if not segments and not procs and not others:
            return None
        if time.monotonic() > deadline:
            return f"segments={segments} children={procs} descendants={others}"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fails a test that leaves a segment or a process behind; ``tests/conftest.py`` turns it
    on for the whole suite (cheap after a test that started nothing: two directory scans)."""
    known = frozenset(os.listdir(SHM))
    yield
    left = leaks(known=known)
    if left is not None:
        pytest.fail(f"leak after test: {left}")


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll ``check`` every 50 ms until it holds or ``timeout`` s pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()
