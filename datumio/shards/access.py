"""Opening a dataset's shards in one process: within a bound, fetched, pinned and hinted.

:class:`ShardAccess` is what a :class:`~datumio.shards.dataset.Dataset` reads its shards
through. It keeps at most ``max_open_shards`` of them open (:mod:`datumio.shards.handles`),
brings a remote dataset's shards into the cache first and pins them there while open
(:class:`ShardStore`), checks that each shard it opens belongs to the dataset the reader
opened (:func:`datumio.shards.identity.check_shard_identity`), turns a process that is
out of file handles into a :class:`~datumio.errors.FileLimitError` that names the limit,
and gives the kernel read-ahead hints (``POSIX_FADV_WILLNEED``) for records read next.

Thread/fork/pickle: not thread-safe; never pickled (the dataset makes a new one in each
process that reads); after a ``fork`` the child drops the parent's handles unclosed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from datumio.errors import DatumioError, FileLimitError
from datumio.shards import advice
from datumio.shards.base import ShardReader
from datumio.shards.handles import (
    OpenShards,
    ShardHandle,
    default_max_open_shards,
    out_of_files_message,
)

#: Downloads of one shard tried before an open that keeps losing it to eviction fails.
_FETCH_TRIES = 3


class ShardStore(Protocol):
    """Brings shards into the dataset directory on demand (a remote dataset's cache)."""

    def ensure(self, shard: int) -> str:
        """Make shard ``shard`` present (downloading it if needed); its local path."""
        ...

    def present(self, shard: int) -> bool:
        """Whether shard ``shard`` is whole in the directory now."""
        ...

    def prefetch(self, shards: Iterable[int]) -> None:
        """Start bringing ``shards`` in without waiting (a hint)."""
        ...

    def pin(self, shard: int) -> int | None:
        """A read-only fd of shard ``shard`` that keeps it from eviction while open; None
        when the shard is not there (evicted since :meth:`ensure`)."""
        ...

    def fetch(self, relative: str) -> str:
        """Bring the small file ``relative`` (an index file: a split's) into the directory
        now; its local path."""
        ...


def open_reader(path: str, backend: str) -> ShardReader:
    """A reader of the shard file at ``path`` (its backend imported on first use: h5py
    alone is 20 ms of ``import datumio``)."""
    if backend == "lmdb":
        from datumio.shards.lmdb_backend import LmdbShardReader

        return LmdbShardReader(path)
    from datumio.shards.hdf5_backend import Hdf5ShardReader

    return Hdf5ShardReader(path)


class ShardAccess:
    """The open shards of one dataset in one process (see the module docstring).

    Args:
        shard_path: the local path of a shard by number.
        backend: ``lmdb`` or ``hdf5``.
        store: fetches and pins a remote dataset's shards; None: every shard is local.
        max_open_shards: the bound (None: :func:`~datumio.shards.handles.
            default_max_open_shards` for this process's file limit).
        check: called with each shard number and its new reader before the shard is used;
            raises to refuse it (the reader is then closed).
    """

    def __init__(
        self,
        shard_path: Callable[[int], str],
        backend: str,
        store: ShardStore | None,
        max_open_shards: int | None,
        check: Callable[[int, ShardReader], None],
    ) -> None:
        self._shard_path = shard_path
        self._backend = backend
        self._store = store
        self._setting = max_open_shards
        self._check = check
        fds = 3 if store is not None else 2  # reader, hints (and a remote's pin)
        self._open = OpenShards(max_open_shards or default_max_open_shards(fds))

    def reader(self, shard: int) -> ShardReader:
        handle = self._open.get(shard)
        return (handle or self.handle(shard)).reader

    def handle(self, shard: int) -> ShardHandle:
        handle = self._open.get(shard)
        if handle is None:
            handle = self._open.open(shard, lambda: self._open_checked(shard))
        return handle

    def limit_error(self, exc: FileLimitError, where: str) -> FileLimitError:
        """``exc`` again, with where it happened, the limit and the ways out."""
        message = out_of_files_message(len(self._open), self._setting)
        return FileLimitError(f"{where}{exc}; {message}")

    def _open_checked(self, shard: int) -> ShardHandle:
        """Open ``shard`` (closing least used ones while the process is out of files) and
        check it before anything reads it."""
        while True:
            try:
                handle = self._open_handle(shard)
                break
            except FileLimitError as exc:
                if self._open.close_least_used(max(1, len(self._open) // 2)) == 0:
                    raise self.limit_error(exc, "") from None
        try:
            self._check(shard, handle.reader)
        except BaseException:
            handle.close()
            raise
        return handle

    def _open_handle(self, shard: int) -> ShardHandle:
        path = self._shard_path(shard)
        if self._store is None:
            return ShardHandle(open_reader(path, self._backend))
        for _ in range(_FETCH_TRIES):
            # Another process sharing a size-limited cache may evict the shard between its
            # landing and our pin; once pinned, no eviction takes it.
            self._store.ensure(shard)
            pin = self._store.pin(shard)
            if pin is None:
                continue
            try:
                return ShardHandle(open_reader(path, self._backend), pin=pin)
            except BaseException:
                os.close(pin)
                raise
        raise DatumioError(
            f"{path}: evicted {_FETCH_TRIES} times between download and open; the cache "
            "limit is too small for the processes sharing it (raise cache_limit)"
        )

    def advise(self, by_shard: Mapping[int, list[int]]) -> int:
        """Hint the kernel to read the records ``by_shard`` (shard -> local ids) ahead.

        Best effort: a remote shard not in the cache yet is only queued for download, a
        shard that cannot say where its records lie gets no hint, and no open shard is
        closed to hint another. Returns the number of byte ranges hinted.
        """
        if self._store is not None:  # coming shards download in the background
            self._store.prefetch(sorted(by_shard))
            by_shard = {s: v for s, v in by_shard.items() if self._store.present(s)}
        given = 0
        for shard, locals_ in by_shard.items():
            if shard not in self._open and self._open.full:
                continue
            try:
                handle = self.handle(shard)
                spans = handle.reader.byte_ranges(sorted(locals_))
            except (DatumioError, OSError):
                continue
            if handle.hint_fd is None:
                try:
                    handle.hint_fd = os.open(self._shard_path(shard), os.O_RDONLY)
                except OSError:
                    continue
                # Once per open: what every lookup reads first (LMDB's tree pages).
                index_ranges = getattr(handle.reader, "index_ranges", None)
                if index_ranges is not None:
                    advice.will_need(handle.hint_fd, advice.merged(index_ranges()))
            given += advice.will_need(handle.hint_fd, advice.merged(spans))
        return given

    def retain(self, keep: Iterable[int]) -> list[int]:
        """Close every open shard not in ``keep``; the shards closed."""
        wanted = set(keep)
        closed = [shard for shard in self._open if shard not in wanted]
        for shard in closed:
            self._open.close(shard)
        return closed

    def close(self) -> None:
        self._open.close_all()

    def forget(self) -> None:
        """Drop every handle unclosed (in a forked child: they are the parent's)."""
        self._open.forget()
