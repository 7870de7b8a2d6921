"""Keyed Feistel permutations: bijective on every domain, key-sensitive, well mixed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from datumio.sampling._feistel import derive_keys, domain_bits, permute

ALPHA = 0.001  # significance level of the statistical checks (fixed seeds: deterministic)


@settings(max_examples=40, deadline=None)
@given(n=st.one_of(st.integers(1, 70), st.integers(1, 5000)), key=st.integers(0, 2**64 - 1))
def test_permute_is_a_bijection(n: int, key: int) -> None:
    out = permute(np.arange(n), n, np.uint64(key))
    assert out.dtype == np.uint64
    assert np.array_equal(np.sort(out), np.arange(n))


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=6), key=st.integers(0, 2**32))
def test_permute_with_array_domains_matches_scalar_calls(sizes: list[int], key: int) -> None:
    n = np.repeat(np.array(sizes), sizes)
    values = np.concatenate([np.arange(s) for s in sizes])
    keys = derive_keys(np.uint64(key), np.repeat(np.arange(len(sizes)), sizes))
    together = permute(values, n, keys)
    start = 0
    for i, size in enumerate(sizes):
        alone = permute(np.arange(size), size, keys[start])
        assert np.array_equal(together[start : start + size], alone), i
        start += size


def test_domain_bits_cover_the_domain() -> None:
    n = np.array([1, 2, 3, 4, 5, 1024, 1025, 2**40 + 1], dtype=np.uint64)
    left, right = domain_bits(n)
    total = left + right
    assert np.all(2 ** total.astype(np.float64) >= n)
    assert np.all(2 ** total.astype(np.float64) < np.maximum(2 * n, 5))
    assert np.all(np.abs(left.astype(int) - right.astype(int)) <= 1)


def test_keys_give_different_permutations() -> None:
    base = permute(np.arange(1000), 1000, np.uint64(1))
    other = permute(np.arange(1000), 1000, np.uint64(2))
    assert np.mean(base == other) < 0.02


@pytest.mark.parametrize("n", [2, 3, 5, 20, 64, 65, 100, 1000])
def test_images_of_one_value_are_uniform_over_keys(n: int) -> None:
    """Both the tiny-domain (sorted hashes) and the Feistel paths: no value is favoured."""
    keys = derive_keys(np.uint64(7), np.arange(20_000))
    for start in (0, n - 1):
        images = permute(np.full(keys.size, start, dtype=np.uint64), n, keys)
        counts = np.bincount(images.astype(np.int64), minlength=n)
        # 16 tests in this family (8 sizes x 2 start values): Bonferroni-corrected level
        assert chisquare(counts).pvalue > ALPHA / 16


def test_neighbouring_inputs_are_decorrelated() -> None:
    n = 10_000
    out = permute(np.arange(n), n, np.uint64(99)).astype(np.float64)
    assert abs(np.corrcoef(out[:-1], out[1:])[0, 1]) < 0.05
    assert abs(np.corrcoef(np.arange(n), out)[0, 1]) < 0.05
