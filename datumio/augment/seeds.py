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


# -- the same streams, made faster for a worker's loop --------------------------------------
# numpy's SeedSequence (numpy/random/bit_generator.pyx) on Python ints: the pool after the
# run seed, the tag and the epoch is kept, so each sample mixes in only its position. Philox
# takes its key from the pool's generate_state(2, uint64) and starts at counter 0.
_MASK = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4


def _words(n: int) -> list[int]:
    """A non-negative int as SeedSequence reads it: 32-bit words, least significant first."""
    words = [n & _MASK]
    n >>= 32
    while n:
        words.append(n & _MASK)
        n >>= 32
    return words


class _Mixer:
    """SeedSequence's entropy pool while it is being mixed (``hashmix`` keeps a running
    constant, so the state is the pool and that constant)."""

    def __init__(self, pool: list[int], const: int) -> None:
        self.pool, self.const = pool, const

    def _hashmix(self, value: int) -> int:
        value ^= self.const
        self.const = (self.const * _MULT_A) & _MASK
        value = (value * self.const) & _MASK
        return value ^ (value >> 16)

    @staticmethod
    def _mix(x: int, y: int) -> int:
        result = (_MIX_L * x - _MIX_R * y) & _MASK
        return result ^ (result >> 16)

    @classmethod
    def of_run(cls, run: list[int]) -> _Mixer:
        """The pool after the run entropy (padded to the pool's size: a spawn key follows)."""
        m = cls([0] * _POOL, _INIT_A)
        entropy = run + [0] * (_POOL - len(run))
        for i in range(_POOL):
            m.pool[i] = m._hashmix(entropy[i])
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    m.pool[dst] = cls._mix(m.pool[dst], m._hashmix(m.pool[src]))
        for word in entropy[_POOL:]:
            m.add(word)
        return m

    def add(self, word: int) -> None:
        for dst in range(_POOL):
            self.pool[dst] = self._mix(self.pool[dst], self._hashmix(word))

    def copy(self) -> _Mixer:
        return _Mixer(list(self.pool), self.const)


class SampleStreams:
    """``sample_rng(seed, epoch, position)`` for many positions, about 3x cheaper: the
    mixing of the seed, the tag and the epoch is done once, a one-word position is mixed in
    with the hash constants it meets precomputed, and one Philox bit generator is re-keyed
    for each sample.

    The generator returned by :meth:`rng` draws exactly what :func:`sample_rng` gives, but
    it stays valid only until the next call (the next sample re-keys the shared bit
    generator): for a worker's loop that is done with a sample before the next one.
    """

    def __init__(self, seed: int) -> None:
        self._seed = int(seed)
        if self._seed < 0:
            raise ValueError(f"seed {seed} is negative (SeedSequence takes non-negative ints)")
        self._epoch: int | None = None
        self._mixer = _Mixer([], 0)
        self._consts: tuple[int, ...] = ()
        self._bits = np.random.Philox(0)
        self._zeros = np.zeros(4, np.uint64)
        key_consts, const = [], _INIT_B
        for _ in range(4):
            before, const = const, (const * _MULT_B) & _MASK
            key_consts += [before, const]
        self._key_consts = tuple(key_consts)

    def _start_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"epoch {epoch} is negative")
        mixer = _Mixer.of_run(_words(self._seed))
        for word in (_AUGMENT_TAG, *_words(epoch)):
            mixer.add(word)
        consts, const = [], mixer.const
        for _ in range(_POOL):  # the constants a one-word position's hashmixes meet
            before, const = const, (const * _MULT_A) & _MASK
            consts += [before, const]
        self._epoch, self._mixer, self._consts = epoch, mixer, tuple(consts)

    def rng(self, epoch: int, position: int) -> np.random.Generator:
        epoch, position = int(epoch), int(position)
        if epoch != self._epoch:
            self._start_epoch(epoch)
        if 0 <= position <= _MASK:
            pool = []
            c = self._consts
            for dst in range(_POOL):
                h = ((position ^ c[2 * dst]) * c[2 * dst + 1]) & _MASK
                h ^= h >> 16
                r = (_MIX_L * self._mixer.pool[dst] - _MIX_R * h) & _MASK
                pool.append(r ^ (r >> 16))
        elif position < 0:
            raise ValueError(f"position {position} is negative")
        else:
            mixer = self._mixer.copy()
            for word in _words(position):
                mixer.add(word)
            pool = mixer.pool
        k = self._key_consts
        out = []
        for i in range(4):
            v = ((pool[i] ^ k[2 * i]) * k[2 * i + 1]) & _MASK
            out.append(v ^ (v >> 16))
        key = np.array((out[0] | (out[1] << 32), out[2] | (out[3] << 32)), np.uint64)
        self._bits.state = {
            "bit_generator": "Philox",
            "state": {"counter": self._zeros, "key": key},
            "buffer": self._zeros,
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        return np.random.Generator(self._bits)
