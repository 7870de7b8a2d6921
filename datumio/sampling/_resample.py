"""``resample_data``: the original datumio resampling call, on top of :class:`Sampler`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from datumio.errors import OptionError
from datumio.sampling._sampler import Sampler


def resample_data(
    arr: npt.ArrayLike,
    weights: Mapping[object, float] | str = "balanced",
    sample_fraction: float = 1.0,
    rng_seed: int = 0,
) -> npt.NDArray[np.int64]:
    """Return indices into ``arr`` resampled to target class proportions.

    Kept for the original datumio API. Labels may be any hashable numpy values (ints,
    strings). The result has ``round(sample_fraction * len(arr))`` indices whose class counts
    are the exact largest-remainder quotas of the target proportions; within a class the
    indices are drawn without replacement until the class is exhausted, then reshuffled.
    The order is shuffled and depends only on ``rng_seed``.

    Args:
        arr: 1-D array of labels, one per record.
        weights: ``"balanced"`` (every label equally often) or ``{label: weight}``; labels
            missing from the mapping get weight 0, mapping keys absent from ``arr`` are
            skipped with a warning.
        sample_fraction: output length as a fraction of ``len(arr)`` (may exceed 1).
        rng_seed: non-negative seed.

    Returns:
        int64 indices into ``arr``.

    Raises:
        OptionError: bad ``weights``, ``sample_fraction`` or ``rng_seed``.
    """
    labels = np.asarray(arr)
    if labels.ndim != 1 or labels.size == 0:
        raise OptionError(f"arr must be a non-empty 1-D array, got shape {labels.shape}")
    if not isinstance(sample_fraction, int | float) or not math.isfinite(sample_fraction):
        raise OptionError(f"sample_fraction must be a finite number, got {sample_fraction!r}")
    size = round(sample_fraction * labels.size)
    if size < 1:
        raise OptionError(
            f"sample_fraction={sample_fraction} of {labels.size} records gives no samples; "
            "raise sample_fraction"
        )
    values, codes = np.unique(labels, return_inverse=True)
    if isinstance(weights, str):
        if weights != "balanced":
            raise OptionError(f"weights must be 'balanced' or a mapping, got {weights!r}")
        sampler = Sampler(codes, "balanced", epoch_size=size, seed=rng_seed, rank=0, world_size=1)
        return sampler.epoch_ids(0)
    if not isinstance(weights, Mapping):
        raise OptionError(f"weights must be 'balanced' or a mapping, got {type(weights)}")
    index = {value: i for i, value in enumerate(values.tolist())}
    by_code: dict[int, float] = {}
    unknown = []
    for label, weight in weights.items():
        code = index.get(label.item() if isinstance(label, np.generic) else label)
        if code is None:
            unknown.append(label)
        else:
            by_code[code] = weight
    if unknown:
        warnings.warn(
            f"weights name labels that do not occur in arr, skipped: {unknown[:10]}",
            UserWarning,
            stacklevel=2,
        )
    sampler = Sampler(codes, weights=by_code, epoch_size=size, seed=rng_seed, rank=0, world_size=1)
    return sampler.epoch_ids(0)
