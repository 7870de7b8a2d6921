"""How options reach a Loader and a Sampler: an options object passed whole, keywords on top,
typos refused with the closest name. Nothing here starts a worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datumio
from datumio import Loader, LoaderOptions, OptionError, Sampler, SamplerOptions


def test_options_are_passed_whole_and_keywords_go_on_top(small_lmdb: Path) -> None:
    base = LoaderOptions(batch_size=4, workers=1, seed=7, readahead=0)
    loader = Loader(small_lmdb, options=base)
    assert loader.options == base
    moved = Loader(small_lmdb, 8, options=base, workers=3)
    assert (moved.options.batch_size, moved.options.workers) == (8, 3)
    assert (moved.options.seed, moved.options.readahead) == (7, 0)  # kept from base
    assert moved.options.prefetch == 2  # derived from base's workers, not recomputed
    assert moved.sampler.options.seed == 7  # the run seed reaches the sampler it builds
    assert base.workers == 1  # the object passed in is not changed


def test_a_loader_needs_a_batch_size(small_lmdb: Path) -> None:
    with pytest.raises(TypeError, match="batch_size"):
        Loader(small_lmdb)


@pytest.mark.parametrize(
    ("typo", "near"),
    [("workrs", "workers"), ("sampleing", "sampling"), ("epochsize", "epoch_size")],
)
def test_a_misspelt_keyword_names_the_option_meant(small_lmdb: Path, typo: str, near: str) -> None:
    with pytest.raises(TypeError, match=rf"'{typo}' \(did you mean '{near}'\?\)"):
        Loader(small_lmdb, 4, **{typo: 2})


def test_sampler_keywords_build_the_loaders_sampler(small_lmdb: Path) -> None:
    loader = Loader(small_lmdb, 4, sampling="power", power=0.5, epoch_size=40, seed=3)
    opts = loader.sampler.options
    assert (opts.mode, opts.power, opts.epoch_size, opts.seed) == ("power", 0.5, 40, 3)
    # The old spelling: the default "balanced" with weights means weights.
    weighted = Loader(small_lmdb, 4, weights={0: 1.0})
    assert weighted.sampler.options.mode == "weights"
    natural = Loader(small_lmdb, 4, sampling="natural")
    assert natural.sampler.options.mode == "natural"
    # "balanced" gives way to power= whatever its value; 0 is an exponent like another.
    flat = Loader(small_lmdb, 4, sampling="balanced", power=0.0)
    assert (flat.sampler.options.mode, flat.sampler.options.power) == ("power", 0.0)


def test_sampler_keywords_with_a_ready_sampler_are_refused(small_lmdb: Path) -> None:
    sampler = Sampler(datumio.open(small_lmdb), "natural")
    with pytest.raises(OptionError, match="epoch_size, sampling given with a ready sampler"):
        Loader(small_lmdb, 4, sampler=sampler, sampling="balanced", epoch_size=8)
    assert Loader(small_lmdb, 4, sampler=sampler, seed=5).sampler is sampler


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


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("batch_size", 0, "batch_size=0; give a positive int"),
        ("workers", True, "workers=True; give a positive int"),
        ("prefetch", 0, "prefetch=0; give a positive int (default 2*workers)"),
        ("slots", -1, "slots=-1; give a positive int (default prefetch + 2)"),
        ("seed", -3, "seed=-3; give an int >= 0"),
        ("drop_last", "no", "drop_last='no'; give True or False"),
        ("copy", 1, "copy=1; give True or False"),
        ("strict", None, "strict=None; give True or False"),
        ("extras", ("ids", "idz"), "extras[1]='idz'; give one of 'ids', 'groups'"),
        ("start_method", "thread", "start_method='thread'; give one of 'spawn'"),
        ("batch_timeout_s", 0, "batch_timeout_s=0; give seconds > 0"),
        ("max_restarts", -1, "max_restarts=-1; give an int >= 0"),
        ("decode", "gpu", "decode='gpu'; give one of 'worker', 'device'"),
        ("readahead", 1.5, "readahead=1.5; give batches ahead (0: none)"),
        ("fields", "boxes", "fields='boxes'; give a tuple of field names"),
        ("box_min_visible", 1.5, "box_min_visible=1.5; give a probability from 0 to 1"),
        ("keypoint_pairs", ((0, 1), (2,)), "keypoint_pairs[1]=(2,); give a pair (a, b)"),
        ("mask_fill", 256, "mask_fill=256; give an int from 0 to 255"),
        ("balance_by", 3, "balance_by=3; give a non-empty text"),
        ("max_open_shards", 0, "max_open_shards=0; give a positive int"),
    ],
)
def test_a_bad_loader_option_is_refused_with_the_field_and_the_value(
    field: str, value: object, says: str
) -> None:
    kwargs = {"batch_size": 4, field: value}
    with pytest.raises(OptionError) as info:
        LoaderOptions(**kwargs)  # type: ignore[arg-type]
    assert says in str(info.value)


def test_loader_options_come_back_in_one_type() -> None:
    options = LoaderOptions(
        batch_size=np.int64(4), extras=["ids"], fields=["boxes"], keypoint_pairs=[[0, 1]]
    )  # type: ignore[arg-type]
    assert type(options.batch_size) is int and options.extras == ("ids",)
    assert options.fields == ("boxes",) and options.keypoint_pairs == ((0, 1),)
    assert (options.prefetch, options.slots) == (4, 6)  # 2 per worker, then 2 more
