"""Telling a stuck worker from a slow one, and saying so before the batch timeout.

Each worker writes into the slot it fills which batch it is on, how many records it has
finished and which record it is reading (``PROGRESS_FIELDS``). The main process looks at
that record whenever it waits: a worker whose record has not moved for a tenth of
``batch_timeout_s`` (at least one second) is reported once, with its pid, the batch, the
record and its shard, in a logged warning; the loader still raises
:class:`~datumio.errors.LoaderError` only when ``batch_timeout_s`` passes without a batch.
"""

from __future__ import annotations

import logging
import time

from datumio.errors import printable
from datumio.loader.pool import WorkerPool
from datumio.loader.slots import SlotRing
from datumio.shards.dataset import Dataset

logger = logging.getLogger("datumio")

#: The share of ``batch_timeout_s`` without progress after which a worker is reported.
STALL_FRACTION = 0.1
_MIN_STALL_S = 1.0


class StallWatch:
    """Reports each worker that makes no progress for ``stall_s`` seconds, once per stall."""

    def __init__(self, dataset: Dataset, batch_timeout_s: float) -> None:
        self.dataset = dataset
        self.batch_timeout_s = batch_timeout_s
        self.stall_s = max(_MIN_STALL_S, STALL_FRACTION * batch_timeout_s)
        self._seen: dict[int, tuple[tuple[int, ...], float, bool]] = {}

    def check(self, pool: WorkerPool, ring: SlotRing) -> None:
        """Look at every busy worker; warn about one stuck since the last change."""
        now = time.monotonic()
        for k, pid, plan in pool.current():
            state = (pid, plan.generation, plan.batch, *ring.progress(plan.slot))
            last = self._seen.get(k)
            if last is None or last[0] != state:
                self._seen[k] = (state, now, False)
            elif not last[2] and now - last[1] >= self.stall_s:
                self._seen[k] = (state, last[1], True)
                logger.warning(
                    "datumio loader: %s: a decoder may be stuck on that record, or the process "
                    "is stopped (SIGSTOP, a debugger) or starved of CPU or memory; the loader "
                    "raises LoaderError if no batch arrives within batch_timeout_s=%g s",
                    self.describe(k, now),
                    self.batch_timeout_s,
                )

    def describe(self, k: int, now: float | None = None) -> str:
        """What worker ``k`` was last seen doing, and for how long."""
        state, since, _ = self._seen.get(k, ((), time.monotonic(), False))
        if len(state) < 7:
            return f"worker {k} has not reported progress"
        pid, generation, batch, slot_generation, slot_batch, done, record = state
        idle = (now or time.monotonic()) - since
        if (slot_generation, slot_batch) != (generation, batch) or record < 0:
            doing = f"has not started batch {batch}"
        else:
            doing = f"is on record {record}{self._shard(record)} of batch {batch} ({done} done)"
        return f"worker {k} (pid {pid}) {doing}, without progress for {idle:.1f} s"

    def busy(self, pool: WorkerPool) -> list[str]:
        """What each busy worker was last seen doing (for the timeout error)."""
        now = time.monotonic()
        return [self.describe(k, now) for k, _, _ in pool.current() if k in self._seen]

    def _shard(self, record: int) -> str:
        try:
            shard = self.dataset.locate(record)[0]
        except (IndexError, ValueError):
            return ""
        return f" (shard {printable(self.dataset.shard_path(shard))})"
