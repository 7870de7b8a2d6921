"""What a worker process runs: a picklable :class:`Job` that opens a :class:`Filler`.

The pool (:mod:`datumio.loader.pool`) and the worker loop (:mod:`datumio.loader.worker`)
know nothing of datasets or images: they start processes, send :class:`BatchPlan` s, watch
for deaths and stop. A job says what filling a slot means. The Loader's job reads records
from shards (:class:`datumio.loader.fill.DatasetJob`); the original API's reads an in-memory
array or files (:class:`datumio.datagen.job.ArrayJob`). Both get the same restarts,
parent watch, typed messages and shutdown.

Thread/fork/pickle: a job is plain data, pickled once to each worker at its start; the
filler it opens lives in that worker only. A job that refers to code of the caller's
``__main__`` (a ``user_fn`` in a script, a heredoc or a notebook) or to a lambda or nested
function travels by value (:func:`portable`, with cloudpickle), so workers never import, and
so never re-run, the caller's script. Either way a job reaches its worker sealed
(:class:`Sealed`): an error while it is unpickled there is reported as the worker's start
failure.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from datumio.loader.messages import BatchDone, BatchPlan
from datumio.loader.slots import Segment


class Filler(Protocol):
    """Fills slots in one worker process."""

    def fill(self, plan: BatchPlan) -> BatchDone:
        """Write the batch ``plan`` into its slot. An exception fails that batch only;
        raise :class:`RecordFailure` from it to name the record (and shard) at fault."""
        ...

    def advise(self, ids: np.ndarray) -> None:
        """The records of a coming batch: start reading them (a hint; may do nothing)."""
        ...

    def close(self) -> None:
        """Release what :meth:`Job.open` took (files, mapped inputs)."""
        ...


class Job(Protocol):
    """Picklable description of the work, opened once in each worker."""

    def open(self, worker_id: int, slots: list[Segment]) -> Filler:
        """The filler of worker ``worker_id`` writing into ``slots`` (mapped, in ring order)."""
        ...


class RecordFailure(Exception):
    """Raised by a filler, from the real error, to name the record that failed."""

    def __init__(self, record: int, shard: str = "") -> None:
        super().__init__(record, shard)
        self.record = record
        self.shard = shard


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, sent once at start: its job and where the slots are."""

    worker_id: int
    job: Job
    slot_names: tuple[str, ...]
    slot_bytes: int
    #: The pid os.getppid() must return at start (0: not known, as under forkserver, whose
    #: workers are children of the fork server).
    parent_pid: int
    #: Ask the kernel for SIGKILL when the parent thread dies (Linux; only when the loader
    #: was started from the main thread, since the signal follows the creating thread).
    death_signal: bool
    #: Batches whose records this worker hints ahead (its current one and those already
    #: queued to it, :meth:`Filler.advise`); 0: no hints. See :mod:`datumio.shards.advice`.
    readahead: int = 3


class Sealed:
    """A job that travels as bytes, so that a failure to unpickle it in the worker is
    reported by the worker, with its message.

    Multiprocessing unpickles a worker's arguments before the worker's own code runs (the
    job is unpickled there, as early as ever, with SIGINT blocked): an error at that point
    (a dataset replaced since the Loader opened it, a module the worker cannot import) would
    only be printed to stderr. :func:`_received` keeps the bytes instead, and :meth:`open`,
    in the worker loop, unpickles them again to raise the error where the worker reports its
    start failure to the main process. A job whose code lives in the caller's ``__main__``
    is sealed by cloudpickle, so its functions go as code.
    """

    def __init__(self, job: Job | None, payload: bytes) -> None:
        self.job = job
        self.payload = payload

    def open(self, worker_id: int, slots: list[Segment]) -> Filler:
        if self.job is None:  # it failed to unpickle at start: raise that here
            self.job = pickle.loads(self.payload)  # the parent's bytes, never a file
        return self.job.open(worker_id, slots)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (_received, (self.payload,))


def _received(payload: bytes) -> Sealed:
    """The sealed job as a worker receives it: unpickled, or (when that fails) its bytes,
    for :meth:`Sealed.open` to raise the error again."""
    try:
        return Sealed(pickle.loads(payload), payload)
    except Exception:
        return Sealed(None, payload)


def portable(job: Job) -> Job:
    """``job`` :class:`Sealed`: by value (cloudpickle) when plain pickling would send a
    reference into the caller's ``__main__`` or cannot send it at all (a lambda, a nested
    function), so the workers need nothing of the caller's script; else plainly."""
    finder = _MainFinder()
    try:
        finder.dump(job)
        if not finder.found:
            return Sealed(job, _plain(job))
    except (pickle.PicklingError, AttributeError, TypeError):
        pass  # cloudpickle may send it; if not, its error says what cannot travel
    try:
        import cloudpickle
    except ImportError:  # a dependency; without it the caller's __main__ must be importable
        return Sealed(job, _plain(job))
    try:
        return Sealed(job, cloudpickle.dumps(job))
    except (pickle.PicklingError, AttributeError, TypeError):
        return job  # starting the worker raises the plain pickling error, with advice


def _plain(job: Job) -> bytes:
    """``job`` pickled by value. Not ``ForkingPickler``: once torch is imported it sends a
    tensor (inside a torchvision pipeline, say) as a file descriptor that only the first
    process to unpickle it receives, and every worker unpickles the same bytes."""
    return pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)


class _MainFinder(pickle.Pickler):
    """Pickles into nothing, noting every function or class of ``__main__`` on the way."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
        self.found: list[str] = []

    def reducer_override(self, obj: Any) -> Any:
        if getattr(obj, "__module__", None) == "__main__" and callable(obj):
            self.found.append(getattr(obj, "__qualname__", repr(obj)))
        return NotImplemented
