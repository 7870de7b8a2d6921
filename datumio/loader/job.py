"""What a worker process runs: a picklable :class:`Job` that opens a :class:`Filler`.

The pool (:mod:`datumio.loader.pool`) and the worker loop (:mod:`datumio.loader.worker`)
know nothing of datasets or images: they start processes, send :class:`BatchPlan` s, watch
for deaths and stop. A job says what filling a slot means. The Loader's job reads records
from shards (:class:`datumio.loader.fill.DatasetJob`); the original API's reads an in-memory
array or files (:class:`datumio.datagen.job.ArrayJob`). Both get the same restarts,
parent watch, typed messages and shutdown.

Thread/fork/pickle: a job is plain data, pickled once to each worker at its start; the
filler it opens lives in that worker only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
