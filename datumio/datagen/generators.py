"""The original datumio API (``BatchGenerator``, ``DataGenerator``) in Python 3.

.. code-block:: python

    from datumio.datagen import BatchGenerator, DataGenerator

    gen = BatchGenerator(X, y, rng_aug_params={"rotation_range": (-20, 20), "do_flip_lr": True},
                         dataset_zmuv=True, dataset_axis=0)
    gen.resample_dataset(y, "balanced", rng_seed=0)   # label-balanced order (optional)
    for bX, by in gen.get_batch(batch_size=32, shuffle=True, rng_seed=epoch):
        ...

Per sample, in this order (the original's): load (``X[i]``, or ``data_loader(path)`` for
:class:`DataGenerator`) -> float32 -> dataset zero-mean unit-variance -> sample zmuv -> the
static augmentation ``aug_params`` (:func:`datumio.transforms.transform_image` keywords) ->
the random augmentation ``rng_aug_params`` (:func:`datumio.transforms.perturb_image`
keywords); per batch: batch zmuv -> ``dtype`` -> ``chw_order``.

Determinism: sample ``t`` of a pass draws from ``sample_rng(seed, 0, t)`` and the shuffle
from the same seed, so one ``rng_seed`` gives the same batches whatever ``workers`` is;
``rng_seed=None`` picks a fresh seed per pass (the original used the global numpy state).

Where the work runs (``workers``; docs/migration.md): ``workers=0`` computes each batch in
the calling thread when it is asked for. ``workers=N`` starts N processes for the pass on
the Loader's worker pool (:mod:`datumio.loader.pool`, job :class:`~datumio.datagen.job.ArrayJob`),
with ``max(buffer_size, N)`` batches prepared ahead into shared-memory slots; an in-memory
``X`` is copied once into a shared-memory segment that the workers map by name (X is never
pickled), file paths are sent once per worker. ``workers=None`` (default) uses
``min(4, cpu_count)`` processes when the pass has per-sample work (augmentation, or file
loading) and at least 256 samples, else 0. The pool's guarantees hold: a worker that dies
is replaced and its batches re-issued (a batch that kills workers repeatedly raises
LoaderError), an exception in a worker raises WorkerError naming the sample, workers exit
when the training process dies. Nothing outlives the pass: the workers stop and the
segments are unlinked when the generator finishes, is closed or is garbage collected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from datumio.augment.seeds import sample_rng
from datumio.datagen.job import ArrayJob
from datumio.datagen.recipe import Axis, Recipe, img_loader, moments
from datumio.errors import OptionError
from datumio.loader.job import WorkerConfig
from datumio.loader.messages import BatchFailed, BatchPlan
from datumio.loader.options import check_worker_count, default_start_method
from datumio.loader.pool import ConfigFactory, Message, WorkerPool, worker_error
from datumio.loader.slots import SharedArray, remove_stale_segments
from datumio.sampling import resample_data

__all__ = ["BatchGenerator", "DataGenerator", "img_loader", "resample_data"]

_POOL_MIN_SAMPLES = 256
_AUTO_MAX_WORKERS = 4
_MOMENT_CHUNK = 256
#: Longest single wait on the workers before checking for deaths again.
_POLL_S = 0.5
#: Times one batch may kill a worker (it is re-issued to a replacement) before the pass fails.
_MAX_RESTARTS = 3
_SHUFFLE_TAG = 0x73687566  # "shuf": keeps the shuffle stream apart from sample streams


def _fresh_seed() -> int:
    """A seed from the operating system (``rng_seed=None``)."""
    return int(np.random.SeedSequence().generate_state(2, np.uint64)[0] >> np.uint64(1))


class _GeneratorBase:
    """Shared by :class:`BatchGenerator` and :class:`DataGenerator` (the original options)."""

    def __init__(
        self,
        source: Any,
        y: npt.ArrayLike | None,
        data_loader: Callable[..., Any] | None,
        dl_kwargs: Mapping[str, Any] | None,
        aug_params: Mapping[str, Any] | None,
        rng_aug_params: Mapping[str, Any] | None,
        dataset_zmuv: bool,
        dataset_axis: Axis,
        batch_zmuv: bool,
        batch_axis: Axis,
        sample_zmuv: bool,
        sample_axis: Axis,
    ) -> None:
        self.X = source
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(source):
            raise OptionError(f"y has {len(self.y)} entries but X has {len(source)}")
        if len(source) == 0:
            raise OptionError("X is empty")
        self.data_loader = data_loader
        self.dl_kwargs = dict(dl_kwargs or {})
        self.aug_params = None if aug_params is None else dict(aug_params)
        self.rng_aug_params = None if rng_aug_params is None else dict(rng_aug_params)
        for name, params in (("aug_params", aug_params), ("rng_aug_params", rng_aug_params)):
            if params is not None and "rng" in params:
                raise OptionError(f"{name}: rng is drawn per sample from get_batch(rng_seed=)")
        self.dataset_zmuv, self.dataset_axis = bool(dataset_zmuv), dataset_axis
        self.batch_zmuv, self.batch_axis = bool(batch_zmuv), batch_axis
        self.sample_zmuv, self.sample_axis = bool(sample_zmuv), sample_axis
        #: Record indices of one pass, before shuffling (set by :meth:`resample_dataset`).
        self.indices = np.arange(len(source), dtype=np.int64)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        if self.dataset_zmuv:
            self.mean, self.std = self.compute_datasetmoments()

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

    def compute_datasetmoments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the raw samples over ``dataset_axis`` (exact, in float64)."""
        recipe = self._recipe(False, plain=True)
        n = len(self.X)

        def chunks() -> Iterator[np.ndarray]:
            for lo in range(0, n, _MOMENT_CHUNK):
                yield np.stack(
                    [recipe.load(self.X, i) for i in range(lo, min(n, lo + _MOMENT_CHUNK))]
                )

        return moments(chunks(), self.dataset_axis)

    def resample_dataset(
        self,
        arr: npt.ArrayLike | None = None,
        weights: Mapping[Any, float] | str = "balanced",
        sample_fraction: float = 1.0,
        rng_seed: int | None = None,
    ) -> np.ndarray:
        """Make each pass draw records in the label proportions of ``weights``.

        ``arr`` has one label per record of ``X`` (default ``y``; a 2-D one-hot array uses
        each row's argmax). Each call replaces the previous selection. Uses
        :func:`datumio.sampling.resample_data`: exact quotas, records repeated as evenly as
        possible (the original drew with replacement). Returns the selected indices.
        """
        labels = self.y if arr is None else np.asarray(arr)
        if labels is None:
            raise OptionError("resample_dataset needs arr (labels) when the generator has no y")
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        if len(labels) != len(self.X):
            raise OptionError(f"arr has {len(labels)} labels but X has {len(self.X)} records")
        seed = _fresh_seed() if rng_seed is None else rng_seed
        self.indices = resample_data(labels, weights, sample_fraction, seed)
        return self.indices

    def _choose_workers(self, workers: int | None, n: int) -> int:
        if workers is not None:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
                raise OptionError(f"workers={workers!r}; give 0 (this thread) or more")
            check_worker_count(workers)
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
        """Batches of one pass over the records: ``(batch_X, batch_y)``, or ``batch_X``.

        The last batch holds the remainder. Arrays are the caller's (never reused).

        Args:
            batch_size: samples per batch.
            shuffle: shuffle the records of this pass (seeded by ``rng_seed``).
            rng_seed: seed of the shuffle and of every random augmentation; None: fresh.
            buffer_size: batches prepared ahead by the workers (workers > 0).
            dtype: dtype of ``batch_X``.
            chw_order: ``batch_X`` as (N, C, H, W) instead of (N, H, W, C).
            workers: processes; 0 runs in this thread; None chooses (module doc).
            start_method: "forkserver" (default where available), "spawn" or "fork".
        """
        for name, value in (("batch_size", batch_size), ("buffer_size", buffer_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(f"{name}={value!r}; give a positive int")
        seed = _fresh_seed() if rng_seed is None else rng_seed
        if seed < 0:
            raise OptionError(f"rng_seed={rng_seed}; give a non-negative int or None")
        order = self.indices
        if shuffle:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SHUFFLE_TAG,)))
            order = rng.permutation(order)
        n_workers = self._choose_workers(workers, len(order))
        recipe = self._recipe(bool(chw_order))
        out_dtype = np.dtype(dtype)
        if n_workers == 0:
            return self._run_here(recipe, order, batch_size, seed, out_dtype)
        method = default_start_method() if start_method is None else start_method
        return self._run_pool(
            recipe, order, batch_size, seed, out_dtype, n_workers, buffer_size, method
        )

    def _probe(self, recipe: Recipe, order: np.ndarray, seed: int) -> tuple[int, ...]:
        x = recipe.sample(recipe.load(self.X, int(order[0])), sample_rng(seed, 0, 0))
        return (x.shape[2], x.shape[0], x.shape[1]) if recipe.chw_order else x.shape

    def _pair(self, batch_x: np.ndarray, idx: np.ndarray) -> Any:
        return batch_x if self.y is None else (batch_x, self.y[idx])

    def _run_here(
        self, recipe: Recipe, order: np.ndarray, size: int, seed: int, dtype: np.dtype[Any]
    ) -> Iterator[Any]:
        shape = self._probe(recipe, order, seed)
        for lo in range(0, len(order), size):
            idx = order[lo : lo + size]
            out = np.empty((len(idx), *shape), dtype)
            recipe.fill(self.X, idx, np.arange(lo, lo + len(idx)), seed, out)
            yield self._pair(out, idx)

    def _shared_source(self) -> tuple[Any, SharedArray | None]:
        return list(map(str, self.X)), None

    def _run_pool(
        self,
        recipe: Recipe,
        order: np.ndarray,
        size: int,
        seed: int,
        dtype: np.dtype[Any],
        workers: int,
        buffer_size: int,
        method: str,
    ) -> Iterator[Any]:
        shape = self._probe(recipe, order, seed)
        ahead = max(buffer_size, workers)
        starts = list(range(0, len(order), size))
        source, shared_x = self._shared_source()
        slots: list[SharedArray] = []
        pool: WorkerPool | None = None
        results: dict[int, Message] = {}

        def submit(pool: WorkerPool, b: int) -> None:
            lo = starts[b]
            idx = np.ascontiguousarray(order[lo : lo + size], dtype=np.int64)
            positions = np.arange(lo, lo + len(idx), dtype=np.int64)
            for msg in pool.submit(BatchPlan(0, b, b % ahead, 0, idx, positions)):
                results[msg.batch] = msg

        try:
            remove_stale_segments()  # what a killed run left, as Loader.start does
            slots = [SharedArray((size, *shape), dtype, f"out{k}") for k in range(ahead)]
            job = ArrayJob(
                recipe,
                shared_x.spec if shared_x is not None else tuple(source),
                size,
                tuple(shape),
                dtype.str,
                seed,
            )
            template = WorkerConfig(
                worker_id=-1,
                job=job,
                slot_names=tuple(s.spec.name for s in slots),
                slot_bytes=slots[0].spec.nbytes,
                parent_pid=0,
                death_signal=False,
                readahead=0,
            )
            pool = WorkerPool(method, ConfigFactory(template, method), workers, _MAX_RESTARTS)
            pool.start()
            for b in range(min(ahead, len(starts))):
                submit(pool, b)
            for b, lo in enumerate(starts):
                while b not in results:
                    for msg in pool.wait(_POLL_S):
                        if msg.batch < 0 and isinstance(msg, BatchFailed):
                            raise worker_error(msg, "datagen", "sample")
                        results[msg.batch] = msg
                done = results.pop(b)
                if isinstance(done, BatchFailed):
                    raise worker_error(done, "datagen", "sample")
                pool.forget(0, b)
                idx = order[lo : lo + size]
                batch_x = slots[b % ahead].view()[: len(idx)].copy()
                if b + ahead < len(starts):
                    submit(pool, b + ahead)
                yield self._pair(batch_x, idx)
        finally:
            if pool is not None:
                pool.close()  # NOTE(shutdown): workers stop before their segments go
            for seg in (*slots, shared_x):
                if seg is not None:
                    seg.close()


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
        arr = np.asarray(X)
        super().__init__(
            arr,
            y,
            None,
            None,
            aug_params,
            rng_aug_params,
            dataset_zmuv,
            dataset_axis,
            batch_zmuv,
            batch_axis,
            sample_zmuv,
            sample_axis,
        )

    def _shared_source(self) -> tuple[Any, SharedArray | None]:
        arr = np.ascontiguousarray(self.X)
        if arr.dtype.hasobject:
            raise OptionError("X holds Python objects and cannot be shared: pass workers=0")
        return None, SharedArray.copy_of(arr, "x")


class DataGenerator(_GeneratorBase):
    """Batches of image files (or ``.npy`` arrays) loaded on the fly; see BatchGenerator.

    Args:
        X: file paths.
        data_loader: ``data_loader(path, **dl_kwargs) -> array``; a top-level function
            (it is pickled to the workers). Default :func:`img_loader`.
        dl_kwargs: keywords for ``data_loader``.
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
        batch_zmuv: bool = False,
        batch_axis: Axis = None,
        sample_zmuv: bool = False,
        sample_axis: Axis = None,
    ) -> None:
        paths = [str(p) for p in np.asarray(X).ravel().tolist()]
        super().__init__(
            paths,
            y,
            data_loader,
            dl_kwargs,
            aug_params,
            rng_aug_params,
            dataset_zmuv,
            dataset_axis,
            batch_zmuv,
            batch_axis,
            sample_zmuv,
            sample_axis,
        )
