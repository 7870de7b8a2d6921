"""POSIX shared-memory segments: made and unlinked by one process, mapped by others.

:class:`Segment` is the one way datumio maps shared memory: the loader's batch slots
(:mod:`datumio.loader.slots`), the original API's shared arrays, and the images a stream's
chunk hands to the ingest workers (:mod:`datumio.ingest.shared_images`). The creator
registers a segment with the resource tracker (unlinked if the creator dies without
closing it); a process that maps an existing one never registers it, so none of them can
unlink it. Names start ``datumio_<pid>_`` so a later run can tell and remove the segments
of a dead process.
"""

from __future__ import annotations

import _posixshmem
import contextlib
import ctypes
import errno
import mmap
import os
import sys
from multiprocessing import resource_tracker

SHM_DIR = "/dev/shm"
NAME_PREFIX = "datumio_"


class Segment:
    """One POSIX shared-memory segment mapped into this process."""

    def __init__(self, name: str, size: int, *, create: bool) -> None:
        self.name = name
        self.size = size
        self.owner = create
        path = "/" + name
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = _posixshmem.shm_open(path, flags, mode=0o600)
        try:
            if create:
                try:
                    _reserve(fd, size)
                except OSError:
                    _posixshmem.shm_unlink(path)
                    raise
            self.mmap = mmap.mmap(fd, size)
            if not create:
                _populate_for_write(self.mmap)
        finally:
            os.close(fd)
        if create:
            # The resource tracker unlinks the segment if this process dies without closing.
            resource_tracker.register(path, "shared_memory")
        holder = ctypes.c_char.from_buffer(self.mmap)
        self.address = ctypes.addressof(holder)
        del holder  # release the buffer export so close() may unmap later

    def unlink(self) -> None:
        if not self.owner:
            return
        self.owner = False
        with contextlib.suppress(FileNotFoundError):
            _posixshmem.shm_unlink("/" + self.name)
        resource_tracker.unregister("/" + self.name, "shared_memory")

    def close(self) -> None:
        # A view that still exports the buffer keeps the mapping until it goes.
        with contextlib.suppress(BufferError):
            self.mmap.close()


#: madvise(MADV_POPULATE_WRITE), Linux 5.14+.
_MADV_POPULATE_WRITE = 23


def _populate_for_write(m: mmap.mmap) -> None:
    """Map every page of a worker's slots for writing now, in bulk, where the kernel can.

    Without it a worker takes a page fault per 4 KiB the first time it fills each slot (a
    256 x 224 x 224 x 3 uint8 batch has 9,400 pages): the first pass over the ring is
    slower, worst with many workers and slots. With it the workers map the ring in parallel
    at start (measured, 2 workers, 14 batches of 256: 1.2 faults per image instead of 24,
    4% more images/s, 0.07 s more to the first batch). Older kernels refuse the advice
    (EINVAL): pages then fault in as they are first written.
    """
    if not hasattr(m, "madvise") or sys.platform != "linux":
        return
    with contextlib.suppress(OSError, ValueError):
        m.madvise(_MADV_POPULATE_WRITE)


def _reserve(fd: int, size: int) -> None:
    """Give the segment its size, reserving the pages where the system can.

    On Linux tmpfs ``posix_fallocate`` fails now with ENOSPC when /dev/shm is full, instead
    of a worker dying of SIGBUS on its first write into a page that cannot be backed.
    """
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
    os.ftruncate(fd, size)
