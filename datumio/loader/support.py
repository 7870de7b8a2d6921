"""Helpers of the loader's main process: worker configs, id windows, error texts, defaults."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace

import numpy as np

from datumio.augment.spec import Transform
from datumio.errors import WorkerError
from datumio.loader.messages import BatchFailed, WorkerConfig
from datumio.sampling import Sampler
from datumio.shards.dataset import Dataset

#: Batches of record ids computed per ``Sampler.ids_at`` call: one call has a fixed cost
#: (key derivation) of a few hundred microseconds, so ids are drawn for a window at a time.
ID_WINDOW_BATCHES = 32


class IdWindow:
    """Record ids of a window of positions, drawn ahead in one vectorised sampler call."""

    def __init__(self, sampler: Sampler, size: int) -> None:
        self._sampler = sampler
        self._size = size
        self._epoch = -1
        self._lo = self._hi = 0
        self._ids = np.empty(0, dtype=np.int64)

    def get(self, epoch: int, lo: int, hi: int) -> np.ndarray:
        if epoch != self._epoch or lo < self._lo or hi > self._hi:
            stop = max(hi, min(lo + self._size, len(self._sampler)))
            self._ids = self._sampler.ids_at(np.arange(lo, stop, dtype=np.int64), epoch)
            self._epoch, self._lo, self._hi = epoch, lo, stop
        return self._ids[lo - self._lo : hi - self._lo]


@dataclass(frozen=True)
class ConfigFactory:
    """Builds a worker's config at its (re)start from one template: the parent pid and the
    death signal depend on where and when the worker starts."""

    template: WorkerConfig
    method: str

    def __call__(self, worker_id: int) -> WorkerConfig:
        return replace(
            self.template,
            worker_id=worker_id,
            parent_pid=0 if self.method == "forkserver" else os.getpid(),
            death_signal=threading.current_thread() is threading.main_thread(),
        )


def worker_error(msg: BatchFailed) -> WorkerError:
    where = f"batch {msg.batch}" if msg.batch >= 0 else "start-up"
    record = f", record {msg.record} (shard {msg.shard})" if msg.record >= 0 else ""
    text = (
        f"loader worker {msg.worker_id} failed at {where}{record}: {msg.error}\n\n"
        f"Worker traceback:\n{msg.traceback}"
    )
    return WorkerError(text, batch=msg.batch, record=msg.record, shard=msg.shard, tb=msg.traceback)


#: Output size when no transform is given and stored sizes differ (the ImageNet convention).
DEFAULT_SIZE = (224, 224)


def default_transform(dataset: Dataset) -> Transform:
    """The stored pixels as uint8 HWC when every record has one size, else a centre crop.

    Records of different stored sizes are resized (shorter side to 224) and centre-cropped to
    224x224, uint8 HWC, so ``Loader(path, batch_size)`` always yields batches; pass a
    :class:`Transform` to choose the size, flips, normalisation and layout.
    """
    shapes = dataset.shapes
    if len(shapes) and bool((shapes[:, :2] == shapes[0, :2]).all()):
        h, w = int(shapes[0, 0]), int(shapes[0, 1])
        return Transform(size=(h, w), layout="HWC", dtype="uint8")
    return Transform(size=DEFAULT_SIZE, layout="HWC", dtype="uint8")
