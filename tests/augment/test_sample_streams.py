"""``SampleStreams``: the Loader workers' faster way to ``sample_rng`` (the same draws)."""

from __future__ import annotations

import numpy as np
import pytest

from datumio.augment.seeds import SampleStreams, sample_rng

BIG = [0, 1, 5, 2**31, 2**32 - 1, 2**32, 2**40 + 7, 2**70 + 3]


def test_every_stream_draws_what_sample_rng_draws() -> None:
    """One-word and multi-word seeds, epochs and positions (SeedSequence splits ints into
    32-bit words), epochs changing back and forth, positions in any order."""
    pick = np.random.default_rng(1)
    for seed in BIG:
        streams = SampleStreams(seed)
        for _ in range(12):
            epoch = int(pick.choice(BIG[:6]))
            position = int(pick.choice([*BIG, int(pick.integers(0, 10**6))]))
            got = streams.rng(epoch, position)
            want = sample_rng(seed, epoch, position)
            assert got.random(3).tolist() == want.random(3).tolist(), (seed, epoch, position)
            assert got.integers(0, 1000, 4).tolist() == want.integers(0, 1000, 4).tolist()


def test_a_stream_starts_afresh_for_each_sample() -> None:
    streams = SampleStreams(3)
    first = streams.rng(0, 7).random(2)
    streams.rng(0, 8).random(100)  # another sample in between
    np.testing.assert_array_equal(streams.rng(0, 7).random(2), first)


@pytest.mark.parametrize("args", [(-1, 0, 0), (0, -1, 0), (0, 0, -1)])
def test_negative_inputs_are_refused_as_sample_rng_refuses_them(
    args: tuple[int, int, int],
) -> None:
    seed, epoch, position = args
    with pytest.raises(ValueError):
        sample_rng(seed, epoch, position)
    with pytest.raises(ValueError, match="negative"):
        SampleStreams(seed).rng(epoch, position)
