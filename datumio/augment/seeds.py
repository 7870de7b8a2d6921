"""Per-sample random streams derived from (run seed, epoch, plan position), never time or pid."""

from __future__ import annotations

import numpy as np

#: Domain tag ("aug1") that keeps augmentation streams apart from the sampler's keys, which
#: derive from ``SeedSequence(seed, spawn_key=(epoch,))``.
_AUGMENT_TAG = 0x61756731


def sample_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """The random generator of one sample.

    ``position`` is the sample's position in the epoch plan (for a distributed sampler,
    ``rank_position * world_size + rank``), so the same (seed, epoch, position) gives the same
    draws in any process, on any number of workers.
    """
    seq = np.random.SeedSequence(int(seed), spawn_key=(_AUGMENT_TAG, int(epoch), int(position)))
    return np.random.Generator(np.random.Philox(seq))
