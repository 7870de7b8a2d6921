"""resample_data: the original datumio API on the new sampler."""

from __future__ import annotations

import numpy as np
import pytest

from datumio.errors import OptionError
from datumio.sampling import resample_data

ARR = np.array(["cat"] * 70 + ["dog"] * 25 + ["emu"] * 5)


def test_balanced_resampling() -> None:
    idx = resample_data(ARR, "balanced", sample_fraction=0.6, rng_seed=1)
    assert idx.dtype == np.int64 and idx.size == 60
    values, counts = np.unique(ARR[idx], return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == {
        "cat": 20,
        "dog": 20,
        "emu": 20,
    }
    # emu has 5 records drawn 20 times: each exactly 4 times (floor == ceil)
    assert np.all(np.bincount(idx, minlength=100)[95:] == 4)


def test_weight_dict_and_fraction_above_one() -> None:
    idx = resample_data(ARR, {"cat": 1, "dog": 3}, sample_fraction=2.0, rng_seed=0)
    assert idx.size == 200
    assert np.sum(ARR[idx] == "dog") == 150 and np.sum(ARR[idx] == "cat") == 50


def test_deterministic_in_rng_seed() -> None:
    a = resample_data(ARR, "balanced", 1.0, 5)
    assert np.array_equal(a, resample_data(ARR, "balanced", 1.0, 5))
    assert not np.array_equal(a, resample_data(ARR, "balanced", 1.0, 6))


def test_integer_labels_and_unknown_weight_keys() -> None:
    arr = np.array([3, 3, 3, 7])
    with pytest.warns(UserWarning, match="do not occur"):
        idx = resample_data(arr, {3: 1.0, 7: 1.0, 9: 5.0}, 1.0, 0)
    assert sorted(arr[idx].tolist()) == [3, 3, 7, 7]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"weights": "uniform"}, "weights"),
        ({"weights": 3}, "weights"),
        ({"sample_fraction": 0.0}, "sample_fraction"),
        ({"sample_fraction": float("inf")}, "sample_fraction"),
        ({"rng_seed": -1}, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(OptionError, match=name):
        resample_data(ARR, **kwargs)
