"""The per-sample and per-batch work of :mod:`datumio.datagen`, and dataset moments.

:class:`Recipe` is plain data (pickled once to each worker process); its :meth:`Recipe.fill`
runs the same code in a worker and in the calling thread, so ``workers`` never changes a
pixel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.augment.params import Rng
from datumio.augment.seeds import sample_rng
from datumio.datagen.shapes import shape_error
from datumio.errors import OptionError

Axis = int | tuple[int, ...] | None
_EPS = 1e-12
#: ``mismatch(index, shape, first, first_shape)``: the error for a sample that does not fit.
Mismatch = Callable[[int, tuple[int, ...], int, tuple[int, ...]], OptionError]


@dataclass(frozen=True, eq=False)
class Recipe:
    """What happens to each sample and batch; plain data sent once to every worker."""

    data_loader: Callable[..., Any] | None
    dl_kwargs: Mapping[str, Any]
    mean: np.ndarray | None
    std: np.ndarray | None
    sample_zmuv: bool
    sample_axis: Axis
    batch_zmuv: bool
    batch_axis: Axis
    aug_params: Mapping[str, Any] | None
    rng_aug_params: Mapping[str, Any] | None
    chw_order: bool

    def load(self, source: Any, index: int) -> np.ndarray:
        """Sample ``index`` of ``source`` as float32 HxWxC (before any step)."""
        raw = (
            source[index]
            if self.data_loader is None
            else self.data_loader(source[index], **self.dl_kwargs)
        )
        x = np.array(raw, dtype=np.float32)
        return x[:, :, None] if x.ndim == 2 else x

    def sample(self, x: np.ndarray, rng: Rng) -> np.ndarray:
        """One sample: float32 HxWxC in, float32 HxWxC out (``rng`` draws the random
        augmentation: a per-sample ``Generator``, or ``numpy.random``)."""
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / (self.std + _EPS)
        if self.sample_zmuv:
            x = x - x.mean(axis=self.sample_axis, keepdims=True)
            x = x / (x.std(axis=self.sample_axis, keepdims=True) + _EPS)
        if self.aug_params or self.rng_aug_params:
            from datumio.datagen import transforms  # the original transform functions

            if self.aug_params:
                x = transforms.transform_image(x, **self.aug_params)
            if self.rng_aug_params:
                x = transforms.perturb_image(x, rng=rng, **self.rng_aug_params)
        x = np.asarray(x, dtype=np.float32)
        return x[:, :, None] if x.ndim == 2 else x

    def fill(
        self,
        source: Any,
        indices: np.ndarray,
        positions: np.ndarray,
        seed: int,
        out: np.ndarray,
        *,
        first: int,
        at: list[int] | None = None,
    ) -> None:
        """Write the processed samples ``indices`` into ``out`` (N, *sample shape, out dtype).

        ``first`` is the sample whose shape ``out`` was laid out for (named when another
        one does not fit). ``at``, when given, holds the index of the sample being processed
        (so a caller can name the sample an exception came from)."""
        work = np.empty(out.transpose(0, 2, 3, 1).shape if self.chw_order else out.shape, "f4")
        for k, (i, t) in enumerate(zip(indices.tolist(), positions.tolist(), strict=True)):
            if at is not None:
                at[:] = [i]
            x = self.sample(self.load(source, i), sample_rng(seed, 0, t))
            if x.shape != work.shape[1:]:
                raise shape_error(source, self.data_loader, i, x.shape, first, work.shape[1:])
            work[k] = x
        if self.batch_zmuv:
            work -= work.mean(axis=self.batch_axis, keepdims=True)
            work /= work.std(axis=self.batch_axis, keepdims=True) + _EPS
        np.copyto(out, work.transpose(0, 3, 1, 2) if self.chw_order else work, casting="unsafe")


def _reduction_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    axes = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    axes = tuple(sorted(int(a) % ndim for a in axes))
    if 0 not in axes:
        raise OptionError(
            f"dataset_axis={axis!r} does not reduce over the samples (axis 0); use None, 0, "
            "or a tuple with 0 such as (0, 1, 2) for per-channel moments"
        )
    return axes


def moments(
    chunks: Iterable[tuple[int, np.ndarray]], axis: Axis, mismatch: Mismatch
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over ``axis`` of the samples, exact (float64 sums, streamed).

    ``chunks`` are ``(index of the first sample, samples stacked)``; chunks of different
    sample shapes are fine when ``axis`` reduces what differs (per-channel moments of images
    of many sizes), else ``mismatch`` says which sample does not fit.
    """
    total = sq = None
    count = 0
    first: tuple[int, tuple[int, ...]] = (0, ())
    for at, chunk in chunks:
        c = np.asarray(chunk, dtype=np.float64)
        axes = _reduction_axes(axis, c.ndim)
        s, q = c.sum(axis=axes, keepdims=True), np.square(c).sum(axis=axes, keepdims=True)
        if total is None or sq is None:
            total, sq, first = s, q, (at, c.shape[1:])
        elif s.shape != total.shape or c.shape[-1] != first[1][-1]:
            raise mismatch(at, c.shape[1:], *first)
        else:
            total, sq = total + s, sq + q
        count += int(np.prod([c.shape[a] for a in axes]))
    if total is None or sq is None:
        raise OptionError("dataset_zmuv needs at least one sample")
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - np.square(mean), 0.0))
    keep = [d for i, d in enumerate(mean.shape) if i not in axes]
    return mean.reshape(keep).astype(np.float32), std.reshape(keep).astype(np.float32)
