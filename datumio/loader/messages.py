"""The small frozen messages between the loader and its workers.

Only plain data crosses the pipes: ints, strings, small int64 arrays. A failure travels as
its formatted text (type, message, traceback), never as the exception object, so an
exception that cannot be pickled still reaches the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datumio.augment.spec import Transform
from datumio.loader.slots import SlotLayout
from datumio.shards.dataset import Dataset


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, sent once at start (the dataset pickles as its path)."""

    worker_id: int
    dataset: Dataset
    transform: Transform
    layout: SlotLayout
    slot_names: tuple[str, ...]
    seed: int
    strict: bool
    #: The pid os.getppid() must return at start (0: not known, as under forkserver, whose
    #: workers are children of the fork server).
    parent_pid: int
    #: Ask the kernel for SIGKILL when the parent thread dies (Linux; only when the loader
    #: was started from the main thread, since the signal follows the creating thread).
    death_signal: bool
    #: Batches whose records this worker hints to the kernel ahead (its current one and
    #: those already queued to it); 0: no hints. See :mod:`datumio.shards.advice`.
    readahead: int = 3


@dataclass(frozen=True)
class BatchPlan:
    """Fill ``slot`` with batch ``batch``: ``ids`` drawn at ``positions`` of ``epoch``.

    ``positions`` are epoch-plan positions (``rank_position * world_size + rank``); each
    sample's augmentation seed derives from (run seed, epoch, position) in the worker.
    """

    generation: int
    batch: int
    slot: int
    epoch: int
    ids: np.ndarray
    positions: np.ndarray


@dataclass(frozen=True)
class Stop:
    """Finish: close the shard handles and exit."""


@dataclass(frozen=True)
class Replacement:
    """A record that failed at read time and the record of the same class used instead."""

    failed: int
    used: int
    shard: str
    reason: str


@dataclass(frozen=True)
class BatchDone:
    generation: int
    batch: int
    slot: int
    worker_id: int
    count: int
    replacements: tuple[Replacement, ...] = ()


@dataclass(frozen=True)
class BatchFailed:
    """A worker raised while filling ``batch`` (-1: while starting)."""

    generation: int
    batch: int
    slot: int
    worker_id: int
    record: int
    shard: str
    error: str
    traceback: str
