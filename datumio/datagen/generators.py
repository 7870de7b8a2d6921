"""The original datumio API (``BatchGenerator``, ``DataGenerator``) in Python 3.

.. code-block:: python

    from datumio.datagen import BatchGenerator, DataGenerator

    gen = BatchGenerator(X, y, rng_aug_params={"rotation_range": (-20, 20), "do_flip_lr": True},
                         dataset_zmuv=True, dataset_axis=0)
    gen.resample_dataset(y, "balanced", rng_seed=0)   # label-balanced X and y (optional)
    for bX, by in gen.get_batch(batch_size=32, shuffle=True, rng_seed=epoch):
        ...

Per sample, in this order (the original's): load (``X[i]``, or ``data_loader(path)`` for
:class:`DataGenerator`) -> float32 -> dataset zero-mean unit-variance -> sample zmuv -> the
static augmentation ``aug_params`` (:func:`datumio.transforms.transform_image` keywords) ->
the random augmentation ``rng_aug_params`` (:func:`datumio.transforms.perturb_image`
keywords); per batch: batch zmuv -> ``dtype`` -> ``chw_order``.

Order and seeds: a pass visits the samples in the original's order for its ``rng_seed``
(:mod:`datumio.datagen.passes`), so an old experiment's batches hold the same samples.
Sample ``t`` of a pass draws its random augmentation from ``sample_rng(seed, 0, t)``, so one
``rng_seed`` gives the same batches whatever ``workers`` is. ``rng_seed=None`` takes the
shuffle, and a seed for the augmentation, from numpy's global random state, as the original
took all its draws (``numpy.random.seed`` makes such a run repeatable).

Where the work runs (``workers``; docs/migration.md): ``workers=0`` computes each batch in
the calling thread when it is asked for. ``workers=N`` starts N processes for the pass on
the Loader's worker pool and ordering loop (:mod:`datumio.datagen.passes`), with
``max(buffer_size, N)`` batches prepared ahead into shared-memory slots; an in-memory ``X``
is copied once into a shared-memory segment that the workers map by name (X is never
pickled), file paths are sent once per worker. ``workers=None`` (default) uses
``min(4, cpu_count)`` processes when the pass has per-sample work (augmentation, or file
loading) and at least 256 samples, else 0. The pool's guarantees hold: a worker that dies
is replaced and its batches re-issued (a batch that kills workers repeatedly raises
LoaderError), an exception in a worker raises WorkerError naming the sample, workers exit
when the training process dies. Nothing outlives the pass: the workers stop and the
segments are unlinked when the generator finishes, is closed or is garbage collected.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from datumio.checks import BadValue, apply, number, positive_int
from datumio.datagen.loaders import img_loader
from datumio.datagen.passes import Pass, PassOptions, pass_order, run_here, run_pool
from datumio.datagen.recipe import Axis, Recipe, moments
from datumio.datagen.shapes import shape_error
from datumio.errors import OptionError
from datumio.loader.options import default_start_method
from datumio.sampling import resample_data

__all__ = ["BatchGenerator", "DataGenerator", "img_loader", "resample_data"]

_POOL_MIN_SAMPLES = 256
_AUTO_MAX_WORKERS = 4
#: Samples loaded at a time for the dataset moments (``DataGenerator``: dataset_zmuv_bsize).
_MOMENT_CHUNK = 256
_FRACTION = number(0.0, above=True)


def _numpy_seed() -> int:
    """A seed drawn from numpy's global random state (``rng_seed=None``)."""
    return int(np.random.randint(0, 2**63 - 1, dtype=np.int64))


