"""The small frozen messages between the loader and its workers.

Only plain data crosses the pipes: ints, strings, small int64 arrays. A failure travels as
its formatted text (type, message, traceback), never as the exception object, so an
exception that cannot be pickled still reaches the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
class Ready:
    """A worker has mapped its slots and opened its job: from now on a death is a crash to
    recover from, not a start that cannot work."""

    worker_id: int


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
    #: JPEGs of the batch decoded in part / whole where they could have been (jpeg_roi.TALLY).
    regions: int = 0
    wholes: int = 0


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
