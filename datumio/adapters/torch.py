"""PyTorch adapters: a zero-copy ``IterableDataset`` over a Loader, a ``Sampler``, and a
map-style ``Dataset`` with its ``collate`` (:mod:`datumio.adapters.torch_map`).

Importing this module imports ``torch`` (without it, an ``ImportError`` says how to install
it); ``import datumio`` and ``import datumio.adapters`` never do.

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
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, Unpack, cast

import numpy as np
import numpy.typing as npt

from datumio.adapters import _state
from datumio.adapters._install import missing
from datumio.checks import apply, positive_int
from datumio.errors import LoaderError, OptionError
from datumio.loader import Loader
from datumio.sampling import ClassIndex, Mode, Sampler, SamplerKeywords, given_way

try:
    import torch
    from torch.types import Device
    from torch.utils.data import IterableDataset, get_worker_info
    from torch.utils.data import Sampler as TorchSamplerBase
except ImportError as exc:
    raise missing(__name__, "torch", exc) from exc

from datumio.adapters import torch_handoff
from datumio.adapters.torch_map import MapDataset, Sample, collate

__all__ = ["MapDataset", "Sample", "TorchIterable", "TorchSampler", "collate"]

_NUM_WORKERS_MESSAGE = (
    "TorchIterable runs inside a DataLoader worker process (DataLoader(num_workers > 0)). "
    "datumio's Loader already decodes and augments in its own worker pool; wrap it as "
    "DataLoader(TorchIterable(loader), batch_size=None) with the default num_workers=0 and "
    "set the number of processes with Loader(workers=...)"
)

#: The options of :class:`TorchIterable` checked on their own (``datumio.checks``).
_CHECKS = {"ahead": positive_int}
#: Indices a :class:`TorchSampler` draws at once (bounds its temporaries).
_INDICES_PER_STEP = 4096


class TorchIterable(IterableDataset[Any]):
    """An ``IterableDataset`` yielding a :class:`~datumio.Loader`'s batches as tensors.

    Use it as ``DataLoader(TorchIterable(loader), batch_size=None)`` (the loader batches;
    ``num_workers`` must stay 0, datumio has its own pool).

    Without ``device``, each batch is a tuple of tensors made with ``torch.from_numpy`` on
    the arrays that view the loader's shared-memory slot: no copy. A tensor holds its numpy
    array, the array holds the slot, so a slot is reused only once every tensor of its batch
    is gone (keep as many batches as the loader has spare ``slots``).

    With ``device``, a transfer thread moves each batch there while the model runs
    (:mod:`datumio.adapters.torch_handoff`): on CUDA on its own stream, from a reused ring
    of page-locked buffers with ``pin_memory``, the slot given back as soon as it is copied.
    With ``finish_on_device`` (default) the workers write uint8 and the dataset mean/std,
    float conversion and layout run on the device in one fused op
    (:meth:`datumio.Loader.defer_finish`): a quarter of the bytes; images come out NCHW in
    ``channels_last`` memory format for a CHW Transform.

    Checkpoints: :meth:`state_dict` is the place of the last batch the loop received (not of
    batches read ahead); a new Loader and ``TorchIterable`` given it with
    :meth:`load_state_dict` continue with exactly the batches an uninterrupted run would
    have seen (``examples/resume_torch.py``).

    Args:
        loader: a :class:`datumio.Loader` (not started yet, for ``finish_on_device``).
        device: move every tensor there (``"cuda"``, ``torch.device``); None: stay on CPU.
        pin_memory: stage each batch in page-locked memory (CUDA) so the host-to-device
            copy is asynchronous. Without an accelerator it is skipped with a warning, like
            ``DataLoader(pin_memory=True)``.
        non_blocking: kept for compatibility: device copies are always asynchronous on the
            transfer thread's stream.
        finish_on_device: ship uint8 and normalise on ``device`` (when a device is given and
            the Transform's normalisation is per channel).
        dtype: the floating dtype of finished images (``torch.float32``; ``bfloat16`` or
            ``float16`` halve the device memory of a batch).
        ahead: batches moved to the device ahead of the one being used.
        decoder: for ``Loader(decode="device")``: a function from a list of JPEG byte
            tensors (CPU uint8) to a list of CHW uint8 image tensors on ``device``; default
            ``torchvision.io.decode_jpeg(datas, device=device)`` (nvJPEG).
        as_dict: yield ``{name: tensor}`` named by ``loader.batch_names`` (``images``,
            ``labels``, record fields such as ``boxes`` and ``boxes_count``, extras) instead
            of a tuple.

    Raises:
        OptionError: not a Loader, a CUDA device torch does not see, a dtype that is not
            floating, ``ahead`` not a positive int; iterated inside a ``DataLoader`` worker
            process.
    """

    def __init__(
        self,
        loader: Loader,
        device: Device = None,
        pin_memory: bool = False,
        non_blocking: bool = True,
        *,
        finish_on_device: bool = True,
        dtype: torch.dtype | None = None,
        ahead: int = 2,
        decoder: torch_handoff.Decoder | None = None,
        as_dict: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(loader, Loader):
            raise OptionError(f"TorchIterable wraps a datumio.Loader, got {type(loader).__name__}")
        self.loader = loader
        self.device = _device(device)
        self.pin_memory = bool(pin_memory)
        self.non_blocking = bool(non_blocking)
        self.dtype = torch.float32 if dtype is None else dtype
        if not self.dtype.is_floating_point:
            raise OptionError(f"TorchIterable(dtype={dtype}); give a floating dtype")
        self.ahead = ahead
        apply(self, _CHECKS)
        self.decoder = decoder
        #: Yield ``{name: tensor}`` by ``loader.batch_names`` instead of a tuple.
        self.as_dict = bool(as_dict)
        self._transfer: torch_handoff.Transfer | None = None
        #: The engine of device copies (tests may set a fake one before iterating).
        self.engine: torch_handoff.SyncEngine | None = None
        if self.device is not None and finish_on_device:
            with contextlib.suppress(LoaderError):
                loader.defer_finish()

    def __len__(self) -> int:
        """Batches of the current epoch from where it began: ``len(loader)`` (the rest of
        the saved epoch after :meth:`load_state_dict`)."""
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Move the loader to ``epoch`` (:meth:`datumio.Loader.set_epoch`)."""
        self.loader.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        """Where the training loop is: the loader's state after the last batch this iterable
        yielded, for a checkpoint.

        Batches read ahead but not yet yielded are not counted, so a resume serves them
        again: the loader's own prefetch (it counts a batch only when it yields it) and,
        with a ``device``, the batches the transfer thread has moved ahead
        (``loader.state_dict()`` counts those; this does not). Call it between steps, inside
        the loop or after leaving it with ``break``; once a loop has run an epoch to its end
        it is the next epoch at position 0.

        Returns:
            :meth:`datumio.Loader.state_dict`'s format, a fresh dict of JSON types only (for
            ``torch.save`` in a checkpoint dict, or ``json.dump``); it loads into
            :meth:`load_state_dict`, a bare Loader or another adapter.
        """
        transfer = self._transfer
        if transfer is not None and transfer.active:
            return _state.plain(transfer.served_state)
        return _state.plain(self.loader.state_dict())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next iteration yields the batch after the
        last one the saved loop received (same records, same pixels), then the rest of that
        epoch; the loader must be built with the same dataset, batch size, seed and
        sampling.

        An earlier iteration still referenced (a loop left with ``break`` whose
        ``DataLoader`` iterator is kept) ends first: its transfer thread stops and no longer
        moves the loader; using that iterator again raises ``LoaderError``.

        Raises:
            OptionError: the state does not fit the loader (format, batch size, seed,
                sampler options; see :meth:`datumio.Loader.load_state_dict`).
        """
        self._end_transfer()
        self.loader.load_state_dict(state)

    def __iter__(self) -> Iterator[Any]:
        """The rest of the loader's epoch: tuples of tensors, or dicts with ``as_dict``."""
        if not self.as_dict:
            yield from self._tuples()
            return
        names = [n for n in self.loader.batch_names if n != "params"]
        for out in self._tuples():
            named = dict(zip(names, out, strict=False))
            del out
            yield named
            del named  # hold no slot while the loader fills the next batch

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

    def _tuples(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if get_worker_info() is not None:
            raise OptionError(_NUM_WORKERS_MESSAGE)
        pin = self._pin()
        if self.device is None and self.loader.options.decode != "device":
            yield from self._on_cpu()
        else:
            yield from self._transferred(pin)

    def _on_cpu(self) -> Iterator[tuple[torch.Tensor, ...]]:
        """Tensors viewing the slots (the finish applied here when it was deferred)."""
        finish = self.loader.finish
        for batch in self.loader:
            tensors = [torch.from_numpy(array) for array in batch]
            del batch
            if finish is not None:
                tensors[0] = torch_handoff.apply_finish(tensors[0], finish, self.dtype)
            out = tuple(tensors)
            del tensors
            yield out
            del out  # hold no slot while the loader fills the next batch

    def _transferred(self, pin: bool) -> Iterator[tuple[torch.Tensor, ...]]:
        """Batches moved to the device (and decoded there) by a transfer thread."""
        on_device = self.loader.options.decode == "device"
        device = self.device if self.device is not None else torch.device("cpu")
        engine = self.engine or torch_handoff.engine_for(device)
        decoder = None
        if on_device:
            decoder = self.decoder or torch_handoff.nvjpeg_decoder(device)
        # An earlier iteration left with ``break`` may still hold a transfer thread; stopped
        # here, it rewinds the loader to what it served before this one starts.
        self._end_transfer()
        self._transfer = torch_handoff.Transfer(
            self.loader,
            engine,
            pin=pin and not on_device,
            finish=self.loader.finish,
            dtype=self.dtype,
            ahead=self.ahead,
            decoder=decoder,
        )
        yield from self._transfer


class TorchSampler(TorchSamplerBase[int]):
    """A ``torch.utils.data.Sampler`` of record indices drawn by a datumio Sampler.

    For a training loop that keeps its own map-style ``Dataset`` (and ``DataLoader``
    workers) but wants datumio's sampling: balanced, weighted or power-law classes with
    exact quotas, without replacement within a class, deterministic in ``seed`` and split
    across distributed ranks (``rank``/``world_size`` from the arguments, else
    ``torch.distributed``, else ``RANK``/``WORLD_SIZE``).

    Iterating yields this rank's indices (ints) for the rest of the current epoch, then
    moves to the next epoch; ``set_epoch(e)`` moves to epoch ``e`` (no-op when already
    there). ``len()`` is the number of indices of the current epoch on this rank from where
    it began: the whole epoch, or after :meth:`load_state_dict` the rest of the saved one.

    Args:
        dataset_or_labels: a labels array (or tensor), a datumio Dataset, or a dataset with
            ``.targets`` (torchvision) or ``.labels``.
        mode: "balanced" (default: None, which is "balanced" unless ``weights=`` or
            ``power=`` imply theirs), "natural", "weights" or "power" (second, or by name);
            "balanced" gives way to the mode ``weights=`` or ``power=`` imply.
        groups: an integer group per record, balanced over instead of the labels.
        keywords: those of :class:`datumio.sampling.Sampler` (``weights``, ``power``,
            ``epoch_size``, ``seed``, ``rank``, ``world_size``, ``pad``, ...).

    Raises:
        OptionError: labels it cannot find, or a bad sampler option (naming it).
        TypeError: a keyword that is not a sampler option (with the closest name).
    """

    def __init__(
        self,
        dataset_or_labels: object,
        mode: Mode | None = None,
        /,
        *,
        groups: npt.ArrayLike | None = None,
        **keywords: Unpack[SamplerKeywords],
    ) -> None:
        super().__init__()
        if "mode" in keywords:  # by name
            if mode is not None:
                raise TypeError("TorchSampler() got mode twice: second and as mode=")
            mode = keywords.pop("mode")
        mode = given_way(mode, keywords.get("weights"), keywords.get("power"))
        #: The datumio Sampler that draws the indices.
        self.sampler = Sampler(_labels_of(dataset_or_labels), mode, groups=groups, **keywords)
        self._origin = (0, 0)  # (epoch, position) the current epoch was resumed at

    def __len__(self) -> int:
        """Indices of the current epoch on this rank, from where it began."""
        epoch, position = self._origin
        return len(self.sampler) - (position if epoch == self.sampler.epoch else 0)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration draws from."""
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch`` at its start (no-op when already in it, to keep a resume)."""
        moved = epoch != self.sampler.epoch
        self.sampler.set_epoch(epoch)
        if moved:
            self._origin = (0, 0)

    def state_dict(self) -> dict[str, Any]:
        """The sampler's place (:meth:`datumio.sampling.Sampler.state_dict`)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` (:meth:`datumio.sampling.Sampler.load_state_dict`):
        the next iteration, and ``len()``, are the rest of the saved epoch."""
        self.sampler.load_state_dict(state)
        self._origin = (self.sampler.epoch, self.sampler.position)

    def __iter__(self) -> Iterator[int]:
        """This rank's indices for the rest of the epoch, then the next epoch."""
        options = self.sampler.options
        # A stratified plan is drawn a batch at a time; any other, in larger steps.
        step = options.batch_size if options.stratified else _INDICES_PER_STEP
        for ids in self.sampler.batches(step, drop_last=False):
            yield from ids.tolist()


def _labels_of(dataset_or_labels: object) -> npt.ArrayLike | ClassIndex:
    """What :class:`Sampler` accepts: a datumio dataset, or a labels array.

    torchvision datasets keep labels in ``targets`` (``ImageFolder``, ``CIFAR10``); a
    :class:`MapDataset` is sampled by its datumio dataset's class index.
    """
    if isinstance(dataset_or_labels, MapDataset):
        return dataset_or_labels.dataset
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


def _device(device: Device) -> torch.device | None:
    """``device`` as a ``torch.device`` (None stays None).

    Raises:
        OptionError: a CUDA device while torch sees none.
    """
    if device is None:
        return None
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(
            f"TorchIterable(device={device!r}) but torch sees no CUDA device "
            f"(torch {torch.__version__}); pass device=None (or 'cpu') to stay on "
            "the CPU, or install a CUDA build of torch"
        )
    return resolved
