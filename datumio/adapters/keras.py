"""Keras 3 adapter: a ``keras.utils.PyDataset`` over a :class:`datumio.Loader`.

Importing this module imports ``keras`` (without it, an ``ImportError`` says how to install
it), so set ``KERAS_BACKEND`` before; ``import datumio`` and ``import datumio.adapters``
never import it.

.. code-block:: python

    spec = datumio.Transform(size=(64, 64), layout="HWC")  # Keras is channels-last
    with datumio.Loader("out.lmdb", 32, transform=spec) as loader:
        model.fit(KerasDataset(loader), epochs=10, shuffle=False)

Access semantics. ``ds[i]`` is always batch ``i`` of the current epoch of the loader's plan
(the same records and pixels however it is reached; in an epoch resumed mid-way, batch
``start_batch + i``), so it is a pure function of ``i`` within an epoch, as ``PyDataset``
requires:

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
whole epochs (no ``steps_per_epoch`` shorter than ``len(ds)``: a call after more batches
than a peek but before the last one warns). ``fit`` reads up to two batches before
training; in an epoch that short the first call after construction or ``load_state_dict``
is taken for ``fit``'s own and moves nothing. Only ``(images, labels)`` are returned; loader
extras (ids, groups) would be read by Keras as sample weights.

Resuming: ``state_dict(trained=batch + 1)`` in a callback's ``on_train_batch_end`` is the
place after the batches the model trained on; ``load_state_dict`` on a new ``KerasDataset``
makes its current epoch the rest of the saved one (``len(ds)`` counts what is left), to be
finished by a ``fit`` of its own (see :meth:`KerasDataset.load_state_dict`); so does a
``KerasDataset`` made over a Loader resumed mid-epoch.

Thread/fork/pickle: one ``KerasDataset`` serves one thread at a time (a lock guards it); it
refuses ``workers > 1`` and ``use_multiprocessing=True``: datumio has its own worker pool.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from datumio.adapters import _state
from datumio.adapters._install import missing
from datumio.errors import OptionError
from datumio.loader import Loader

try:
    import keras
except ImportError as exc:
    raise missing(__name__, "keras", exc) from exc

__all__ = ["KerasDataset"]

#: Batches ``fit`` may read before training (one to build the model, two for the TensorFlow
#: backend's signature), then it calls ``on_epoch_end``: no warning up to that many, and in
#: an epoch that short that call is not taken for the epoch's end (``_Stream.next_epoch``).
_PEEKED_BATCHES = 2


class _Stream:
    """Batch ``i`` of a loader's current epoch: streamed in order, seeking otherwise.

    Index 0 is the batch at ``origin`` records into the epoch: 0, or the place of a loader
    resumed mid-epoch, so that the first Keras epoch after a resume runs the rest of the
    saved epoch and ``num_batches`` counts only those batches.
    """

    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        self.size = loader.options.batch_size
        self._it: Iterator[tuple[np.ndarray, ...]] | None = None
        self._last: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None
        self.seeks = 0
        self.restart()

    def restart(self) -> None:
        """Take the loader's place as index 0; a place with no batch left in its epoch is
        the next epoch's start (else Keras would get an epoch of no batches)."""
        self.close()
        self.epoch, self.origin = self.loader.epoch, self.loader.position
        if self.origin and self.num_batches == 0:
            self.epoch, self.origin = self.epoch + 1, 0
            self.loader.set_epoch(self.epoch)
        #: The batch index the live iterator (or a fresh one) yields next.
        self._next = 0
        #: Batches of this epoch handed to Keras, as it counts them (the last index + 1).
        self.served = 0
        #: No ``on_epoch_end`` yet since the (re)start: the next one may be ``fit``'s own.
        self._fresh = True

    @property
    def num_batches(self) -> int:
        """Batches from ``origin`` to the end of the epoch."""
        left = max(len(self.loader.sampler) - self.origin, 0)
        full, rest = divmod(left, self.size)
        return full + (1 if rest and not self.loader.options.drop_last else 0)

    def place(self, index: int) -> int:
        """Records into the epoch where batch ``index`` starts (the epoch's end at most)."""
        return min(self.origin + index * self.size, len(self.loader.sampler))

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        n = self.num_batches
        if not 0 <= index < n:
            raise IndexError(f"batch index {index} out of range for {n} batches per epoch")
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        it = self._it
        here = (self.loader.epoch, self.loader.position)
        if it is None and index == self._next and here == (self.epoch, self.place(index)):
            it = self._it = iter(self.loader)  # starts at the loader's position
        elif it is None or index != self._next:
            self.seeks += 1
            it = self._seek(index)
        batch = next(it)
        self._next = self.served = index + 1
        pair = (batch[0], batch[1])
        self._last = (index, pair)
        return pair

    def _seek(self, index: int) -> Iterator[tuple[np.ndarray, ...]]:
        self.close()
        self.loader.load_state_dict(_state.moved(self.loader, self.epoch, self.place(index)))
        self._it = iter(self.loader)
        self._next = index
        return self._it

    def state_after(self, batches: int) -> dict[str, Any]:
        """The loader's state once ``batches`` of this epoch's indices were trained on."""
        return _state.moved(self.loader, self.epoch, self.place(batches))

    def next_epoch(self) -> None:
        """Move to the next epoch once its last batch was served; else keep the place.

        Keras calls ``on_epoch_end`` after peeking at batch 0 too (before training), and
        that must not skip an epoch. ``fit`` reads up to two batches to build the model
        (``_symbolic_build``, the TensorFlow backend's signature), then calls this before
        training: in an epoch of no more batches than that (an epoch resumed near its
        end, a tiny dataset) that call looks like the epoch's end, so the first call after
        the (re)start is taken for ``fit``'s and moves nothing.
        """
        fresh, self._fresh = self._fresh, False
        if fresh and 0 < self.served == self.num_batches <= _PEEKED_BATCHES:
            return
        if self.served != self.num_batches:
            if self.served > _PEEKED_BATCHES:
                warnings.warn(
                    f"KerasDataset.on_epoch_end() after batch {self.served} of "
                    f"{self.num_batches}: the epoch is not over, so the loader stays in it. "
                    "Use whole epochs (no steps_per_epoch below len(ds)); after "
                    "load_state_dict mid-epoch, finish that epoch with a fit() of its own "
                    "(docs/adapters.md, 'Resuming a run')",
                    UserWarning,
                    stacklevel=3,
                )
            return
        self.close()
        self.epoch, self.origin = self.epoch + 1, 0
        self._next = self.served = 0
        self.loader.set_epoch(self.epoch)

    def close(self) -> None:
        it, self._it, self._last = self._it, None, None
        close = getattr(it, "close", None)
        if close is not None:
            close()  # gives the slots of its prefetched batches back


