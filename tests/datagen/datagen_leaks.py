"""Leak detection for tests that start processes: /dev/shm segments and descendants."""

from __future__ import annotations

import os
from multiprocessing import forkserver, resource_tracker

SHM = "/dev/shm"


def leaked_segments() -> list[str]:
    """datumio segments created by this process."""
    return [n for n in os.listdir(SHM) if n.startswith(f"datumio_{os.getpid()}_")]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _infrastructure() -> set[int]:
    """multiprocessing's resource tracker and fork server: they live as long as the test run."""
    pids = set()
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None):
        pids.add(tracker._pid)
    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None):
        pids.add(server._forkserver_pid)
    return pids


def live_descendants() -> list[int]:
    """Processes below this one, other than the multiprocessing helpers."""
    helpers = _infrastructure()
    found: list[int] = []
    todo = [os.getpid()]
    while todo:
        for kid in _children(todo.pop()):
            todo.append(kid)
            if kid not in helpers:
                found.append(kid)
    return found
