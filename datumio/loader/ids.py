"""The record ids of the batches the Loader plans, drawn from its sampler a window at a time."""

from __future__ import annotations

import numpy as np

from datumio.sampling import Sampler

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

    def clear(self) -> None:
        """Forget the window: the sampler was loaded with a state (an epoch resumed on
        another world size draws other ids at the same positions)."""
        self._epoch = -1

    def get(self, epoch: int, lo: int, hi: int) -> np.ndarray:
        """The ids at positions ``lo`` to ``hi`` (excluded) of ``epoch``."""
        if epoch != self._epoch or lo < self._lo or hi > self._hi:
            stop = max(hi, min(lo + self._size, len(self._sampler)))
            ids = self._sampler.ids_at(np.arange(lo, stop, dtype=np.int64), epoch)
            self._ids, self._epoch, self._lo, self._hi = ids, epoch, lo, stop
        return self._ids[lo - self._lo : hi - self._lo]
