"""Elastic resume: an epoch begun on ``N`` ranks, finished on ``M``.

An epoch's plan is one global order of ``E`` plan positions (a function of seed and epoch);
rank ``r`` of ``N`` serves plan positions ``p * N + r``. Every rank's saved position says
which plan positions were served, so what is left of the epoch is a list of plan positions:
the *head* (those left between the slowest and the fastest rank, in order) then every
position from ``tail_start`` to ``E``. A new world of ``M`` ranks takes that list the way a
whole epoch is taken: rank ``r`` serves list entries ``i * M + r``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.errors import OptionError
from datumio.sampling._quotas import I64
from datumio.sampling._state import STATE_FORMAT, check_format, check_place

#: The entries every rank's state must agree on to be merged.
_SHARED = ("seed", "epoch", "world_size", "num_records", "options")


@dataclass(frozen=True)
class Remainder:
    """What is left of one epoch, split over a new world.

    Attributes:
        epoch: the epoch it is the rest of.
        head: plan positions left below ``tail_start`` (sorted).
        tail_start: every plan position from here to ``epoch_size`` is left.
        epoch_size: plan positions in the epoch (``E``).
        world_size: ranks of the new world (``M``).
        pad: wrap ranks to the start of what is left instead of dropping its uneven tail.
        saved: the merged state's ``{"world_size": N, "positions": [...]}`` it was made from
            (saved again with every state of the epoch).
    """

    epoch: int
    head: I64
    tail_start: int
    epoch_size: int
    world_size: int
    pad: bool
    saved: dict[str, Any]

    @property
    def left(self) -> int:
        """Plan positions not served yet."""
        return len(self.head) + self.epoch_size - self.tail_start

    @property
    def rank_size(self) -> int:
        """Draws of the rest of the epoch on each new rank."""
        if self.pad:
            return -(-self.left // self.world_size)
        return self.left // self.world_size

    def plan_positions(self, positions: I64, rank: int, wrap: bool = True) -> I64:
        """The plan positions of a new rank's ``positions`` in the rest of the epoch.

        ``wrap=False`` (a sample's augmentation seed): a ``pad=True`` draw past the end of
        the rest keeps a place of its own past the epoch's end, as a wrapped draw of a
        whole epoch does, so a repeat is augmented unlike the draw it repeats.
        """
        unwrapped = positions * self.world_size + rank
        index = unwrapped % max(self.left, 1) if self.pad else unwrapped
        out = self.tail_start + index - len(self.head)
        inside = index < len(self.head)
        out[inside] = self.head[index[inside]]
        if not wrap:
            past = unwrapped >= self.left
            out[past] = self.epoch_size + unwrapped[past] - self.left
        return out


def check_agree(states: Sequence[Mapping[str, Any]], names: Sequence[str], owner: str) -> None:
    """Refuse ranks' states that differ in any entry of ``names`` (``owner.merge_states``).

    Raises:
        OptionError: naming the entry and two values.
    """
    first = states[0]
    for state in states[1:]:
        for name in names:
            if state.get(name) != first.get(name):
                raise OptionError(
                    f"{owner}.merge_states(): the states disagree on {name} "
                    f"({first.get(name)!r} and {state.get(name)!r}); give the states every "
                    "rank saved at one checkpoint of one run, inside one epoch (save before "
                    "any rank finishes the epoch)"
                )


def merge(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One state of the whole world from every rank's ``Sampler.state_dict()``.

    Raises:
        OptionError: not every rank's state of one run and epoch (each rank exactly once).
    """
    if isinstance(states, Mapping) or not isinstance(states, Sequence) or not states:
        raise OptionError(
            "Sampler.merge_states() takes a list of every rank's state_dict(), got "
            f"{type(states).__name__}"
        )
    checked = [check_format(s, STATE_FORMAT, "Sampler", {}) for s in states]
    first = checked[0]
    for state in checked:
        if "elastic" in state:
            raise OptionError(
                "Sampler.merge_states(): a state saved in an epoch that was itself resumed "
                f"on another world size (epoch {state.get('epoch')!r}) resumes only on the "
                "same world size; merge the states of a later epoch"
            )
    check_agree(checked, _SHARED, "Sampler")
    world = first["world_size"]
    ranks = [state.get("rank") for state in checked]
    whole = sorted(r for r in ranks if isinstance(r, int)) == [*range(len(ranks))]
    if not whole or world != len(ranks):
        raise OptionError(
            f"Sampler.merge_states(): got the states of ranks {ranks} of world_size "
            f"{world!r}; give the state of every rank exactly once (ranks consumed different "
            "amounts, so a missing rank's records would be lost or repeated)"
        )
    positions = [0] * world
    for state in checked:
        positions[state["rank"]] = check_place(state, 1 << 62, "Sampler")[1]
    merged = {name: first[name] for name in _SHARED}
    return {"format": STATE_FORMAT, **merged, "positions": positions}


def remainder(state: Mapping[str, Any], epoch_size: int, pad: bool, world_size: int) -> Remainder:
    """The rest of the epoch of a merged ``state`` (``merge``), split over ``world_size``.

    Raises:
        OptionError: positions that are not every rank's, or outside the saved epoch.
    """
    old = state.get("world_size")
    positions = state.get("positions")
    if not isinstance(old, int) or not isinstance(positions, list) or len(positions) != old:
        raise OptionError(
            "Sampler.load_state_dict(): a merged state needs world_size and one position per "
            "rank; give it what Sampler.merge_states() returned"
        )
    old_rank_size = -(-epoch_size // old) if pad else epoch_size // old
    places = [
        check_place({"epoch": 0, "position": p}, old_rank_size, "Sampler")[1] for p in positions
    ]
    lowest, highest = min(places), max(places)
    lo, hi = min(lowest * old, epoch_size), min(highest * old, epoch_size)
    served = np.zeros(hi - lo, dtype=bool)
    for rank, place in enumerate(places):
        plan = np.arange(lowest, place, dtype=np.int64) * old + rank
        served[plan[plan < hi] - lo] = True  # a padded rank's wrapped draws are repeats
    head = np.arange(lo, hi, dtype=np.int64)[~served]
    epoch = check_place({"epoch": state.get("epoch"), "position": 0}, 0, "Sampler")[0]
    saved = {"world_size": old, "positions": places}
    return Remainder(epoch, head, hi, epoch_size, world_size, pad, saved)
