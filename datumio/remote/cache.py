"""The local shard cache of a remote dataset: one directory per URL, the dataset's own layout.

``<cache_dir>/<key>/`` holds ``manifest.json``, ``index/`` and ``shards/`` exactly as the
dataset directory does, so :class:`~datumio.shards.Dataset` reads it like any local
dataset; ``source.json`` records the URL (never credentials). Shards land whole:

* downloaded to ``<file>.part-<pid>-<token>``, checked (size, and the dataset's own CRC32
  of every record is checked at each read), then renamed into place: a reader sees a whole
  shard or none;
* one lock file per shard (``.locks/<file>.lock``, ``fcntl.flock``): processes on one
  machine sharing the cache never download a shard twice; the second one waits, then
  finds it there;
* a process reading a shard holds a shared ``flock`` on it (:meth:`ShardCache.pin`); used
  shards are touched (mtime); when the cache holds more than ``limit`` bytes, the least
  recently used shards that no process holds are removed (each under an exclusive
  ``flock`` taken without waiting: a shard in use is skipped; and only if the locked file
  is still the one at its path, not a copy landed since). So the cache exceeds its
  limit only by the shards open at that moment, and a reader never loses its shard.
* At open, leftovers of dead downloads (``.part-*`` of a pid that is gone) and shard files
  of the wrong size are removed: a cache full of garbage heals itself. Only files this
  cache layout names are ever removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator

from datumio._process import pid_alive
from datumio.remote.urls import identity

_PART = re.compile(r"^(?P<name>.+)\.part-(?P<pid>\d+)-[0-9a-f]+$")


def cache_key(url: str) -> str:
    """The directory name of ``url``'s cache: readable tail plus a hash of its scheme, host
    and path. Credentials, query string and fragment take no part: no secret is ever in the
    name, and a URL with a new token reads the shards already downloaded."""
    name = identity(url)
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rstrip("/").rsplit("/", 1)[-1])[:40]
    return f"{tail}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


class ShardCache:
    """The cache directory of one dataset URL (see the module doc)."""

    def __init__(self, root: str, limit: int | None) -> None:
        self.root = root
        self.limit = limit
        os.makedirs(os.path.join(root, ".locks"), exist_ok=True)

    def path(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    @contextlib.contextmanager
    def locked(self, relative: str) -> Iterator[None]:
        """Hold ``relative``'s lock file (blocking) for the block."""
        name = relative.replace("/", "__") + ".lock"
        fd = os.open(os.path.join(self.root, ".locks", name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def land(
        self, relative: str, size: int, fetch: Callable[[str], None], *, replace: bool = False
    ) -> str:
        """The local path of ``relative``, downloading it with ``fetch(tmp_path)`` unless a
        whole copy (``size`` bytes) is there (``replace``: download it anyway); checked and
        renamed into place under its lock.

        Raises:
            OSError: the download came out at another size (the message names both).
        """
        final = self.path(relative)
        if not replace and _whole(final, size):
            _touch(final)
            return final
        with self.locked(relative):
            if not replace and _whole(final, size):  # another process landed it meanwhile
                _touch(final)
                return final
            os.makedirs(os.path.dirname(final), exist_ok=True)
            part = f"{final}.part-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                fetch(part)
                got = os.path.getsize(part)
                if got != size:
                    raise OSError(f"downloaded {got} bytes of {relative}, expected {size}")
                os.replace(part, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(part)
        self.evict(keep=final)
        return final

    def pin(self, relative: str) -> int | None:
        """A read-only fd of ``relative`` holding a shared lock on it: :meth:`evict` skips
        it until the fd is closed. None when the file is not there (evicted meanwhile)."""
        path = self.path(relative)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if not _same_file(fd, path):  # unlinked before our lock
                raise FileNotFoundError(path)
        except OSError:
            os.close(fd)
            return None
        return fd

    def evict(self, keep: str = "") -> list[str]:
        """Remove least recently used shards no process holds until the cache fits
        ``limit`` (``keep``: a shard just landed, not yet pinned); their paths."""
        if self.limit is None:
            return []
        shards = []
        total = 0
        for entry in _files(os.path.join(self.root, "shards")):
            st = entry.stat()
            total += st.st_size
            if not _PART.match(entry.name) and entry.path != keep:
                shards.append((st.st_mtime_ns, st.st_size, entry.path))
        removed = []
        for _, size, path in sorted(shards):
            if total <= self.limit:
                break
            if _remove_unheld(path):
                total -= size
                removed.append(path)
        return removed

    def clean(self, sizes: dict[str, int]) -> list[str]:
        """Remove dead downloads and shard files whose size is not ``sizes[relative]``."""
        removed = []
        shards_dir = os.path.join(self.root, "shards")
        for entry in _files(shards_dir):
            part = _PART.match(entry.name)
            relative = f"shards/{entry.name}"
            if part is not None:
                bad = not pid_alive(int(part.group("pid")))
            else:
                bad = relative in sizes and entry.stat().st_size != sizes[relative]
            if bad:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
        return removed

    def write_source(self, url: str) -> None:
        """Record which URL this cache mirrors (for people looking into the cache)."""
        tmp = self.path(f"source.json.part-{os.getpid()}-{secrets.token_hex(4)}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"url": url}, fh)
        os.replace(tmp, self.path("source.json"))


def _remove_unheld(path: str) -> bool:
    """Unlink ``path`` unless a process holds it (:meth:`ShardCache.pin`)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return _unlink_locked(fd, path)
    finally:
        os.close(fd)  # releases the lock


def _unlink_locked(fd: int, path: str) -> bool:
    """Unlink ``path`` if ``fd`` (opened on it) takes an exclusive lock without waiting and
    is still the file at ``path``: between that open and the lock another process may have
    evicted it and a download landed a new copy there, which a reader may hold."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # in use
    try:
        if not _same_file(fd, path):
            return False
        os.unlink(path)  # under our lock: a pin taken after this sees another inode
    except FileNotFoundError:
        return False
    return True


def _same_file(fd: int, path: str) -> bool:
    """Whether ``fd`` is the file at ``path`` now.

    Raises:
        FileNotFoundError: nothing is at ``path``.
    """
    held, there = os.fstat(fd), os.stat(path)
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _whole(path: str, size: int) -> bool:
    try:
        return os.path.getsize(path) == size
    except OSError:
        return False


def _touch(path: str) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def _files(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return [e for e in it if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []
