"""One pass of a generator over its samples: the original's batch order, and where the
batches are made (in the calling thread, or on the loader's worker pool).

The order is the original's, index for index: ``range(len(X))``, shuffled in place when
``get_batch`` is called by ``numpy.random.RandomState(rng_seed).shuffle`` (by numpy's
global random state, ``numpy.random.shuffle``, when ``rng_seed`` is None); batch ``b``
holds positions ``b * batch_size`` to ``(b + 1) * batch_size`` of it, the last batch the
remainder.

On the pool, the pass runs the Loader's ordering loop
(:func:`datumio.loader.ordered.in_order`) over the Loader's worker pool, with the job
:class:`~datumio.datagen.job.ArrayJob` writing whole batches into shared-memory slots.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.augment.seeds import sample_rng
from datumio.checks import apply, choice, integer, non_negative_int, optional, positive_int
from datumio.datagen.job import ArrayJob
from datumio.datagen.recipe import Recipe
from datumio.errors import OptionError, WorkerError
from datumio.loader.job import WorkerConfig
from datumio.loader.messages import BatchFailed, BatchPlan
from datumio.loader.options import START_METHODS, check_worker_count
from datumio.loader.ordered import Pending, in_order
from datumio.loader.pool import ConfigFactory, Message, WorkerPool, worker_error
from datumio.loader.slots import SharedArray, SharedArraySpec, remove_stale_segments

#: Seeds ``numpy.random.RandomState`` takes, so the ones the original took.
SEED_MAX = 2**32 - 1
#: Longest single wait on the workers before checking for deaths again.
_POLL_S = 0.5
#: Times one batch may kill a worker (it is re-issued to a replacement) before the pass fails.
_MAX_RESTARTS = 3

_PASS_CHECKS = {
    "batch_size": positive_int,
    "rng_seed": optional(
        integer(0, SEED_MAX, want=f"None or an int from 0 to {SEED_MAX} (a RandomState seed)")
    ),
    "buffer_size": positive_int,
    "workers": optional(non_negative_int),
    "start_method": optional(choice(START_METHODS)),
}


@dataclass(frozen=True)
class PassOptions:
    """The checked arguments of ``get_batch`` that say how a pass runs."""

    batch_size: int = 32
    rng_seed: int | None = None
    buffer_size: int = 2
    workers: int | None = None
    start_method: str | None = None

    def __post_init__(self) -> None:
        apply(self, _PASS_CHECKS)
        if self.workers:
            check_worker_count(self.workers)


def pass_order(n: int, shuffle: bool, rng_seed: int | None) -> np.ndarray:
    """The original's sample order of a pass over ``n`` samples (module docstring)."""
    order = np.arange(n, dtype=np.int64)
    if shuffle:
        rng: Any = np.random if rng_seed is None else np.random.RandomState(rng_seed)
        rng.shuffle(order)
    return order


@dataclass(frozen=True, eq=False)
class Pass:
    """One pass: the samples, what is done to each, in which order, into which batches."""

    recipe: Recipe
    #: X: the samples (in memory), or what ``recipe.data_loader`` loads them from.
    source: Any
    labels: np.ndarray | None
    order: np.ndarray
    batch_size: int
    #: Sample at pass position ``t`` draws its random augmentation from ``(seed, t)``.
    seed: int
    dtype: np.dtype[Any]

    @property
    def num_batches(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def ids(self, batch: int) -> np.ndarray:
        lo = batch * self.batch_size
        return np.ascontiguousarray(self.order[lo : lo + self.batch_size], dtype=np.int64)

    def positions(self, batch: int) -> np.ndarray:
        lo = batch * self.batch_size
        return np.arange(lo, min(lo + self.batch_size, len(self.order)), dtype=np.int64)

    def sample_shape(self) -> tuple[int, ...]:
        """The shape of every sample of a batch: the first sample's, processed."""
        recipe = self.recipe
        x = recipe.sample(recipe.load(self.source, int(self.order[0])), sample_rng(self.seed, 0, 0))
        return (x.shape[2], x.shape[0], x.shape[1]) if recipe.chw_order else x.shape

    def batch(self, batch_x: np.ndarray, batch: int) -> Any:
        """What ``get_batch`` yields: ``batch_x``, or ``(batch_x, labels of the batch)``."""
        return batch_x if self.labels is None else (batch_x, self.labels[self.ids(batch)])


def run_here(p: Pass) -> Iterator[Any]:
    """The batches of ``p``, each made in the calling thread when it is asked for."""
    shape = p.sample_shape()
    first = int(p.order[0])
    for b in range(p.num_batches):
        ids = p.ids(b)
        out = np.empty((len(ids), *shape), p.dtype)
        p.recipe.fill(p.source, ids, p.positions(b), p.seed, out, first=first)
        yield p.batch(out, b)


def _failed(msg: BatchFailed) -> WorkerError:
    return worker_error(msg, "datagen", "sample")


class _PoolRuntime:
    """The worker pool and the segments of one pass: its input (an in-memory X) and one
    output slot per batch prepared ahead. Closed in the Loader's order (NOTE(shutdown) in
    ``loader/loader.py``): the workers stop before their segments go."""

    def __init__(self) -> None:
        self.slots: list[SharedArray] = []
        self.shared_x: SharedArray | None = None
        self.pool: WorkerPool | None = None

    def _input(self, p: Pass) -> SharedArraySpec | tuple[Any, ...]:
        if p.recipe.data_loader is not None:
            return tuple(np.asarray(p.source).tolist())  # paths: sent once to each worker
        arr = np.ascontiguousarray(p.source)
        if arr.dtype.hasobject:
            raise OptionError("X holds Python objects and cannot be shared: pass workers=0")
        self.shared_x = SharedArray.copy_of(arr, "x")
        return self.shared_x.spec

    def start(self, p: Pass, workers: int, ahead: int, method: str) -> WorkerPool:
        shape = tuple(p.sample_shape())
        remove_stale_segments()  # what a killed run left, as Loader.start does
        source = self._input(p)
        self.slots = [SharedArray((p.batch_size, *shape), p.dtype, f"out{k}") for k in range(ahead)]
        job = ArrayJob(p.recipe, source, p.batch_size, shape, p.dtype.str, p.seed, int(p.order[0]))
        template = WorkerConfig(
            worker_id=-1,
            job=job,
            slot_names=tuple(s.spec.name for s in self.slots),
            slot_bytes=self.slots[0].spec.nbytes,
            parent_pid=0,
            death_signal=False,
            readahead=0,
        )
        self.pool = WorkerPool(method, ConfigFactory(template, method), workers, _MAX_RESTARTS)
        self.pool.start()
        return self.pool

    def close(self) -> None:
        try:
            if self.pool is not None:
                self.pool.close()
        finally:
            for seg in (*self.slots, self.shared_x):
                if seg is not None:
                    seg.close()


def run_pool(p: Pass, workers: int, ahead: int, method: str) -> Iterator[Any]:
    """The batches of ``p`` made by ``workers`` processes, up to ``ahead`` batches ahead."""
    runtime = _PoolRuntime()
    try:
        pool = runtime.start(p, workers, ahead, method)
        yield from _in_order(p, pool, runtime.slots, ahead)
    finally:
        runtime.close()


def _in_order(p: Pass, pool: WorkerPool, slots: list[SharedArray], ahead: int) -> Iterator[Any]:
    pending: Pending = {}

    def take(msgs: list[Message]) -> None:
        for msg in msgs:
            if msg.batch < 0 and isinstance(msg, BatchFailed):
                raise _failed(msg)  # a worker could not start
            pool.forget(0, msg.batch)
            pending[msg.batch] = msg

    def dispatch(b: int) -> bool:
        # Batch b's slot held batch b - ahead, which was copied out before b was planned.
        take(pool.submit(BatchPlan(0, b, b % ahead, 0, p.ids(b), p.positions(b))))
        return True

    def wait() -> None:
        take(pool.wait(_POLL_S))

    for done in in_order(p.num_batches, ahead, dispatch, wait, pending, _failed):
        yield p.batch(slots[done.slot].view()[: done.count].copy(), done.batch)
