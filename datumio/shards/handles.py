"""A bounded set of open shards: the least recently used shard handles of a dataset.

Every open shard holds file descriptors: its reader (an LMDB environment or an HDF5 file:
one each), the descriptor its read-ahead hints go through, and for a remote dataset the pin
that keeps it from eviction. A process that touches thousands of shards would run out of
them (``RLIMIT_NOFILE``, 1,024 by default on Linux). :class:`OpenShards` keeps at most
``capacity`` shards open and closes the least recently used one to make room; reopening it
later costs one open (its metadata stays cached by the dataset).

The default capacity gives a quarter of the soft limit to one dataset's shards, so a
process can hold two datasets and still has half its handles for everything else (pipes,
sockets, shared memory, the framework). When the limit is high (it often is in
containers), every shard fits and nothing is ever closed: the cost per read is a dict
lookup and a move to the end of an ordered dict.

Thread/fork/pickle: not thread-safe (a :class:`~datumio.shards.dataset.Dataset` is not
shared by threads that read); never pickled; after a fork the dataset drops it unclosed
(the handles are the parent's).
"""

from __future__ import annotations

import collections
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from datumio.errors import OptionError
from datumio.shards.base import ShardReader

#: File descriptors one open local shard may hold: its reader and its read-ahead fd.
FDS_PER_SHARD = 2
#: Never fewer open shards than this, whatever the limit (a record reads one shard at a
#: time; two keep a batch that alternates between shards from reopening on every record).
MIN_OPEN_SHARDS = 2
#: Share of the soft ``RLIMIT_NOFILE`` one dataset's shards may take by default.
LIMIT_SHARE = 4


def file_limit() -> tuple[int | None, int | None]:
    """(soft, hard) ``RLIMIT_NOFILE`` of this process; None for unlimited or unknown."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def value(v: int) -> int | None:
        return None if v == resource.RLIM_INFINITY or v < 0 else int(v)

    return value(soft), value(hard)


def default_max_open_shards(fds_per_shard: int = FDS_PER_SHARD) -> int:
    """The default capacity: a quarter of the soft file limit in shards (see the module
    docstring); effectively unbounded when the limit is."""
    soft, _ = file_limit()
    if soft is None:
        return sys.maxsize
    return max(MIN_OPEN_SHARDS, soft // (LIMIT_SHARE * fds_per_shard))


def check_max_open_shards(value: int | None) -> int | None:
    """``max_open_shards`` as given (None: the default), checked.

    Raises:
        OptionError: not a positive int.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(
            f"max_open_shards={value!r}; give a positive int (open shards kept per process "
            "for one dataset), or None for a quarter of the open-file limit"
        )
    return value


def files_open() -> int | None:
    """How many file descriptors this process has open now (None where unknown)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # less the descriptor listing them
        except OSError:
            continue
    return None


@dataclass
class ShardHandle:
    """One open shard: its reader and the descriptors that go with it."""

    reader: ShardReader
    #: Keeps a remote dataset's shard from eviction while it is open (None: local).
    pin: int | None = None
    #: Read-only descriptor the read-ahead hints go through (opened on first hint).
    hint_fd: int | None = None

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            for fd in (self.pin, self.hint_fd):
                if fd is not None:
                    os.close(fd)


class OpenShards:
    """At most ``capacity`` open shards, least recently used closed first (every step O(1):
    an ordered dict, least recently used first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._open: collections.OrderedDict[int, ShardHandle] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, shard: int) -> bool:
        return shard in self._open

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._open))

    @property
    def full(self) -> bool:
        return len(self._open) >= self.capacity

    def get(self, shard: int) -> ShardHandle | None:
        """The handle of ``shard`` if it is open (marked as just used), else None."""
        handle = self._open.get(shard)
        if handle is not None and len(self._open) >= self.capacity:
            # Only the order of a full set decides anything: below it, no reordering.
            self._open.move_to_end(shard)
        return handle

    def open(self, shard: int, opener: Callable[[], ShardHandle]) -> ShardHandle:
        """The handle of ``shard``, opened by ``opener`` after closing the least recently
        used shards the capacity needs closed."""
        handle = self.get(shard)
        if handle is not None:
            return handle
        while len(self._open) >= self.capacity:
            self.close_least_used(1)
        handle = self._open[shard] = opener()
        return handle

    def close_least_used(self, count: int) -> int:
        """Close the ``count`` least recently used shards; how many were closed."""
        closed = 0
        while closed < count and self._open:
            _, handle = self._open.popitem(last=False)
            handle.close()
            closed += 1
        return closed

    def close(self, shard: int) -> None:
        handle = self._open.pop(shard, None)
        if handle is not None:
            handle.close()

    def close_all(self) -> None:
        handles, self._open = list(self._open.values()), collections.OrderedDict()
        errors = []
        for handle in handles:
            try:
                handle.close()
            except Exception as exc:  # close every one, then report the first
                errors.append(exc)
        if errors:
            raise errors[0]

    def forget(self) -> None:
        """Drop every handle without closing it (after a fork: they are the parent's)."""
        self._open = collections.OrderedDict()


def out_of_files_message(open_shards: int, setting: int | None) -> str:
    """What to tell a user whose process ran out of file handles: the limit, what is open,
    and the two ways out."""
    soft, hard = file_limit()
    now = files_open()
    shown = "unlimited" if soft is None else str(soft)
    chosen = f"max_open_shards={setting}" if setting else "max_open_shards by default"
    raise_to = f"ulimit -n {hard}" if hard is not None and hard != soft else "ulimit -n"
    return (
        f"the process has {'its' if now is None else now} files open against its limit "
        f"(RLIMIT_NOFILE {shown}), {open_shards} of them this dataset's shards ({chosen}): "
        "lower max_open_shards (datumio.open(path, max_open_shards=N), "
        "Loader(..., max_open_shards=N)) or raise the limit "
        f"({raise_to}, or what starts the process)"
    )
