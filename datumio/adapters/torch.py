"""PyTorch adapters: a zero-copy ``IterableDataset`` over a Loader, and a ``Sampler``.

``torch`` is imported the first time ``TorchIterable`` or ``TorchSampler`` is looked up
(module ``__getattr__``), never by ``import datumio`` or ``import datumio.adapters.torch``.

.. code-block:: python

    from torch.utils.data import DataLoader
    from datumio.adapters.torch import TorchIterable

    with datumio.Loader("out.lmdb", 64, workers=2, transform=spec) as loader:
        for images, labels in DataLoader(TorchIterable(loader), batch_size=None):
            ...  # torch tensors viewing the loader's shared-memory slot

Thread/fork/pickle: a ``TorchIterable`` belongs to the process of its Loader (the Loader is
not picklable), so it refuses to run inside ``DataLoader`` worker processes: datumio has its
own pool. A ``TorchSampler`` is plain index arithmetic and pickles by value.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from datumio.adapters import _state
from datumio.errors import LoaderError, OptionError
from datumio.loader import Loader
from datumio.sampling import ClassIndex, Sampler

__all__ = ["TorchIterable", "TorchSampler"]  # noqa: F822 (built by __getattr__)

_NUM_WORKERS_MESSAGE = (
    "TorchIterable runs inside a DataLoader worker process (DataLoader(num_workers > 0)). "
    "datumio's Loader already decodes and augments in its own worker pool; wrap it as "
    "DataLoader(TorchIterable(loader), batch_size=None) with the default num_workers=0 and "
    "set the number of processes with Loader(workers=...)"
)


def _labels_of(dataset_or_labels: object) -> npt.ArrayLike | ClassIndex:
    """What :class:`Sampler` accepts: a datumio dataset, or a labels array.

    torchvision datasets keep labels in ``targets`` (``ImageFolder``, ``CIFAR10``).
    """
    if hasattr(dataset_or_labels, "labels") or hasattr(dataset_or_labels, "class_offsets"):
        return cast(ClassIndex, dataset_or_labels)
    targets = getattr(dataset_or_labels, "targets", None)
    if targets is not None:
        return np.asarray(targets)
    if isinstance(dataset_or_labels, np.ndarray | list | tuple):
        return np.asarray(dataset_or_labels)
    tolist = getattr(dataset_or_labels, "tolist", None)  # a torch tensor of labels
    if callable(tolist):
        return np.asarray(tolist())
    raise OptionError(
        f"TorchSampler needs a labels array, a datumio Dataset or a dataset with .targets "
        f"or .labels; got {type(dataset_or_labels).__name__}"
    )


@functools.cache
def _classes() -> tuple[type, type]:
    import torch
    from torch.utils.data import IterableDataset, get_worker_info
    from torch.utils.data import Sampler as _TorchSamplerBase

    class TorchIterable(IterableDataset):
        """An ``IterableDataset`` yielding a :class:`~datumio.Loader`'s batches as tensors.

        Use it as ``DataLoader(TorchIterable(loader), batch_size=None)`` (the loader
        batches; ``num_workers`` must stay 0, datumio has its own pool).

        Without ``device``, each batch is a tuple of tensors made with ``torch.from_numpy``
        on the arrays that view the loader's shared-memory slot: no copy. A tensor holds its
        numpy array, the array holds the slot, so a slot is reused only once every tensor of
        its batch is gone (keep as many batches as the loader has spare ``slots``).

        With ``device``, a transfer thread moves each batch there while the model runs
        (:mod:`datumio.adapters.torch_handoff`): on CUDA on its own stream, from a reused
        ring of page-locked buffers with ``pin_memory``, the slot given back as soon as it
        is copied. With ``finish_on_device`` (default) the workers write uint8 and the
        dataset mean/std, float conversion and layout run on the device in one fused op
        (:meth:`datumio.Loader.defer_finish`): a quarter of the bytes; images come out
        NCHW in ``channels_last`` memory format for a CHW Transform.

        Checkpoints: :meth:`state_dict` is the place of the last batch the loop received
        (not of batches read ahead); a new Loader and ``TorchIterable`` given it with
        :meth:`load_state_dict` continue with exactly the batches an uninterrupted run
        would have seen (``examples/resume_torch.py``).

        Args:
            loader: a :class:`datumio.Loader` (not started yet, for ``finish_on_device``).
            device: move every tensor there (``"cuda"``, ``torch.device``); None: stay on CPU.
            pin_memory: stage each batch in page-locked memory (CUDA) so the host-to-device
                copy is asynchronous. Without an accelerator it is skipped with a warning,
                like ``DataLoader(pin_memory=True)``.
            non_blocking: kept for compatibility: device copies are always asynchronous on
                the transfer thread's stream.
            finish_on_device: ship uint8 and normalise on ``device`` (when a device is given
                and the Transform's normalisation is per channel).
            dtype: the floating dtype of finished images (``torch.float32``; ``bfloat16``
                or ``float16`` halve the device memory of a batch).
            ahead: batches moved to the device ahead of the one being used.
            decoder: for ``Loader(decode="device")``: a function from a list of JPEG byte
                tensors (CPU uint8) to a list of CHW uint8 image tensors on ``device``;
                default ``torchvision.io.decode_jpeg(datas, device=device)`` (nvJPEG).
            as_dict: yield ``{name: tensor}`` named by ``loader.batch_names`` (``images``,
                ``labels``, record fields such as ``boxes`` and ``boxes_count``, extras)
                instead of a tuple.

        Raises:
            OptionError: iterated inside a ``DataLoader`` worker process.
        """

        def __init__(
            self,
            loader: Loader,
            device: Any = None,
            pin_memory: bool = False,
            non_blocking: bool = True,
            *,
            finish_on_device: bool = True,
            dtype: Any = None,
            ahead: int = 2,
            decoder: Any = None,
            as_dict: bool = False,
        ) -> None:
            super().__init__()
            if not isinstance(loader, Loader):
                raise OptionError(
                    f"TorchIterable wraps a datumio.Loader, got {type(loader).__name__}"
                )
            self.loader = loader
            self.device = None if device is None else torch.device(device)
            cuda = self.device is not None and self.device.type == "cuda"
            if cuda and not torch.cuda.is_available():
                raise OptionError(
                    f"TorchIterable(device={device!r}) but torch sees no CUDA device "
                    f"(torch {torch.__version__}); pass device=None (or 'cpu') to stay on "
                    "the CPU, or install a CUDA build of torch"
                )
            self.pin_memory = bool(pin_memory)
            self.non_blocking = bool(non_blocking)
            self.dtype = torch.float32 if dtype is None else dtype
            if not self.dtype.is_floating_point:
                raise OptionError(f"TorchIterable(dtype={dtype}); give a floating dtype")
            if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 1:
                raise OptionError(f"TorchIterable(ahead={ahead!r}); give a positive int")
            self.ahead = ahead
            self.decoder = decoder
            #: Yield ``{name: tensor}`` by ``loader.batch_names`` instead of a tuple.
            self.as_dict = bool(as_dict)
            self._transfer: Any = None
            #: The engine of device copies (tests may set a fake one before iterating).
            self.engine: Any = None
            if self.device is not None and finish_on_device:
                with contextlib.suppress(LoaderError):
                    loader.defer_finish()

        def __len__(self) -> int:
            return len(self.loader)

        def set_epoch(self, epoch: int) -> None:
            self.loader.set_epoch(epoch)

        def state_dict(self) -> dict[str, Any]:
            """Where the training loop is: the loader's state after the last batch this
            iterable yielded, for a checkpoint.

            Batches read ahead but not yet yielded are not counted, so a resume serves
            them again: the loader's own prefetch (it counts a batch only when it yields
            it) and, with a ``device``, the batches the transfer thread has moved ahead
            (``loader.state_dict()`` counts those; this does not). Call it between steps,
            inside the loop or after leaving it with ``break``; once a loop has run an epoch
            to its end it is the next epoch at position 0.

            Returns:
                :meth:`datumio.Loader.state_dict`'s format, a fresh dict of JSON types only
                (for ``torch.save`` in a checkpoint dict, or ``json.dump``); it loads into
                :meth:`load_state_dict`, a bare Loader or another adapter.
            """
            transfer = self._transfer
            if transfer is not None and transfer.active:
                return _state.plain(transfer.served_state)
            return _state.plain(self.loader.state_dict())

        def load_state_dict(self, state: Mapping[str, Any]) -> None:
            """Resume from :meth:`state_dict`: the next iteration yields the batch after
            the last one the saved loop received (same records, same pixels), then the
            rest of that epoch; the loader must be built with the same dataset, batch
            size, seed and sampling.

            An earlier iteration still referenced (a loop left with ``break`` whose
            ``DataLoader`` iterator is kept) ends first: its transfer thread stops and no
            longer moves the loader; using that iterator again raises ``LoaderError``.

            Raises:
                OptionError: the state does not fit the loader (format, batch size, seed,
                    sampler options; see :meth:`datumio.Loader.load_state_dict`).
            """
            self._end_transfer()
            self.loader.load_state_dict(state)

        def _end_transfer(self) -> None:
            """Stop the transfer thread of an iteration left early; it rewinds the loader to
            the last batch it served (``Transfer.close``), so nothing read ahead is lost."""
            transfer, self._transfer = self._transfer, None
            if transfer is not None and transfer.active:
                transfer.close()

        def _pin(self) -> bool:
            if not self.pin_memory:
                return False
            if torch.cuda.is_available() and self.device is not None:
                return self.device.type == "cuda"
            warnings.warn(
                "TorchIterable(pin_memory=True) but no accelerator is available; "
                "batches are not pinned",
                UserWarning,
                stacklevel=3,
            )
            self.pin_memory = False
            return False

        def __iter__(self) -> Iterator[Any]:
            if not self.as_dict:
                yield from self._tuples()
                return
            names = [n for n in self.loader.batch_names if n != "params"]
            for out in self._tuples():
                named = dict(zip(names, out, strict=False))
                del out
                yield named
                del named  # hold no slot while the loader fills the next batch

        def _tuples(self) -> Iterator[tuple[torch.Tensor, ...]]:
            if get_worker_info() is not None:
                raise OptionError(_NUM_WORKERS_MESSAGE)
            from datumio.adapters import torch_handoff

            pin = self._pin()
            finish = self.loader.finish
            on_device = self.loader.options.decode == "device"
            if self.device is None and not on_device:
                for batch in self.loader:
                    tensors = [torch.from_numpy(array) for array in batch]
                    del batch
                    if finish is not None:
                        tensors[0] = torch_handoff.apply_finish(tensors[0], finish, self.dtype)
                    out = tuple(tensors)
                    del tensors
                    yield out
                    del out  # hold no slot while the loader fills the next batch
                return
            device = self.device if self.device is not None else torch.device("cpu")
            engine = self.engine or torch_handoff.engine_for(device)
            decoder = None
            if on_device:
                decoder = self.decoder or torch_handoff.nvjpeg_decoder(device)
            # An earlier iteration left with ``break`` may still hold a transfer thread;
            # stopped here, it rewinds the loader to what it served before this one starts.
            self._end_transfer()
            self._transfer = torch_handoff.Transfer(
                self.loader,
                engine,
                pin=pin and not on_device,
                finish=finish,
                dtype=self.dtype,
                ahead=self.ahead,
                decoder=decoder,
            )
            yield from self._transfer

    class TorchSampler(_TorchSamplerBase):
        """A ``torch.utils.data.Sampler`` of record indices drawn by a datumio Sampler.

        For a training loop that keeps its own map-style ``Dataset`` (and ``DataLoader``
        workers) but wants datumio's sampling: balanced, weighted or power-law classes with
        exact quotas, without replacement within a class, deterministic in ``seed`` and
        split across distributed ranks (``rank``/``world_size`` from the arguments, else
        ``torch.distributed``, else ``RANK``/``WORLD_SIZE``).

        Iterating yields this rank's indices (ints) for the rest of the current epoch, then
        moves to the next epoch; ``set_epoch(e)`` moves to epoch ``e`` (no-op when already
        there). ``len()`` is the number of indices per epoch on this rank.

        Args:
            dataset_or_labels: a labels array (or tensor), a datumio Dataset, or a dataset
                with ``.targets`` (torchvision) or ``.labels``.
            mode: "balanced" (default), "natural", "weights" or "power".
            Other keywords: those of :class:`datumio.sampling.Sampler`.
        """

        def __init__(
            self,
            dataset_or_labels: object,
            mode: str | None = "balanced",
            *,
            weights: Any = None,
            power: float | None = None,
            groups: Any = None,
            epoch_size: int | None = None,
            seed: int = 0,
            rank: int | None = None,
            world_size: int | None = None,
            pad: bool = False,
        ) -> None:
            if mode == "balanced" and (weights is not None or power is not None):
                mode = None
            self.sampler = Sampler(
                _labels_of(dataset_or_labels),
                mode,
                weights=weights,
                power=power,
                groups=groups,
                epoch_size=epoch_size,
                seed=seed,
                rank=rank,
                world_size=world_size,
                pad=pad,
            )

        def __len__(self) -> int:
            return len(self.sampler)

        @property
        def epoch(self) -> int:
            return self.sampler.epoch

        def set_epoch(self, epoch: int) -> None:
            self.sampler.set_epoch(epoch)

        def state_dict(self) -> dict[str, Any]:
            return self.sampler.state_dict()

        def load_state_dict(self, state: Any) -> None:
            self.sampler.load_state_dict(state)

        def __iter__(self) -> Iterator[int]:
            chunk = 4096
            for ids in self.sampler.batches(chunk, drop_last=False):
                yield from ids.tolist()

    for cls in (TorchIterable, TorchSampler):
        # Pickle finds the class through this module's __getattr__.
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return TorchIterable, TorchSampler


def __getattr__(name: str) -> Any:
    if name == "TorchIterable":
        return _classes()[0]
    if name == "TorchSampler":
        return _classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