class _GeneratorBase:
    """What :class:`BatchGenerator` and :class:`DataGenerator` share (the original's
    ``BaseGenerator``, with its constructor arguments, methods and attributes)."""

    #: ``data_loader(X[i], **dl_kwargs)`` loads sample ``i``; None: ``X`` holds the samples.
    data_loader: Callable[..., Any] | None = None
    dl_kwargs: Mapping[str, Any] = MappingProxyType({})
    _moment_chunk: int = _MOMENT_CHUNK

    def __init__(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike | None = None,
        aug_params: Mapping[str, Any] | None = None,
        rng_aug_params: Mapping[str, Any] | None = None,
        dataset_zmuv: bool = False,
        dataset_axis: Axis = None,
        batch_zmuv: bool = False,
        batch_axis: Axis = None,
        sample_zmuv: bool = False,
        sample_axis: Axis = None,
    ) -> None:
        self.X = self._as_samples(X)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.X):
            raise OptionError(f"y has {len(self.y)} entries but X has {len(self.X)}")
        if len(self.X) == 0:
            raise OptionError("X is empty")
        #: What :meth:`resample_dataset` selects from: the X and y given here.
        self._given = (self.X, self.y)
        #: The records of X (as given) that X and y now hold (:meth:`resample_dataset`).
        self.indices = np.arange(len(self.X), dtype=np.int64)
        self.aug_params = None if aug_params is None else dict(aug_params)
        self.rng_aug_params = None if rng_aug_params is None else dict(rng_aug_params)
        for name, params in (("aug_params", aug_params), ("rng_aug_params", rng_aug_params)):
            if params is not None and "rng" in params:
                raise OptionError(f"{name}: rng is drawn per sample from get_batch(rng_seed=)")
        self.dataset_zmuv, self.dataset_axis = bool(dataset_zmuv), dataset_axis
        self.batch_zmuv, self.batch_axis = bool(batch_zmuv), batch_axis
        self.sample_zmuv, self.sample_axis = bool(sample_zmuv), sample_axis
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.set_actions()

    def _as_samples(self, X: npt.ArrayLike) -> Any:
        return np.asarray(X)

    def set_data_loader(
        self,
        data_loader: Callable[..., Any] | None = None,
        dl_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """Load sample ``i`` as ``data_loader(X[i], **dl_kwargs)`` (None: ``X[i]`` itself)."""
        self.data_loader = data_loader
        self.dl_kwargs = dict(dl_kwargs or {})

    def set_actions(self) -> None:
        """Compute what the options need before a pass: the dataset moments, when
        ``dataset_zmuv`` (construction does it; call it again after changing X)."""
        if self.dataset_zmuv:
            self.mean, self.std = self.compute_dataset_moments()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of the first sample as loaded (``data_loader(X[0])``, or ``X[0]``)."""
        first = self.X[0]
        return np.shape(
            first if self.data_loader is None else self.data_loader(first, **self.dl_kwargs)
        )

    def _recipe(self, chw_order: bool, *, plain: bool = False) -> Recipe:
        return Recipe(
            data_loader=self.data_loader,
            dl_kwargs=self.dl_kwargs,
            mean=None if plain else self.mean,
            std=None if plain else self.std,
            sample_zmuv=self.sample_zmuv and not plain,
            sample_axis=self.sample_axis,
            batch_zmuv=self.batch_zmuv and not plain,
            batch_axis=self.batch_axis,
            aug_params=None if plain else self.aug_params,
            rng_aug_params=None if plain else self.rng_aug_params,
            chw_order=chw_order,
        )

    def compute_dataset_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the samples of X, as loaded, over ``dataset_axis`` (exact, in
        float64). Images of several sizes need an axis that reduces height and width."""
        recipe = self._recipe(False, plain=True)
        X, chunk = self.X, self._moment_chunk

        def chunks() -> Iterator[tuple[int, np.ndarray]]:
            run: list[np.ndarray] = []
            start = 0
            for i in range(len(X)):
                x = recipe.load(X, i)
                if run and (x.shape != run[0].shape or len(run) == chunk):
                    yield start, np.stack(run)
                    run = []
                if not run:
                    start = i
                run.append(x)
            if run:
                yield start, np.stack(run)

        error = functools.partial(
            shape_error, X, self.data_loader, moments=True, dataset_axis=self.dataset_axis
        )
        return moments(chunks(), self.dataset_axis, error)

    #: The name of earlier releases of this datumio.
    compute_datasetmoments = compute_dataset_moments

    def standardize(self, x: npt.ArrayLike) -> np.ndarray:
        """The per-sample steps of a pass on one loaded sample ``x``: dataset zmuv, sample
        zmuv, ``aug_params``, ``rng_aug_params`` (drawn from numpy's global random state)."""
        arr = np.array(x, dtype=np.float32)
        return self._recipe(False).sample(arr[:, :, None] if arr.ndim == 2 else arr, np.random)

    def resample_dataset(
        self,
        arr: npt.ArrayLike | None = None,
        weights: Mapping[Any, float] | str | None = "balanced",
        sample_fraction: float = 1.0,
        rng_seed: int | None = None,
    ) -> np.ndarray:
        """Replace ``X`` and ``y`` by a selection of their records in the label proportions
        of ``weights``, as the original did; passes then go over the selection.

        ``arr`` has one label per record of the X given to the constructor (default: its
        ``y``; a 2-D one-hot array uses each row's argmax); each call selects from those
        records again. ``weights``: ``"balanced"``, ``{label: weight}`` (missing labels
        weigh 0; weights need not sum to 1) or None (the labels' own proportions). The
        selection has ``int(sample_fraction * len(arr))`` records with exact per-label
        quotas, records repeated as evenly as possible (:func:`datumio.sampling.resample_data`;
        the original drew with replacement).
        ``rng_seed=None`` takes a seed from numpy's global random state.

        Returns:
            The selected indices: ``X`` is now ``X_given[idxs]`` and ``y`` ``y_given[idxs]``.
        """
        given_x, given_y = self._given
        labels = given_y if arr is None else np.asarray(arr)
        if labels is None:
            raise OptionError("resample_dataset needs arr (labels) when the generator has no y")
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        if len(labels) != len(given_x):
            raise OptionError(f"arr has {len(labels)} labels but X has {len(given_x)} records")
        try:
            fraction = _FRACTION("sample_fraction", sample_fraction)
        except BadValue as exc:
            raise OptionError(str(exc)) from None
        size = int(fraction * len(labels))  # the original's count
        if size < 1:
            raise OptionError(
                f"sample_fraction={sample_fraction} of {len(labels)} records selects none; "
                "raise sample_fraction"
            )
        if weights is None:  # the original's (scikit-learn's): every record alike
            values, counts = np.unique(labels, return_counts=True)
            weights = dict(zip(values.tolist(), counts.tolist(), strict=True))
        seed = _numpy_seed() if rng_seed is None else rng_seed
        idxs = resample_data(labels, weights, size / len(labels), seed)
        self.indices = idxs
        self.X = given_x[idxs]
        self.y = None if given_y is None else given_y[idxs]
        return idxs

    def _choose_workers(self, workers: int | None, n: int) -> int:
        if workers is not None:
            return workers
        busy = bool(self.aug_params or self.rng_aug_params or self.data_loader is not None)
        if not busy or n < _POOL_MIN_SAMPLES:
            return 0
        return max(1, min(_AUTO_MAX_WORKERS, os.cpu_count() or 1))

    def get_batch(
        self,
        batch_size: int = 32,
        shuffle: bool = False,
        rng_seed: int | None = None,
        buffer_size: int = 2,
        dtype: npt.DTypeLike = np.float32,
        chw_order: bool = False,
        *,
        workers: int | None = None,
        start_method: str | None = None,
    ) -> Iterator[Any]:
        """Batches of one pass over the samples of ``X``: ``(batch_X, batch_y)``, or
        ``batch_X`` when there is no ``y``.

        The order is decided here, when get_batch is called (the original's, module
        docstring); the last batch holds the remainder. Arrays are the caller's (never
        reused).

        Args:
            batch_size: samples per batch.
            shuffle: shuffle the samples of this pass.
            rng_seed: seed of the shuffle (``RandomState(rng_seed)``, as the original) and
                of every random augmentation; None: numpy's global random state.
            buffer_size: batches prepared ahead by the workers (workers > 0).
            dtype: dtype of ``batch_X``.
            chw_order: ``batch_X`` as (N, C, H, W) instead of (N, H, W, C).
            workers: processes; 0 runs in this thread; None chooses (module doc).
            start_method: "forkserver" (default where available), "spawn" or "fork".

        Raises:
            OptionError: a bad argument, or samples that do not fit together (sizes or
                channels; in a worker this arrives as a WorkerError saying so).
        """
        opts = PassOptions(batch_size, rng_seed, buffer_size, workers, start_method)
        X, y = self.X, self.y
        if y is not None and len(y) != len(X):
            raise OptionError(f"y has {len(y)} entries but X has {len(X)}")
        order = pass_order(len(X), bool(shuffle), opts.rng_seed)
        seed = opts.rng_seed
        if seed is None:  # after the shuffle, as the original drew its augmentation after it
            seed = _numpy_seed() if self.rng_aug_params else 0
        p = Pass(self._recipe(bool(chw_order)), X, y, order, opts.batch_size, seed, np.dtype(dtype))
        n_workers = self._choose_workers(opts.workers, len(order))
        if n_workers == 0:
            return run_here(p)
        method = default_start_method() if opts.start_method is None else opts.start_method
        return run_pool(p, n_workers, max(opts.buffer_size, n_workers), method)


class BatchGenerator(_GeneratorBase):
    """Batches of an in-memory array ``X`` (N, H, W[, C]) with augmentation and zmuv.

    Args:
        X: the samples (any array-like; a numeric ndarray is shared with workers).
        y: labels, one per sample (any array, e.g. one-hot rows); None: batches are X only.
        aug_params: static augmentation, ``transform_image`` keywords: ``output_shape``,
            ``zoom``, ``rotation``, ``shear``, ``translation``, ``flip_lr``, ``flip_ud``,
            ``warp_kwargs``.
        rng_aug_params: random augmentation, ``perturb_image`` keywords: ``output_shape``,
            ``zoom_range``, ``rotation_range``, ``shear_range``, ``translation_range``,
            ``do_flip_lr``, ``do_flip_ud``, ``allow_stretch``, ``warp_kwargs``.
        dataset_zmuv, dataset_axis: subtract the dataset mean and divide by its std,
            computed over ``dataset_axis`` of X (0: per pixel, (0, 1, 2): per channel).
        batch_zmuv, batch_axis: the same per batch.
        sample_zmuv, sample_axis: the same per sample (axes of one HxWxC sample).
    """


class DataGenerator(_GeneratorBase):
    """Batches of image files (or ``.npy`` arrays) loaded on the fly; see BatchGenerator.

    Args:
        X: file paths (kept as a numpy array of str, as the original).
        data_loader: ``data_loader(path, **dl_kwargs) -> array``; a top-level function
            (it is pickled to the workers). Default :func:`img_loader`.
        dl_kwargs: keywords for ``data_loader`` (``{"mode": "RGB"}`` has ``img_loader``
            convert every image to RGB).
        dataset_zmuv_bsize: files loaded at a time while computing the dataset moments;
            the moments are exact whatever its value.
        Other arguments: as :class:`BatchGenerator`; ``dataset_zmuv`` loads every file once.
    """

    def __init__(
        self,
        X: Sequence[str] | npt.ArrayLike,
        y: npt.ArrayLike | None = None,
        data_loader: Callable[..., Any] = img_loader,
        dl_kwargs: Mapping[str, Any] | None = None,
        aug_params: Mapping[str, Any] | None = None,
        rng_aug_params: Mapping[str, Any] | None = None,
        dataset_zmuv: bool = False,
        dataset_axis: Axis = None,
        dataset_zmuv_bsize: int = 32,
        batch_zmuv: bool = False,
        batch_axis: Axis = None,
        sample_zmuv: bool = False,
        sample_axis: Axis = None,
    ) -> None:
        self.dataset_zmuv_bsize = dataset_zmuv_bsize
        apply(self, {"dataset_zmuv_bsize": positive_int})
        self._moment_chunk = self.dataset_zmuv_bsize
        self.set_data_loader(data_loader, dl_kwargs)
        super().__init__(
            X,
            y,
            aug_params,
            rng_aug_params,
            dataset_zmuv,
            dataset_axis,
            batch_zmuv,
            batch_axis,
            sample_zmuv,
            sample_axis,
        )

    def _as_samples(self, X: npt.ArrayLike) -> Any:
        return np.array([str(p) for p in np.asarray(X).ravel().tolist()], dtype=str)
