"""How options reach a Loader and a Sampler: an options object passed whole, keywords on top,
typos refused with the closest name. Nothing here starts a worker."""

from __future__ import annotations

import numpy as np
import pytest

import datumio
from datumio import Loader, LoaderOptions, OptionError, Sampler, SamplerOptions


def test_options_are_passed_whole_and_keywords_go_on_top(dataset_path: str) -> None:
    base = LoaderOptions(batch_size=4, workers=1, seed=7, readahead=0)
    loader = Loader(dataset_path, options=base)
    assert loader.options == base
    moved = Loader(dataset_path, 8, options=base, workers=3)
    assert (moved.options.batch_size, moved.options.workers) == (8, 3)
    assert (moved.options.seed, moved.options.readahead) == (7, 0)  # kept from base
    assert moved.options.prefetch == 2  # derived from base's workers, not recomputed
    assert moved.sampler.options.seed == 7  # the run seed reaches the sampler it builds
    assert base.workers == 1  # the object passed in is not changed


def test_a_loader_needs_a_batch_size(dataset_path: str) -> None:
    with pytest.raises(TypeError, match="batch_size"):
        Loader(dataset_path)


@pytest.mark.parametrize(
    ("typo", "near"),
    [("workrs", "workers"), ("sampleing", "sampling"), ("epochsize", "epoch_size")],
)
def test_a_misspelt_keyword_names_the_option_meant(dataset_path: str, typo: str, near: str) -> None:
    with pytest.raises(TypeError, match=rf"'{typo}' \(did you mean '{near}'\?\)"):
        Loader(dataset_path, 4, **{typo: 2})


def test_sampler_keywords_build_the_loaders_sampler(dataset_path: str) -> None:
    loader = Loader(dataset_path, 4, sampling="power", power=0.5, epoch_size=40, seed=3)
    opts = loader.sampler.options
    assert (opts.mode, opts.power, opts.epoch_size, opts.seed) == ("power", 0.5, 40, 3)
    # The old spelling: the default "balanced" with weights means weights.
    weighted = Loader(dataset_path, 4, weights={0: 1.0})
    assert weighted.sampler.options.mode == "weights"
    natural = Loader(dataset_path, 4, sampling="natural")
    assert natural.sampler.options.mode == "natural"


def test_sampler_keywords_with_a_ready_sampler_are_refused(dataset_path: str) -> None:
    sampler = Sampler(datumio.open(dataset_path), "natural")
    with pytest.raises(OptionError, match="epoch_size, sampling given with a ready sampler"):
        Loader(dataset_path, 4, sampler=sampler, sampling="balanced", epoch_size=8)
    assert Loader(dataset_path, 4, sampler=sampler, seed=5).sampler is sampler


def test_sampler_takes_options_whole_with_keywords_on_top() -> None:
    labels = np.repeat(np.arange(3), [10, 5, 2])
    base = SamplerOptions(mode="natural", seed=2)
    sampler = Sampler(labels, options=base, epoch_size=9)
    assert (sampler.options.mode, sampler.options.seed, sampler.options.epoch_size) == (
        "natural",
        2,
        9,
    )
    assert Sampler(labels, options=base, power=0.5).options.mode == "power"
    assert Sampler(labels, "power", power=0.5).options.power == 0.5
    assert np.array_equal(
        Sampler(labels, "balanced", seed=4).ids_at(np.arange(17)),
        Sampler(labels, options=SamplerOptions(mode="balanced", seed=4)).ids_at(np.arange(17)),
    )
    with pytest.raises(TypeError, match=r"'epoch_sise' \(did you mean 'epoch_size'\?\)"):
        Sampler(labels, epoch_sise=4)
