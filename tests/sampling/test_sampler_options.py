"""SamplerOptions refuse a bad value naming the field, the value and what to give; the
mode goes second or by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from datumio import OptionError, Sampler, SamplerOptions


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("mode", "balancd", "mode='balancd'; give one of 'natural', 'balanced', 'weights'"),
        ("weights", [1.0, 2.0], "weights=[1.0, 2.0]; give a mapping {class id or name"),
        ("weights", {0: -1.0}, "weights[0]=-1.0; give a finite number >= 0"),
        ("weights", {"cat": math.nan}, "weights['cat']=nan; give a finite number >= 0"),
        ("weights", {0: 0.0, 1: 0.0}, "give at least one class a positive weight"),
        ("weights", {True: 1.0}, "a key of weights=True; give class ids or class names"),
        ("power", math.inf, "power=inf; give a finite number"),
        ("power", "0.5", "power='0.5'; give a finite number"),
        ("epoch_size", 0, "epoch_size=0; give a positive int"),
        ("seed", -1, "seed=-1; give an int >= 0"),
        ("seed", 1.5, "seed=1.5; give an int >= 0"),
        ("stratified", 1, "stratified=1; give True or False"),
        ("batch_size", True, "batch_size=True; give a positive int"),
        ("pad", "yes", "pad='yes'; give True or False"),
        ("rank", -1, "rank=-1; give an int >= 0"),
        ("world_size", 0, "world_size=0; give a positive int"),
        ("locality", -2, "locality=-2; give an int >= 0"),
        ("lockstep", 1, "lockstep=1; give True or False"),
    ],
)
def test_a_bad_value_is_refused_with_the_field_and_the_value(
    field: str, value: object, says: str
) -> None:
    with pytest.raises(OptionError) as info:
        SamplerOptions(**{field: value})  # type: ignore[arg-type]
    assert says in str(info.value)


def test_values_come_back_in_one_type() -> None:
    options = SamplerOptions(weights={np.int64(1): 2, "cat": np.float32(0.5)}, seed=np.uint8(3))
    assert options.weights == {1: 2.0, "cat": 0.5} and options.mode == "weights"
    assert [type(k) for k in options.weights] == [int, str]
    assert type(options.seed) is int and SamplerOptions(power=1).power == 1.0


def test_the_mode_goes_second_or_by_name_but_not_both() -> None:
    labels = np.repeat(np.arange(3), [6, 3, 1])
    second, by_name = Sampler(labels, "natural", seed=2), Sampler(labels, mode="natural", seed=2)
    assert second.options == by_name.options and second.options.mode == "natural"
    with pytest.raises(TypeError, match="mode twice"):
        Sampler(labels, "power", mode="weights", power=0.5)
