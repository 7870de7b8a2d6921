"""Quotas (largest remainder) and the O(N) class index.

The quota tests compare with :func:`reference_quotas`, the rule of docs/sampling.md ("Exact
quotas") written out here in exact rational arithmetic, independently of
``datumio.sampling``: exact counts per class, not tolerances.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datumio.errors import OptionError
from datumio.sampling import Sampler
from datumio.sampling._quotas import (
    build_class_index,
    count_classes,
    largest_remainder_quotas,
    target_weights,
)


def reference_quotas(weights: Sequence[int | float | Fraction], total: int) -> list[int]:
    """docs/sampling.md: class c gets floor(E * p_c), plus one for the E - sum(floor) classes
    with the largest fractional parts (ties to the lower class id); p_c = w_c / sum(w)."""
    w = [Fraction(x) for x in weights]
    share = [total * x / sum(w) for x in w]
    quotas = [math.floor(s) for s in share]
    left = total - sum(quotas)
    ranked = sorted((c for c in range(len(w)) if w[c] > 0), key=lambda c: (quotas[c] - share[c], c))
    for c in ranked[:left]:
        quotas[c] += 1
    return quotas


def documented_weights(sizes: Sequence[int], mode: str, weights: dict[int, int]) -> list[int]:
    """The target weight of each class for a mode (docs/sampling.md, "Modes")."""
    if mode == "natural":
        return list(sizes)
    if mode == "balanced":
        return [1 if n > 0 else 0 for n in sizes]
    return [weights.get(c, 0) if sizes[c] > 0 else 0 for c in range(len(sizes))]


@pytest.mark.parametrize(
    ("weights", "total", "expected"),
    [
        ([1, 1, 1], 4, [2, 1, 1]),  # a three-way tie: the lowest id first
        ([1, 1, 1, 1], 10, [3, 3, 2, 2]),
        ([1, 2, 3], 10, [2, 3, 5]),  # 1.67, 3.33, 5: class 0 rounds up
        ([3, 2, 1], 10, [5, 3, 2]),  # 5, 3.33, 1.67: class 2 rounds up
        ([5, 0, 1, 1], 3, [2, 0, 1, 0]),  # 2.14, 0, 0.43, 0.43: the tie to class 2
        ([1, 0, 1], 5, [3, 0, 2]),  # 2.5, 0, 2.5
        ([2, 7, 1, 0, 5], 1, [0, 1, 0, 0, 0]),  # 0.13, 0.47, 0.07, 0, 0.33
        ([500, 200, 120, 60, 30, 9, 1], 777, [422, 169, 101, 51, 25, 8, 1]),
    ],
)
def test_quotas_worked_out_by_hand(weights: list[int], total: int, expected: list[int]) -> None:
    assert reference_quotas(weights, total) == expected  # the model itself
    assert largest_remainder_quotas(np.array(weights, float), total).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(
    raw=st.lists(st.integers(0, 1000), min_size=1, max_size=30).filter(lambda r: sum(r) > 0),
    total=st.integers(1, 10**6),
)
def test_quotas_are_the_documented_largest_remainder_split(raw: list[int], total: int) -> None:
    quotas = largest_remainder_quotas(np.array(raw, float), total)
    assert quotas.tolist() == reference_quotas(raw, total)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=8).filter(lambda s: sum(s) > 0),
    mode=st.sampled_from(["natural", "balanced", "weights"]),
    raw_weights=st.lists(st.integers(1, 9), min_size=8, max_size=8),
    epoch_size=st.integers(1, 2000),
    seed=st.integers(0, 2**32 - 1),
)
def test_an_epoch_draws_each_class_exactly_its_reference_quota(
    sizes: list[int], mode: str, raw_weights: list[int], epoch_size: int, seed: int
) -> None:
    """Through the public Sampler: its plan and the ids it draws in two epochs."""
    while sizes[-1] == 0:  # a labels array has max(labels) + 1 classes, so none after it
        sizes = sizes[:-1]
    weights = {c: w for c, w in enumerate(raw_weights[: len(sizes)]) if c % 3 != 1}
    target = documented_weights(sizes, mode, weights)
    if sum(target) == 0:
        return  # no class with both records and weight: an OptionError, tested elsewhere
    expected = reference_quotas(target, epoch_size)
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))
    kw = {"weights": {c: float(w) for c, w in weights.items()}} if mode == "weights" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes without records or weight
        sampler = Sampler(labels, mode, epoch_size=epoch_size, seed=seed, **kw)
    assert sampler.plan().draws.tolist() == expected
    for epoch in (0, 7):
        drawn = np.bincount(labels[sampler.epoch_ids(epoch)], minlength=len(sizes))
        assert drawn.tolist() == expected


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.uint64])
def test_class_index_groups_ids_ascending(dtype: type) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 100, 5000).astype(dtype)
    counts = count_classes(labels, None, "labels")
    offsets, ids = build_class_index(labels, counts)
    assert ids.dtype == np.int64 and offsets.dtype == np.int64
    assert np.array_equal(ids, np.argsort(labels.astype(np.int64), kind="stable"))
    assert np.array_equal(np.diff(offsets), counts)


def test_class_index_beyond_uint16_uses_two_radix_passes() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 200_000, 50_000)
    counts = count_classes(labels, None, "labels")
    offsets, ids = build_class_index(labels, counts)
    assert np.array_equal(ids, np.argsort(labels, kind="stable"))
    assert offsets[-1] == labels.size


def test_count_classes_rejects_negative_and_out_of_range() -> None:
    with pytest.raises(OptionError, match="labels"):
        count_classes(np.array([0, -1]), None, "labels")
    with pytest.raises(OptionError, match="num_classes"):
        count_classes(np.array([0, 5]), 3, "labels")


def test_target_weights_modes() -> None:
    counts = np.array([100, 25, 0, 4])
    assert target_weights(counts, "natural", None, None).tolist() == [100, 25, 0, 4]
    assert target_weights(counts, "power", None, 0.5).tolist() == [10, 5, 0, 2]
    with pytest.warns(UserWarning, match="no records"):
        assert target_weights(counts, "balanced", None, None).tolist() == [1, 1, 0, 1]
    with pytest.warns(UserWarning, match="no records"):
        target_weights(counts, "weights", {2: 1.0, 0: 1.0}, None)
    with pytest.warns(UserWarning), pytest.raises(OptionError, match="positive"):
        target_weights(counts, "weights", {2: 1.0}, None)
