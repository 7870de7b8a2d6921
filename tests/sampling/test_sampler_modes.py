"""Sampling modes: exact quotas, statistics, within-class cycles, stratified batches, options."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from datumio.errors import OptionError
from datumio.sampling import Sampler, SamplerOptions, SamplingPlan

# Significance level of every chi-square test here. Seeds are fixed, so each test is
# deterministic; ALPHA only says how surprising a failure would be for a correct sampler.
ALPHA = 0.001
COUNTS = np.array([500, 200, 120, 60, 30, 9, 1])


def long_tail_labels(seed: int = 0) -> np.ndarray:
    labels = np.repeat(np.arange(COUNTS.size), COUNTS)
    return np.random.default_rng(seed).permutation(labels)


def target_proportions(mode: str, **kw: object) -> np.ndarray:
    if mode == "natural":
        p = COUNTS.astype(float)
    elif mode == "balanced":
        p = np.ones(COUNTS.size)
    elif mode == "power":
        p = COUNTS.astype(float) ** float(kw["power"])  # type: ignore[arg-type]
    else:
        weights = kw["weights"]
        p = np.array([weights.get(c, 0.0) for c in range(COUNTS.size)])  # type: ignore[attr-defined]
    return p / p.sum()


MODE_CASES = [
    ("natural", {}),
    ("balanced", {}),
    ("power", {"power": 0.5}),
    ("weights", {"weights": {0: 1.0, 3: 2.0, 5: 4.0, 6: 1.0}}),
]


@pytest.mark.parametrize(("mode", "kw"), MODE_CASES)
def test_class_frequencies_in_batches_follow_target(mode: str, kw: dict) -> None:
    """Pool the first batch of 200 epochs: class counts match the target proportions."""
    labels = long_tail_labels()
    sampler = Sampler(labels, mode, seed=123, **kw)
    counts = np.zeros(COUNTS.size, dtype=np.int64)
    for epoch in range(200):
        ids = sampler.ids_at(np.arange(64), epoch)
        counts += np.bincount(labels[ids], minlength=COUNTS.size)
    p = target_proportions(mode, **kw)
    keep = p > 0
    assert counts[~keep].sum() == 0
    assert chisquare(counts[keep], p[keep] * counts.sum()).pvalue > ALPHA


@pytest.mark.parametrize(("mode", "kw"), MODE_CASES)
def test_quotas_are_exact_every_epoch(mode: str, kw: dict) -> None:
    labels = long_tail_labels()
    sampler = Sampler(labels, mode, epoch_size=777, seed=5, **kw)
    plan = sampler.plan()
    assert plan.epoch_size == 777 and int(plan.draws.sum()) == 777
    expected = target_proportions(mode, **kw) * 777
    assert np.all(np.abs(plan.draws - expected) < 1)
    for epoch in (0, 3):
        drawn = np.bincount(labels[sampler.epoch_ids(epoch)], minlength=COUNTS.size)
        assert np.array_equal(drawn, plan.draws)


def test_members_of_a_class_are_uniform_across_epochs() -> None:
    labels = long_tail_labels()
    sampler = Sampler(labels, "balanced", epoch_size=70, seed=9)  # 10 draws per class
    members = np.flatnonzero(labels == 2)  # 120 records, fewer draws than records
    hits = np.zeros(labels.size, dtype=np.int64)
    for epoch in range(600):
        ids = sampler.epoch_ids(epoch)
        np.add.at(hits, ids[labels[ids] == 2], 1)
    assert chisquare(hits[members]).pvalue > ALPHA


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**32), epoch=st.integers(0, 1000))
def test_natural_mode_is_a_permutation(n: int, seed: int, epoch: int) -> None:
    labels = np.arange(n) % 3
    ids = Sampler(labels, "natural", seed=seed).epoch_ids(epoch)
    assert np.array_equal(np.sort(ids), np.arange(n))


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=6).filter(lambda s: sum(s) > 0),
    epoch_size=st.integers(1, 600),
    seed=st.integers(0, 1000),
)
def test_floor_ceil_repeats_and_without_replacement(
    sizes: list[int], epoch_size: int, seed: int
) -> None:
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sampler = Sampler(labels, "balanced", epoch_size=epoch_size, seed=seed)
    plan = sampler.plan()
    ids = sampler.epoch_ids(1)
    hits = np.bincount(ids, minlength=labels.size)
    for cls, n in enumerate(sizes):
        if n == 0:
            continue
        q = int(plan.draws[cls])
        class_hits = hits[labels == cls]
        assert class_hits.min() >= q // n and class_hits.max() <= -(-q // n)
        assert int(class_hits.sum()) == q
        # each consecutive pass of n draws over the class touches every record once: the
        # sequence of this class's draws, in slot order, is pass after pass of permutations
        in_class = sampler._class_ids[sampler._offsets[cls] : sampler._offsets[cls + 1]]
        assert set(in_class.tolist()) == set(np.flatnonzero(labels == cls).tolist())


def test_within_class_passes_are_permutations() -> None:
    """docs/sampling.md: within a class, records are drawn without replacement until the
    class is exhausted, then reshuffled. 35 draws of a class of 9 records are 3 full passes
    (every record 3 times) and 8 draws of a fourth (8 records once more, one not), and
    which record misses the fourth pass changes with the epoch."""
    labels = long_tail_labels()
    sampler = Sampler(labels, "balanced", epoch_size=7 * 35, seed=4)  # 35 draws per class
    members = np.flatnonzero(labels == 5)  # 9 records
    assert members.size == 9
    short = set()
    for epoch in range(60):
        hits = np.bincount(sampler.epoch_ids(epoch), minlength=labels.size)
        assert sorted(hits[members].tolist()) == [3] + [4] * 8
        assert hits[labels == 6].tolist() == [35]  # a class of one record: every draw
        drawn = np.flatnonzero(labels == 0)  # 500 records, 35 draws: one partial pass
        assert sorted(set(hits[drawn].tolist())) == [0, 1] and hits[drawn].sum() == 35
        short.add(int(members[hits[members] == 3][0]))
    # Reshuffled every epoch: over 60 epochs each of the 9 records was the one left out.
    assert short == set(members.tolist())


def test_stratified_batches_hold_their_quota() -> None:
    labels = long_tail_labels()
    batch = 40
    sampler = Sampler(labels, power=0.5, stratified=True, batch_size=batch, seed=2)
    plan = sampler.plan()
    share = plan.draws * batch / sampler.epoch_size
    assert sampler.epoch_size % batch == 0
    for ids in sampler.batches():
        got = np.bincount(labels[ids], minlength=COUNTS.size)
        assert np.all(got >= np.floor(share)) and np.all(got <= np.ceil(share))
    assert np.array_equal(
        np.bincount(labels[sampler.epoch_ids(0)], minlength=COUNTS.size), plan.draws
    )


def test_stratified_batch_size_must_match() -> None:
    sampler = Sampler(long_tail_labels(), stratified=True, batch_size=32)
    with pytest.raises(OptionError, match="batch_size"):
        sampler.batches(16)
    with pytest.raises(OptionError, match="batch_size"):
        Sampler(long_tail_labels(), stratified=True)
    with pytest.raises(OptionError, match="epoch_size"):
        Sampler(long_tail_labels(), stratified=True, batch_size=64, epoch_size=10)


def test_zero_record_classes_warn_and_are_skipped() -> None:
    labels = np.array([0, 0, 2, 2, 2, 4])
    with pytest.warns(UserWarning, match=r"no records.*\[1, 3\]"):
        sampler = Sampler(labels, "balanced", epoch_size=30)
    plan = sampler.plan()
    assert plan.draws.tolist() == [10, 0, 10, 0, 10]
    assert set(np.unique(labels[sampler.epoch_ids()]).tolist()) == {0, 2, 4}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mode": "loud"}, "mode"),
        ({"mode": "weights"}, "weights"),
        ({"mode": "power"}, "power"),
        ({"weights": {0: 1.0}, "power": 1.0}, "power"),
        ({"weights": {0: -1.0}}, "weights"),
        ({"weights": {0: 0.0}}, "weights"),
        ({"power": float("nan")}, "power"),
        ({"mode": "natural", "weights": {0: 1.0}}, "weights"),
        ({"epoch_size": 0}, "epoch_size"),
        ({"seed": -1}, "seed"),
        ({"rank": 2, "world_size": 2}, "rank"),
        ({"world_size": 0}, "world_size"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_options_raise_option_error_naming_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(OptionError, match=name):
        Sampler(long_tail_labels(), **kwargs)


@pytest.mark.parametrize(
    ("labels", "name"),
    [
        (np.zeros((2, 2), int), "labels"),
        (np.array([0.5, 1.0]), "labels"),
        (np.array([], int), "labels"),
    ],
)
def test_bad_labels_raise(labels: np.ndarray, name: str) -> None:
    with pytest.raises(OptionError, match=name):
        Sampler(labels)


def test_groups_replace_labels() -> None:
    labels = np.zeros(100, dtype=np.int64)
    groups = np.repeat([0, 1], [90, 10])
    sampler = Sampler(labels, groups=groups, seed=1)
    assert np.bincount(groups[sampler.epoch_ids()]).tolist() == [50, 50]
    with pytest.raises(OptionError, match="groups"):
        Sampler(labels, groups=groups[:10])


def test_dataset_with_stored_index_is_used_as_is(tmp_path) -> None:  # type: ignore[no-untyped-def]
    labels = long_tail_labels()
    order = np.argsort(labels, kind="stable").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(COUNTS)]).astype(np.int64)
    np.save(tmp_path / "ids.npy", order)
    np.save(tmp_path / "offsets.npy", offsets)
    dataset = SimpleNamespace(
        labels=labels,
        class_ids=np.load(tmp_path / "ids.npy", mmap_mode="r"),
        class_offsets=np.load(tmp_path / "offsets.npy", mmap_mode="r"),
        num_classes=COUNTS.size,
    )
    from_ds = Sampler(dataset, seed=3)
    from_labels = Sampler(labels, seed=3)
    assert np.array_equal(from_ds.epoch_ids(2), from_labels.epoch_ids(2))
    assert np.array_equal(from_ds.plan().class_counts, COUNTS)


def test_plan_reports_draws_unique_repeats() -> None:
    sampler = Sampler(long_tail_labels(), "balanced", epoch_size=700)
    plan = sampler.plan()
    assert isinstance(plan, SamplingPlan)
    assert plan.draws.tolist() == [100] * 7
    assert plan.unique.tolist() == [100, 100, 100, 60, 30, 9, 1]
    assert plan.mean_repeats[-1] == 100.0 and plan.mean_repeats[0] == 0.2
    assert plan.fraction_seen == pytest.approx(400 / COUNTS.sum())
    d = plan.to_dict()
    import json

    assert json.loads(json.dumps(d))["draws"] == [100] * 7


def test_natural_plan_without_class_index() -> None:
    sampler = Sampler(long_tail_labels(), "natural")
    plan = sampler.plan()
    assert plan.draws.tolist() == COUNTS.tolist() and plan.fraction_seen == 1.0


def test_options_object() -> None:
    options = SamplerOptions(weights={1: 2.0})
    assert options.mode == "weights"
    sampler = Sampler.from_options(long_tail_labels(), options)
    assert set(np.unique(long_tail_labels()[sampler.epoch_ids()]).tolist()) == {1}
