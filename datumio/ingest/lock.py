"""One writer at a time per dataset: an exclusive ``flock`` on ``.NAME.lock`` beside OUT.

Every run that writes OUT (a new dataset, ``append``, ``overwrite``, ``resume``) takes the
lock before it reads anything at OUT and holds it to its end, in the driver process (shard
tasks, local or on Dask, never touch it). A second run fails at once, naming the holder's
pid, or waits for it (``IngestOptions.wait``). The kernel drops a flock when its process
dies, ``kill -9`` included, so a dead run never blocks the next one.

The file is datumio's own: the holder writes its pid and host into it and removes it as it
leaves. A run killed before that leaves it behind, and the next run takes it over. A file
of that name that datumio did not write is refused, never changed or removed. A run that
gets the lock checks that the file it locked is still the one at the path (the holder
before it removed it meanwhile) and otherwise starts over with the file there now.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import socket
import time
from collections.abc import Callable, Iterator

from datumio._process import pid_alive
from datumio.errors import IngestError

_MARK = b"datumio writer lock"
_HOLDER = re.compile(r"datumio writer lock: pid (\d+) on (.+)\n")
#: How often a waiting run tries the lock again (and polls ``stop``).
_POLL_S = 0.1


def lock_path(out: str) -> str:
    """The lock file of dataset ``out``: ``.NAME.lock`` in OUT's folder."""
    parent, name = os.path.split(os.path.abspath(out))
    return os.path.join(parent, f".{name}.lock")


@contextlib.contextmanager
def writer_lock(
    out: str,
    wait: float | None,
    *,
    shown: str | None = None,
    events: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """Hold the writer lock of the dataset at the local path ``out`` for the block.

    Args:
        out: the dataset (or staging) directory; it need not exist, its folder is made.
        wait: seconds to wait for another holder (0: not at all; None: as long as it takes).
        shown: how messages name the dataset (default ``out``).
        events: called with ``"wait"`` once, when the run starts to wait.
        stop: polled while waiting; True stops the wait as Ctrl-C would.

    Raises:
        IngestError: another run holds the lock (past ``wait``), or the lock file cannot
            be made or is not datumio's.
        KeyboardInterrupt: ``stop()`` said so while waiting.
    """
    path = lock_path(out)
    fd = _acquire(path, shown or out, wait, events, stop)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if _is_at(fd, path):
                os.unlink(path)  # before the unlock: a waiter then finds the file gone
        os.close(fd)


def _acquire(
    path: str,
    shown: str,
    wait: float | None,
    events: Callable[[str], None] | None,
    stop: Callable[[], bool] | None,
) -> int:
    deadline = time.monotonic() + (math.inf if wait is None else wait)
    told = False
    while True:
        fd = _open(path, shown)
        try:
            got = _try_lock(fd, path)
            if got and _is_at(fd, path):
                _claim(fd, path, shown)
                return fd
            holder = None if got else _holder(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if got:
            continue  # the run before removed the file we locked: lock the one there now
        if time.monotonic() >= deadline:
            raise _busy(shown, path, holder, wait or 0.0)
        if not told and events is not None:
            events("wait")
            told = True
        if stop is not None and stop():
            raise KeyboardInterrupt
        time.sleep(_POLL_S)


def _open(path: str, shown: str) -> int:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            return os.open(path, os.O_RDONLY)  # another user's file: flock needs no write
    except OSError as exc:
        raise IngestError(
            f"cannot create {path}, the lock that keeps two runs from writing {shown} at "
            f"once: {exc.strerror}; make its folder writable, or write the dataset elsewhere"
        ) from exc


def _try_lock(fd: int, path: str) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        raise IngestError(
            f"cannot lock {path}: {exc.strerror}; its filesystem does not support flock "
            "(some network filesystems): write the dataset on a local or NFSv4 disk"
        ) from exc
    return True


def _is_at(fd: int, path: str) -> bool:
    """Whether the file open at ``fd`` is the one at ``path`` now."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def _claim(fd: int, path: str, shown: str) -> None:
    """Write this run into the locked file, unless it is not datumio's."""
    head = os.pread(fd, len(_MARK), 0)
    if not _MARK.startswith(head):
        raise IngestError(
            f"{path} was not written by datumio, but datumio keeps two runs from writing "
            f"{shown} at once with a lock file of that name: move that file away"
        )
    holder = f"{_MARK.decode()}: pid {os.getpid()} on {socket.gethostname()}\n"
    with contextlib.suppress(OSError):  # another user's file, or a full disk: pid unknown
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)


def _holder(fd: int) -> str | None:
    """The holder as the lock file names it (``pid 123``), or None when unknown."""
    try:
        match = _HOLDER.fullmatch(os.pread(fd, 512, 0).decode("utf-8", "replace"))
    except OSError:
        return None
    if match is None:
        return None
    pid, host = int(match.group(1)), match.group(2)
    if host != socket.gethostname():
        return f"pid {pid} on {host}"
    return f"pid {pid}" if pid_alive(pid) else None


def _busy(shown: str, path: str, holder: str | None, wait: float) -> IngestError:
    who = f"another datumio run ({holder})" if holder else "another datumio run"
    if wait > 0:
        return IngestError(
            f"{shown} is still being written by {who} after waiting {wait:g} s; only one run "
            "at a time may write a dataset: wait longer (--wait SECONDS, or --wait forever) "
            "or try again later"
        )
    return IngestError(
        f"{shown} is being written by {who}, which holds {path}; only one run at a time may "
        "write a dataset: let it finish, or pass --wait SECONDS (or --wait forever; "
        "IngestOptions(wait=...)) to wait for it"
    )
