"""Quotas (largest remainder) and the O(N) class index."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datumio.errors import OptionError
from datumio.sampling._quotas import (
    build_class_index,
    count_classes,
    largest_remainder_quotas,
    target_weights,
)


@settings(max_examples=60, deadline=None)
@given(
    raw=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50).filter(
        lambda r: sum(r) > 0
    ),
    total=st.integers(1, 10**9),
)
def test_quotas_are_exact_and_within_one(raw: list[float], total: int) -> None:
    weights = np.array(raw)
    quotas = largest_remainder_quotas(weights, total)
    assert int(quotas.sum()) == total
    share = weights / weights.sum() * total
    assert np.all(np.abs(quotas - share) < 1 + 1e-6)
    assert np.all(quotas[weights == 0] == 0)


def test_quotas_break_ties_by_class_id() -> None:
    assert largest_remainder_quotas(np.ones(3), 4).tolist() == [2, 1, 1]
    assert largest_remainder_quotas(np.ones(4), 10).tolist() == [3, 3, 2, 2]


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