class KerasDataset(keras.utils.PyDataset):
    """A Keras 3 ``PyDataset`` of a :class:`datumio.Loader`'s batches (see module doc).

    Args:
        loader: a :class:`datumio.Loader`; use ``Transform(layout="HWC")`` for Keras's
            default channels-last layers.
        workers: must stay 1 (the Loader has its own worker pool: ``Loader(workers=...)``).
        use_multiprocessing: must stay False, likewise.
        max_queue_size: passed to ``PyDataset``.

    Raises:
        OptionError: ``workers`` > 1 or ``use_multiprocessing=True`` is given, or the
            loader's dataset has no images.
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
            raise OptionError(f"KerasDataset wraps a datumio.Loader, got {type(loader).__name__}")
        if not loader.layout.images:
            raise OptionError(
                f"KerasDataset serves (images, labels), but {loader.dataset.path} has no "
                "images; iterate the Loader (batches (labels, *fields)) and build the "
                "model's inputs from its fields"
            )
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=max_queue_size)
        self.loader = loader
        self._stream = _Stream(loader)
        self._lock = threading.Lock()
        self._warned = False

    def __len__(self) -> int:
        return self._stream.num_batches

    @property
    def num_batches(self) -> int:
        """Batches of the current epoch: ``len(loader)``, or what is left of an epoch
        resumed mid-way (:meth:`load_state_dict`)."""
        return self._stream.num_batches

    @property
    def epoch(self) -> int:
        """The loader's epoch that ``ds[i]`` come from."""
        return self._stream.epoch

    @property
    def start_batch(self) -> int:
        """The batch of the epoch that ``ds[0]`` is: 0, except in an epoch resumed
        mid-way (then finish it with a ``fit`` of its own; see :meth:`load_state_dict`).
        """
        return -(-self._stream.origin // self._stream.size)

    def state_dict(self, trained: int | None = None) -> dict[str, Any]:
        """Where training is, for a checkpoint: the loader's state after the batches
        of the current epoch the model trained on.

        Args:
            trained: how many of this Keras epoch's batches the model trained on:
                ``batch + 1`` in a callback's ``on_train_batch_end(batch, logs)``.
                Default: the batches handed to Keras (the last index asked for + 1),
                which is the same on the torch backend (it asks for a batch when the
                step needs it); the TensorFlow backend, and JAX on an accelerator,
                read batches ahead of the step, so pass it there. Batches read ahead
                and not counted are served again after a resume.

        Returns:
            :meth:`datumio.Loader.state_dict`'s format, a fresh dict of JSON types only
            (``json.dump``, or a checkpoint dict); it loads into :meth:`load_state_dict`,
            a bare Loader or another adapter.

        Raises:
            OptionError: ``trained`` is not an int in ``[0, len(ds)]``.
        """
        with self._lock:
            stream = self._stream
            done = stream.served if trained is None else trained
            if isinstance(done, bool) or not isinstance(done, int | np.integer):
                raise OptionError(f"trained={trained!r}; give an int (batch + 1)")
            if not 0 <= done <= stream.num_batches:
                raise OptionError(
                    f"trained={trained!r} but this epoch has {stream.num_batches} "
                    "batches; give batch + 1 from on_train_batch_end(batch, logs)"
                )
            return stream.state_after(int(done))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` (or a Loader's or ``TorchIterable``'s state).

        Mid-epoch, the current epoch becomes the rest of the saved one: ``ds[0]`` is
        the batch after the last one trained on and ``len(ds)`` counts the batches
        left. Keras reads ``len(ds)`` once per ``fit`` call, so finish that epoch with
        a ``fit`` of its own, then go on with whole epochs::

            ds.load_state_dict(checkpoint["data"])
            if ds.start_batch:  # resumed mid-epoch
                model.fit(ds, initial_epoch=ds.epoch, epochs=ds.epoch + 1, shuffle=False)
            model.fit(ds, initial_epoch=ds.epoch, epochs=EPOCHS, shuffle=False)

        The model then sees exactly the batches of an uninterrupted run. A state at
        the end of an epoch resumes at the start of the next.

        Raises:
            OptionError: the state does not fit the loader (format, batch size, seed,
                sampler options; see :meth:`datumio.Loader.load_state_dict`).
        """
        with self._lock:
            self._stream.close()
            self.loader.load_state_dict(state)
            self._stream.restart()

    @property
    def seeks(self) -> int:
        """Out-of-order requests so far (each restarted the loader at that batch)."""
        return self._stream.seeks

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of the current epoch as ``(images, labels)`` (see module doc).

        Raises:
            IndexError: ``index`` is not in ``[0, len(ds))``.
        """
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
        """Move the loader to the next epoch once this epoch's last batch was served."""
        with self._lock:
            self._stream.next_epoch()

    def close(self) -> None:
        """Drop the live iterator (its prefetched slots go back to the loader)."""
        with self._lock:
            self._stream.close()
