"""Lightning: a ``LightningDataModule`` whose dataloaders are datumio Loaders.

Importing this module imports ``torch`` and Lightning (``lightning.pytorch`` when it is
installed, else ``pytorch_lightning``); without them, an ``ImportError`` says how to
install them. ``import datumio`` and ``import datumio.adapters`` never do.

.. code-block:: python

    dm = DataModule("out.lmdb", batch_size=64, transform=spec, workers=4)
    trainer.fit(model, datamodule=dm)  # train/val(/test) from the stored splits

Thread/fork/pickle: a :class:`DataModule` builds its Loaders in the process that trains
(a Loader belongs to the process that made it); it keeps paths and options until then.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Unpack

from datumio.adapters import _state
from datumio.adapters._install import missing
from datumio.adapters.torch import TorchIterable
from datumio.augment.spec import Transform
from datumio.loader import Loader, LoaderKeywords
from datumio.loader.options import SAMPLER_KEYWORDS
from datumio.remote import open_dataset
from datumio.shards.dataset import Dataset


def _import_lightning() -> ModuleType:
    """``lightning.pytorch`` (the ``lightning`` package) when it imports, else
    ``pytorch_lightning``."""
    try:
        return importlib.import_module("lightning.pytorch")
    except ImportError:
        pass
    try:
        return importlib.import_module("pytorch_lightning")
    except ImportError as exc:
        raise missing(__name__, "lightning", exc) from exc


if TYPE_CHECKING:
    import pytorch_lightning as pl
else:
    pl = _import_lightning()

__all__ = ["DataModule", "EvalIterable", "TrainIterable"]

#: The fields of a Transform an evaluation view keeps: the output (size, base view,
#: normalisation, layout, dtype), not the random draws.
_EVAL_FIELDS = (
    "size",
    "resize",
    "keep_scale",
    "normalize",
    "mean",
    "std",
    "layout",
    "dtype",
    "resample",
    "backend",
    "sample_zmuv",
    "sample_axis",
    "batch_zmuv",
    "batch_axis",
)
#: Loader keywords the DataModule sets itself, and why.
_OWN_KEYWORDS = {
    "split": "give train_split=, val_split= and test_split= (or val_path=, test_path=)",
    "rank": "the rank is the Trainer's (trainer.global_rank)",
    "world_size": "the world size is the Trainer's (trainer.world_size)",
}
#: Sampling keywords of the train Loader that the validation and test Loaders leave out
#: (they read every record once).
_TRAIN_ONLY = (*SAMPLER_KEYWORDS, "balance_by", "drop_last")


def eval_transform(transform: Transform | None) -> Transform | None:
    """What validation and test read by default: ``transform``'s output (size,
    normalisation, layout, dtype) through its resize and centre crop, with no random draw.

    A random resized crop becomes the centre crop; flips, affine and photometric draws, a
    ``user_fn`` and a ``pipeline`` are left out. None stays None (the Loader's default).
    """
    if transform is None:
        return None
    return Transform(**{name: getattr(transform, name) for name in _EVAL_FIELDS})


def _whole_epoch(loader: Loader) -> int:
    """Batches of a whole epoch on this rank (Lightning counts its place within it)."""
    opts = loader.options
    return loader.sampler.num_batches(opts.batch_size, opts.drop_last, 0)


class TrainIterable(TorchIterable):
    """The train dataloader of a :class:`DataModule`: a
    :class:`~datumio.adapters.torch.TorchIterable` that follows the Trainer.

    ``len()`` is the whole epoch (Lightning counts its place in it, also after a resume);
    each ``iter()`` first moves the loader to ``trainer.current_epoch``;
    :meth:`state_dict` is the place after the last batch the Trainer handed to the model
    (batches fetched ahead of the step are not counted).

    Args:
        loader: the train Loader.
        module: the DataModule whose Trainer it follows.
    """

    def __init__(self, loader: Loader, module: DataModule) -> None:
        super().__init__(loader)
        self._module = module
        #: (loader epoch, loader position, batches the Trainer had handed out) at iter().
        self._start: tuple[int, int, int] | None = None

    def __len__(self) -> int:
        return _whole_epoch(self.loader)

    def __iter__(self) -> Iterator[Any]:
        """Move to the Trainer's epoch (a no-op when the loader is in it), then serve the
        rest of it."""
        epoch = self._module.trainer_epoch()
        if epoch is not None:
            self.loader.set_epoch(epoch)
        handed = self._module.batches_handed_out()
        if handed is not None:
            self._start = (self.loader.epoch, self.loader.position, handed)
        return super().__iter__()

    def state_dict(self) -> dict[str, Any]:
        """The loader's place after the last batch the model received: what it yielded,
        less any batch the Trainer fetched and has not handed to the model yet.

        Returns:
            :meth:`datumio.Loader.state_dict`'s format (JSON types only).
        """
        served = super().state_dict()
        handed = self._module.batches_handed_out()
        if handed is None or self._start is None:
            return served
        epoch, start, handed_at_start = self._start
        position = start + (handed - handed_at_start) * self.loader.options.batch_size
        if served["epoch"] == epoch and position >= served["position"]:
            return served
        return _state.moved(self.loader, epoch, min(position, len(self.loader.sampler)))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` (Lightning calls it with the state it saved), on
        the world size it was saved at or another (:func:`_for_this_world`).

        Raises:
            OptionError: the state does not fit the loader (see
                :meth:`datumio.Loader.load_state_dict`).
        """
        super().load_state_dict(_for_this_world(state, self.loader))


class EvalIterable(TorchIterable):
    """The validation and test dataloaders of a :class:`DataModule`: each ``iter()`` is
    epoch 0 from its first batch, so every pass serves the same records in the same order.

    Args:
        loader: a Loader with ``sampling="natural"`` and ``drop_last=False``.
    """

    def __len__(self) -> int:
        return _whole_epoch(self.loader)

    def __iter__(self) -> Iterator[Any]:
        self.loader.load_state_dict(_state.moved(self.loader, 0, 0))
        return super().__iter__()


def _for_this_world(state: Mapping[str, Any], loader: Loader) -> Mapping[str, Any]:
    """``state`` as this rank loads it. A Lightning checkpoint holds rank 0's state, and
    Lightning's ranks step in lock-step (each trains one batch per step), so every rank of
    the saved world was at rank 0's place: on another world size the saved world's states
    are rank 0's with each rank's number, merged (:meth:`datumio.Loader.merge_states`), and
    the rest of the epoch is shared out over this world, each record once."""
    sampler = state.get("sampler") if isinstance(state, Mapping) else None
    if not isinstance(sampler, Mapping):
        return state  # not a Loader's state: load_state_dict says so
    saved = sampler.get("world_size")
    if not isinstance(saved, int) or saved < 1 or saved == loader.sampler.world_size:
        return state  # the same world
    if "positions" in sampler:
        return state  # already merged (Loader.merge_states): any world loads it
    ranks = [{**state, "sampler": {**sampler, "rank": rank}} for rank in range(saved)]
    return Loader.merge_states(ranks)


class DataModule(pl.LightningDataModule):
    """A ``LightningDataModule`` over a datumio dataset: train, validation and test
    dataloaders are datumio Loaders wrapped as
    :class:`~datumio.adapters.torch.TorchIterable` (``docs/adapters.md``, "Lightning").

    Train, val and test are the dataset's stored splits (``datumio split``) when it has
    them; a ``val_path`` or ``test_path`` given reads that dataset instead. Without a train
    split the whole dataset trains; without val (test) data, ``val_dataloader()``
    (``test_dataloader()``) is empty and Lightning skips that loop.

    The train Loader samples as ``sampling`` says (``"balanced"`` by default) with
    ``transform``; validation and test read every record once (``sampling="natural"``,
    ``drop_last=False``, and ``pad`` on several ranks) with ``val_transform``, by default
    ``transform`` without its random draws (:func:`eval_transform`). Ranks are the
    Trainer's (``global_rank``, ``world_size``); each train epoch is the Trainer's
    ``current_epoch``.

    Checkpoints: :meth:`state_dict` is the train Loader's place after the last batch the
    model received, so ``trainer.fit(model, datamodule=dm, ckpt_path=...)`` from a
    mid-epoch checkpoint serves exactly the records not yet seen.

    Args:
        path: the dataset (a directory, a URL, or a :class:`~datumio.Dataset`).
        batch_size: records per batch (every loader).
        transform: what the train workers do to each record (None: the Loader's default).
        val_transform: what validation and test do (None: :func:`eval_transform`).
        train_split, val_split, test_split: the stored splits to read.
        val_path, test_path: a dataset to validate (test) on instead of a stored split.
        loader_options: the Loader's keywords (:class:`~datumio.loader.LoaderKeywords`:
            ``sampling``, ``weights``, ``power``, ``workers``, ``seed``, ``fields``,
            ``extras``, ...); the sampling ones apply to training only. ``split``,
            ``rank`` and ``world_size`` are the DataModule's own.

    Raises:
        TypeError: ``split``, ``rank`` or ``world_size`` among the keywords, or a keyword
            that is no Loader option (when a loader is built).
    """

    def __init__(
        self,
        path: Dataset | str | os.PathLike[str],
        *,
        batch_size: int,
        transform: Transform | None = None,
        val_transform: Transform | None = None,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        val_path: str | os.PathLike[str] | None = None,
        test_path: str | os.PathLike[str] | None = None,
        **loader_options: Unpack[LoaderKeywords],
    ) -> None:
        super().__init__()
        for name, why in _OWN_KEYWORDS.items():
            if name in loader_options:
                raise TypeError(f"DataModule() got {name}=: {why}")
        self.path = path
        self.batch_size = batch_size
        self.transform = transform
        self.val_transform = eval_transform(transform) if val_transform is None else val_transform
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.paths = {"val": val_path, "test": test_path}
        self.loader_options: dict[str, Any] = dict(loader_options)
        self._train: TrainIterable | None = None
        self._eval: dict[str, EvalIterable] = {}
        self._resume: dict[str, Any] | None = None

    # -- the Trainer ------------------------------------------------------------------------

    def _attached(self) -> Any:
        """The Trainer this DataModule is attached to, or None."""
        return getattr(self, "trainer", None)

    def _ranks(self) -> tuple[int, int]:
        trainer = self._attached()
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def trainer_epoch(self) -> int | None:
        """The Trainer's ``current_epoch`` (None: not attached)."""
        trainer = self._attached()
        return None if trainer is None else int(trainer.current_epoch)

    def batches_handed_out(self) -> int | None:
        """Train batches of the current epoch the Trainer has handed to the model (its
        fit loop's count; None: not attached, or a Lightning that does not keep it)."""
        trainer = self._attached()
        loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
        progress = getattr(getattr(loop, "batch_progress", None), "current", None)
        ready = getattr(progress, "ready", None)
        return ready if isinstance(ready, int) else None

    # -- loaders ----------------------------------------------------------------------------

    def _whole(self) -> Dataset:
        return self.path if isinstance(self.path, Dataset) else open_dataset(self.path)

    def _dataset(self, stage: str) -> Dataset | None:
        """What ``stage`` ("val", "test") reads: its path, else its stored split; None:
        no data for it."""
        given = self.paths.get(stage)
        if given is not None:
            return open_dataset(given)
        whole = self._whole()
        name = self.splits[stage]
        return whole.with_split(name) if name in whole.split_names else None

    def _loader(self, stage: str, dataset: Dataset) -> Loader:
        rank, world = self._ranks()
        options = dict(self.loader_options)
        transform = self.transform
        if stage != "train":
            options = {k: v for k, v in options.items() if k not in _TRAIN_ONLY}
            options.update(sampling="natural", drop_last=False, pad=world > 1)
            transform = self.val_transform
        return Loader(
            dataset,
            self.batch_size,
            transform=transform,
            rank=rank,
            world_size=world,
            **options,
        )

    def train_dataloader(self) -> TrainIterable:
        """The train Loader as a :class:`TrainIterable` (resumed from a loaded state)."""
        previous = self._train
        if previous is not None and not previous.loader.closed:
            return previous
        whole = self._whole()
        name = self.splits["train"]  # the whole dataset trains when it has no such split
        dataset = whole.with_split(name) if name in whole.split_names else whole
        feed = TrainIterable(self._loader("train", dataset), self)
        state = self._resume
        if state is None and previous is not None:
            state = previous.state_dict()  # a new fit goes on where the last one stopped
        if state:
            try:
                feed.load_state_dict(state)
            except BaseException:
                feed.loader.close()
                raise
        self._resume, self._train = None, feed
        return feed

    def _eval_dataloader(self, stage: str) -> EvalIterable | list[Any]:
        feed = self._eval.get(stage)
        if feed is not None and not feed.loader.closed:
            return feed
        dataset = self._dataset(stage)
        if dataset is None:
            return []  # Lightning runs no loop over an empty list of dataloaders
        self._eval[stage] = feed = EvalIterable(self._loader(stage, dataset))
        return feed

    def val_dataloader(self) -> EvalIterable | list[Any]:
        """The validation Loader (every record once, in the same order every pass), or
        ``[]`` when there is no validation data."""
        return self._eval_dataloader("val")

    def test_dataloader(self) -> EvalIterable | list[Any]:
        """The test Loader, as :meth:`val_dataloader`, or ``[]`` without test data."""
        return self._eval_dataloader("test")

    # -- checkpoints and teardown -------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The train Loader's place after the last batch the model received
        (:meth:`TrainIterable.state_dict`); a state loaded and not yet used; or ``{}``
        before training."""
        if self._resume is not None:
            return dict(self._resume)
        return {} if self._train is None else self._train.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next train dataloader continues there.

        Raises:
            OptionError: the state does not fit the train Loader (another dataset, split,
                batch size, seed or sampling), when the dataloader is built. A state saved
                on another number of ranks resumes (:func:`_for_this_world`).
        """
        if not state:
            return
        self._resume = _state.plain(state)
        if self._train is not None and not self._train.loader.closed:
            self._train.load_state_dict(self._resume)
            self._resume = None

    def teardown(self, stage: str) -> None:
        """Close the Loaders (their worker processes and shared memory); the train state
        stays readable and a later fit goes on from it."""
        for feed in (self._train, *self._eval.values()):
            if feed is not None:
                feed.loader.close()
        self._eval = {}
