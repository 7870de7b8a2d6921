"""Read-ahead hints: ask the kernel for the bytes of records that will be read soon.

A worker knows the records of its next batches before it decodes them. On a cold disk a
record read through LMDB's map (opened ``readahead=False``, random access) comes in as one
synchronous 4 KiB page fault after another; one ``posix_fadvise(POSIX_FADV_WILLNEED)`` per
record's byte range instead queues the reads of a whole batch at once, so the disk works
while the CPU decodes. Bytes already in the page cache cost nothing. Hints are advice: a
failure to give one is ignored (the read itself reports what is wrong).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

#: Ranges closer than this are hinted as one (0: only touching or overlapping ones, so
#: no byte outside the records asked for is hinted).
MERGE_GAP = 0


def map_base(path: str) -> int | None:
    """The address where this process maps ``path`` from its first byte (Linux), or None."""
    if sys.platform != "linux":
        return None
    real = os.path.realpath(path)
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].rstrip("\n") == real and int(fields[2], 16) == 0:
                    return int(fields[0].split("-")[0], 16)
    except OSError:
        return None
    return None


def merged(ranges: Iterable[tuple[int, int]], gap: int = MERGE_GAP) -> list[tuple[int, int]]:
    """(offset, length) ranges sorted, with ranges closer than ``gap`` merged."""
    out: list[tuple[int, int]] = []
    for offset, length in sorted(ranges):
        if out and offset <= out[-1][0] + out[-1][1] + gap:
            start = out[-1][0]
            out[-1] = (start, max(out[-1][1], offset + length - start))
        else:
            out.append((offset, length))
    return out


def will_need(fd: int, ranges: Iterable[tuple[int, int]]) -> int:
    """``posix_fadvise(WILLNEED)`` over each of ``ranges`` of the file ``fd``; the number
    given (0 where the platform has no ``posix_fadvise``)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return 0
    given = 0
    for offset, length in ranges:
        try:
            advise(fd, offset, length, os.POSIX_FADV_WILLNEED)
        except OSError:
            continue
        given += 1
    return given
