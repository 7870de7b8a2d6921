"""Arrays in POSIX shared memory, and the small process pool of :mod:`datumio.datagen`.

:class:`SharedArray` puts an array in a POSIX shared-memory segment named
``datumio_<pid>_<token>_<tag>``: the creating process copies the data in once and is the
only one that unlinks it; workers attach by name (:func:`attach`) from a
:class:`SharedArraySpec` (name, shape, dtype), so only those few bytes cross a process
boundary, never the array.

:class:`BatchPool` runs ``workers`` processes for one ``get_batch`` pass. Each worker gets
its config once at start (the shared input's spec or the file paths, the recipe, the
output slots' spec) and then only ``(batch, slot, indices, positions, seed)`` tuples; it
fills the slot in place and answers ``("done", batch)`` or ``("error", batch, traceback)``.

NOTE(shutdown): :meth:`BatchPool.close` sends ``None`` to every worker, joins for 2 s, then
terminates and kills; then closes the pipes. The segments are unlinked after that by their
creator (:meth:`SharedArray.close`), so nothing writes into a segment that is gone. Workers
also exit on EOF of their pipe (the parent died); the multiprocessing resource tracker,
which registered the segments, unlinks them if the parent dies without closing.

Thread/fork/pickle: a SharedArray and a BatchPool belong to the process (and thread) that
created them and are not picklable; SharedArraySpec pickles.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import secrets
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

import numpy as np

from datumio.errors import LoaderError, WorkerError
from datumio.loader.pool import describe_exit, start_worker
from datumio.loader.slots import Segment, check_capacity

_JOIN_TIMEOUT_S = 2.0
_KILL_TIMEOUT_S = 1.0
#: Longest single wait for a worker's answer before checking that it is still alive.
_POLL_S = 0.5


@dataclass(frozen=True)
class SharedArraySpec:
    """What a process needs to map a :class:`SharedArray`: plain, picklable data."""

    name: str
    shape: tuple[int, ...]
    dtype: str


class SharedArray:
    """An array in a shared-memory segment created (and later unlinked) by this process.

    Built on the loader's :class:`~datumio.loader.slots.Segment`: /dev/shm capacity is
    checked and the pages reserved up front, and workers that attach never register the
    segment with a resource tracker (so none of them can unlink it).
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any, tag: str) -> None:
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = max(1, count * dt.itemsize)
        check_capacity(nbytes, 1, nbytes)
        name = f"datumio_{os.getpid()}_{secrets.token_hex(4)}_{tag}"
        self._segment: Segment | None = Segment(name, nbytes, create=True)
        self.spec = SharedArraySpec(name, tuple(int(v) for v in shape), dt.str)
        self.array: np.ndarray | None = _view(self._segment, self.spec)

    @classmethod
    def copy_of(cls, arr: np.ndarray, tag: str) -> SharedArray:
        """A shared copy of ``arr`` (one memcpy)."""
        shared = cls(arr.shape, arr.dtype, tag)
        np.copyto(shared.view(), arr)
        return shared

    def view(self) -> np.ndarray:
        if self.array is None:
            raise LoaderError(f"shared array {self.spec.name} is closed")
        return self.array

    def close(self) -> None:
        """Unlink and unmap (idempotent). Arrays handed out must be copies by now."""
        segment, self._segment, self.array = self._segment, None, None
        if segment is not None:
            segment.unlink()
            segment.close()


def _view(segment: Segment, spec: SharedArraySpec) -> np.ndarray:
    dt = np.dtype(spec.dtype)
    count = int(np.prod(spec.shape, dtype=np.int64))
    return np.frombuffer(segment.mmap, dtype=dt, count=count).reshape(spec.shape)


def attach(spec: SharedArraySpec) -> tuple[np.ndarray, Segment]:
    """Map an existing segment (worker side): the array and the handle to close later."""
    nbytes = max(1, int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize)
    segment = Segment(spec.name, nbytes, create=False)
    return _view(segment, spec), segment


class Recipe(Protocol):
    """Fills ``out`` with the processed samples ``indices`` of ``source`` (see datagen)."""

    def fill(
        self, source: Any, indices: np.ndarray, positions: np.ndarray, seed: int, out: np.ndarray
    ) -> None: ...


@dataclass(frozen=True)
class PoolConfig:
    """Sent once to each worker: where the input is, what to do, where to write."""

    recipe: Recipe
    source: SharedArraySpec | Sequence[str]
    slots: SharedArraySpec


def _serve(config: PoolConfig, conn: Connection, handles: list[Any]) -> None:
    source: Any = config.source
    if isinstance(config.source, SharedArraySpec):
        source, shm = attach(config.source)
        handles.append(shm)
    slots, shm = attach(config.slots)
    handles.append(shm)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        batch, slot, indices, positions, seed = task
        try:
            config.recipe.fill(source, indices, positions, seed, slots[slot, : len(indices)])
            conn.send(("done", batch))
        except Exception:
            conn.send(("error", batch, traceback.format_exc()))


def worker_main(config: PoolConfig, conn: Connection) -> None:
    """Serve batch tasks until ``None`` or EOF. Runs in the worker process."""
    handles: list[Segment] = []
    try:
        _serve(config, conn, handles)  # its array views are gone when it returns
    finally:
        for handle in handles:
            with contextlib.suppress(BufferError):
                handle.close()
        conn.close()


class BatchPool:
    """``workers`` processes filling output slots; batch ``b`` goes to worker ``b % workers``.

    Results are read in batch order from the worker that owns each batch, so batches come
    back in order without any reordering buffer.
    """

    def __init__(self, method: str, config: PoolConfig, workers: int) -> None:
        ctx = multiprocessing.get_context(method)
        self._procs: list[BaseProcess] = []
        self._conns: list[Connection] = []
        try:
            for k in range(workers):
                parent_end, child_end = ctx.Pipe(duplex=True)
                proc = ctx.Process(  # type: ignore[attr-defined]
                    target=worker_main,
                    args=(config, child_end),
                    name=f"datumio-datagen-{k}",
                    daemon=True,
                )
                self._conns.append(parent_end)
                start_worker(proc, method)
                self._procs.append(proc)
                child_end.close()
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def submit(
        self, batch: int, slot: int, indices: np.ndarray, positions: np.ndarray, seed: int
    ) -> None:
        self._conns[batch % len(self._conns)].send((batch, slot, indices, positions, seed))

    def result(self, batch: int) -> None:
        """Wait for ``batch``; raise WorkerError for its exception, LoaderError on a death."""
        k = batch % len(self._conns)
        conn, proc = self._conns[k], self._procs[k]
        while not conn.poll(_POLL_S):
            if not proc.is_alive():
                raise LoaderError(
                    f"datagen worker {proc.pid} died ({describe_exit(proc.exitcode)}) while "
                    f"preparing batch {batch}; the generator cannot go on (workers=0 runs in "
                    "this process)"
                )
        try:
            msg = conn.recv()
        except EOFError:
            proc.join(_KILL_TIMEOUT_S)
            raise LoaderError(
                f"datagen worker {proc.pid} died ({describe_exit(proc.exitcode)}) while "
                f"preparing batch {batch}"
            ) from None
        if msg[0] == "error":
            raise WorkerError(
                f"datagen worker failed on batch {batch}:\n{msg[2]}", batch=batch, tb=msg[2]
            )

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for proc in self._procs:
            proc.join(_JOIN_TIMEOUT_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(_KILL_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join(_KILL_TIMEOUT_S)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
