"""Keras 3 adapter: a ``keras.utils.PyDataset`` over a :class:`datumio.Loader`.

``keras`` is imported the first time ``KerasDataset`` is looked up (module ``__getattr__``).

.. code-block:: python

    spec = datumio.Transform(size=(64, 64), layout="HWC")  # Keras is channels-last
    with datumio.Loader("out.lmdb", 32, transform=spec) as loader:
        model.fit(KerasDataset(loader), epochs=10, shuffle=False)

Access semantics. ``ds[i]`` is always batch ``i`` of the current epoch of the loader's plan
(the same records and pixels however it is reached), so it is a pure function of ``i``
within an epoch, as ``PyDataset`` requires:

* **in order** (``0, 1, 2, ...``, what ``fit(shuffle=False)`` does) the batches stream from
  the loader's workers with prefetching;
* **the same index again** (Keras peeking at a batch, a retry) returns the batch it returned
  last, without work;
* **any other index** seeks: the loader restarts at that batch (prefetched batches are
  dropped), which costs about one batch of latency, and a ``UserWarning`` says so once
  (not for a restart at batch 0: Keras's TensorFlow backend reads batches 0 and 1 for the
  dataset's signature, then starts training at 0; that one restart is expected).
  ``fit(shuffle=True)`` (Keras's default) requests indices out of order every time: pass
  ``shuffle=False``, the loader's plan is already shuffled (and balanced).

``on_epoch_end()`` moves the loader to the next epoch once the epoch's last batch was
served (Keras also calls it after peeking at batch 0, which must not skip an epoch); use
whole epochs (no ``steps_per_epoch`` shorter than ``len(ds)``). Only ``(images, labels)`` are
returned; loader extras (ids, groups) would be read by Keras as sample weights.

Thread/fork/pickle: one ``KerasDataset`` serves one thread at a time (a lock guards it); it
refuses ``workers > 1`` and ``use_multiprocessing=True``: datumio has its own worker pool.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from datumio.errors import OptionError
from datumio.loader import Loader

__all__ = ["KerasDataset"]  # noqa: F822 (built on first use by __getattr__)


class _Stream:
    """Batch ``i`` of a loader's current epoch: streamed in order, seeking otherwise."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        self.epoch = loader.epoch
        self._it: Iterator[tuple[np.ndarray, ...]] | None = None
        #: The batch index the live iterator (or a fresh one) yields next.
        self._next = loader.position // loader.options.batch_size
        self._last: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None
        self.seeks = 0

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.loader)
        if not 0 <= index < n:
            raise IndexError(f"batch index {index} out of range for {n} batches per epoch")
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        it = self._it
        if it is None and index == self._next:
            it = self._it = iter(self.loader)  # starts at the loader's position
        elif it is None or index != self._next:
            self.seeks += 1
            it = self._seek(index)
        batch = next(it)
        self._next = index + 1
        pair = (batch[0], batch[1])
        self._last = (index, pair)
        return pair

    def _seek(self, index: int) -> Iterator[tuple[np.ndarray, ...]]:
        self.close()
        state = self.loader.state_dict()
        position = index * self.loader.options.batch_size
        state["epoch"] = state["sampler"]["epoch"] = self.epoch
        state["position"] = state["sampler"]["position"] = position
        self.loader.load_state_dict(state)
        self._it = iter(self.loader)
        self._next = index
        return self._it

    def next_epoch(self) -> None:
        """Move to the next epoch once its last batch was served; else keep the place.

        Keras calls ``on_epoch_end`` after peeking at batch 0 too (before training), and
        that must not skip an epoch.
        """
        if self._last is None or self._last[0] != len(self.loader) - 1:
            return
        self.close()
        self.epoch += 1
        self._next = 0
        self.loader.set_epoch(self.epoch)

    def close(self) -> None:
        it, self._it, self._last = self._it, None, None
        close = getattr(it, "close", None)
        if close is not None:
            close()  # gives the slots of its prefetched batches back


@functools.cache
def _keras_dataset_class() -> type:
    import keras

    class KerasDataset(keras.utils.PyDataset):
        """A Keras 3 ``PyDataset`` of a :class:`datumio.Loader`'s batches (see module doc).

        Args:
            loader: a :class:`datumio.Loader`; use ``Transform(layout="HWC")`` for Keras's
                default channels-last layers.
            max_queue_size: passed to ``PyDataset``.

        Raises:
            OptionError: ``workers`` > 1 or ``use_multiprocessing=True`` is given.
        """

        def __init__(
            self,
            loader: Loader,
            workers: int = 1,
            use_multiprocessing: bool = False,
            max_queue_size: int = 10,
        ) -> None:
            if workers != 1 or use_multiprocessing:
                raise OptionError(
                    f"KerasDataset(workers={workers}, use_multiprocessing="
                    f"{use_multiprocessing}): the datumio Loader has its own worker pool; "
                    "keep workers=1, use_multiprocessing=False and set Loader(workers=...)"
                )
            if not isinstance(loader, Loader):
                raise OptionError(
                    f"KerasDataset wraps a datumio.Loader, got {type(loader).__name__}"
                )
            super().__init__(workers=1, use_multiprocessing=False, max_queue_size=max_queue_size)
            self.loader = loader
            self._stream = _Stream(loader)
            self._lock = threading.Lock()
            self._warned = False

        def __len__(self) -> int:
            return len(self.loader)

        @property
        def num_batches(self) -> int:
            return len(self.loader)

        @property
        def seeks(self) -> int:
            """Out-of-order requests so far (each restarted the loader at that batch)."""
            return self._stream.seeks

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            with self._lock:
                seeks = self._stream.seeks
                batch = self._stream.get(int(index))
                # A restart at batch 0 is Keras's TensorFlow backend reading its first
                # batches for the signature before training: expected, not worth a warning.
                if self._stream.seeks > seeks and index != 0 and not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"KerasDataset: batch {index} was requested out of order, so the "
                        "loader restarted there (prefetched batches dropped). The loader's "
                        "plan is already shuffled: pass shuffle=False to model.fit",
                        UserWarning,
                        stacklevel=2,
                    )
                return batch

        def on_epoch_end(self) -> None:
            with self._lock:
                self._stream.next_epoch()

        def close(self) -> None:
            """Drop the live iterator (its prefetched slots go back to the loader)."""
            with self._lock:
                self._stream.close()

    KerasDataset.__module__ = __name__
    KerasDataset.__qualname__ = "KerasDataset"
    return KerasDataset


def __getattr__(name: str) -> Any:
    if name == "KerasDataset":
        return _keras_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
