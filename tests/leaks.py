"""Leak checks shared by every test that starts processes or shared memory.

After such a test: no ``/dev/shm/datumio_<pid>_*`` segment of this process (or of a dead
one), and no process below this one except multiprocessing's own resource tracker and
fork server, which live as long as the test run.
"""

from __future__ import annotations

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


def leaked_segments() -> list[str]:
    """datumio segments of this process or of a dead process."""
    out = []
    for name in os.listdir(SHM):
        m = _SEGMENT.match(name)
        if m and (int(m.group(1)) == os.getpid() or not pid_alive(int(m.group(1)))):
            out.append(name)
    return out


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


def leaks(timeout_s: float = 5.0) -> str | None:
    """None when nothing leaked within ``timeout_s``, else what is left."""
    gc.collect()
    deadline = time.monotonic() + timeout_s
    while True:
        segments = leaked_segments()
        procs = [p for p in multiprocessing.active_children() if p.is_alive()]
        others = live_descendants()
        if not segments and not procs and not others:
            return None
        if time.monotonic() > deadline:
            return f"segments={segments} children={procs} descendants={others}"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fails a test that leaves a segment or a process behind; a conftest turns it on for
    its directory with ``from leaks import no_leaks``."""
    yield
    left = leaks()
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
