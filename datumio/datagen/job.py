"""The original API's job on the loader's worker pool: samples of an array or of files,
through a :class:`~datumio.datagen.recipe.Recipe`, into whole-batch output slots.

Plain data, pickled once to each worker: the recipe, where the input is (a shared array's
spec, never the array; or the file paths) and the output slots' shape. Each plan's ``ids``
are sample indices and its ``positions`` the pass positions that seed each sample's
augmentation, exactly as when the generator runs in the calling thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from datumio.datagen.recipe import Recipe
from datumio.loader.job import RecordFailure
from datumio.loader.messages import BatchDone, BatchPlan
from datumio.loader.slots import Segment, SharedArraySpec, attach_array


@dataclass(frozen=True, eq=False)
class ArrayJob:
    """Fill ``(batch_size, *sample_shape)`` slots of ``dtype`` from ``source``."""

    recipe: Recipe
    #: The shared input array, or the file paths (``DataGenerator``).
    source: SharedArraySpec | tuple[str, ...]
    batch_size: int
    sample_shape: tuple[int, ...]
    dtype: str
    seed: int
    #: The sample whose shape the slots were laid out for (named when one does not fit).
    first: int

    def open(self, worker_id: int, slots: list[Segment]) -> ArrayFiller:
        return ArrayFiller(self, worker_id, slots)


class ArrayFiller:
    """One worker's view of the input and of the output slots."""

    def __init__(self, job: ArrayJob, worker_id: int, slots: list[Segment]) -> None:
        self.job = job
        self.worker_id = worker_id
        self._input: Segment | None = None
        self.source: object = job.source
        if isinstance(job.source, SharedArraySpec):
            self.source, self._input = attach_array(job.source)
        count = job.batch_size * int(np.prod(job.sample_shape, dtype=np.int64))
        self.outputs = [
            np.frombuffer(seg.mmap, job.dtype, count).reshape(job.batch_size, *job.sample_shape)
            for seg in slots
        ]

    def fill(self, plan: BatchPlan) -> BatchDone:
        n = len(plan.ids)
        out = self.outputs[plan.slot][:n]
        at = [-1]
        try:
            self.job.recipe.fill(
                self.source,
                plan.ids,
                plan.positions,
                self.job.seed,
                out,
                first=self.job.first,
                at=at,
            )
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # sys.exit in a data_loader fails the batch, naming the sample (worker.py).
            raise RecordFailure(at[0]) from exc
        return BatchDone(plan.generation, plan.batch, plan.slot, self.worker_id, n)

    def advise(self, ids: np.ndarray) -> None:
        """In memory or plain files: nothing to hint."""

    def close(self) -> None:
        self.outputs = []
        self.source = None
        if self._input is not None:
            with contextlib.suppress(BufferError):
                self._input.close()
