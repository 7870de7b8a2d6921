"""Where a Loader resumes: its saved state checked against the Loader it is loaded into.

A state saved on a stored split names it and the split files it read (``split``,
``split_dir``; absent for the whole dataset): it resumes on that split only, as those
splits made it (a split made again holds other records).

Elastic resume: :func:`merge_states` makes one state of every rank's (their samplers'
merged by ``Sampler.merge_states``); each rank of a new world of any size loads it and
starts at position 0 of its share of what is left of the epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datumio.errors import OptionError
from datumio.loader.options import LoaderOptions
from datumio.sampling import Sampler
from datumio.sampling._elastic import check_agree
from datumio.sampling._state import LOADER_STATE_FORMAT, check_format, check_place
from datumio.sampling._state import STATE_FORMAT as SAMPLER_STATE_FORMAT
from datumio.shards.dataset import Dataset

__all__ = ["LOADER_STATE_FORMAT", "check_resume", "merge_states", "save_state", "split_state"]

#: Entries of a Loader's state that every rank's must agree on to be merged (the sampler's
#: own, seed, world size and options, are checked by ``Sampler.merge_states``).
_SHARED = ("epoch", "batch_size", "seed", "split", "split_dir")
_SAMPLER_HINT = (
    "this is a Sampler's state (loader.sampler.load_state_dict takes it); resume a Loader "
    "from what loader.state_dict() or an adapter's state_dict() returned"
)


def split_state(dataset: Dataset) -> dict[str, Any]:
    """What a Loader's state says of the split it reads: its name and the directory of its
    files (nothing for the whole dataset, so such a state is as it always was)."""
    splits = dataset.manifest.splits
    if dataset.split is None or splits is None:
        return {}
    return {"split": dataset.split, "split_dir": splits.dir}


def save_state(
    epoch: int, position: int, options: LoaderOptions, sampler: Sampler, dataset: Dataset
) -> dict[str, Any]:
    """A Loader's JSON-safe state at ``position`` records into ``epoch``: its sampler's state
    at that place, and what a resume must match (batch size, seed, split)."""
    sampler_state = dict(sampler.state_dict())
    sampler_state["epoch"], sampler_state["position"] = epoch, position
    return {
        "format": LOADER_STATE_FORMAT,
        "epoch": epoch,
        "position": position,
        "batch_size": options.batch_size,
        "seed": options.seed,
        **split_state(dataset),
        "sampler": sampler_state,
    }


def _check_split(state: Mapping[str, Any], dataset: Dataset) -> None:
    """Refuse a state saved on another split (or on the whole dataset, or the other way),
    or on splits made again since (their records differ)."""
    mine = split_state(dataset)
    theirs, name = state.get("split"), dataset.split
    if theirs != name:
        saved = "the whole dataset" if theirs is None else f"split {theirs!r}"
        reads = "the whole dataset" if name is None else f"split {name!r}"
        raise OptionError(
            f"cannot resume: the state was saved on {saved} but this loader reads {reads}; "
            f"build the Loader with split={theirs!r}"
        )
    if state.get("split_dir") != mine.get("split_dir"):
        raise OptionError(
            f"cannot resume: the state was saved on split {name!r} as the splits in "
            f"{state.get('split_dir')!r} held it, but the dataset's splits were made again "
            f"since ({mine.get('split_dir')!r}): split {name!r} now holds other records; start "
            "the run again, or resume a state saved on the new splits"
        )


def check_resume(
    state: object, options: LoaderOptions, sampler: Sampler, dataset: Dataset
) -> tuple[int, int]:
    """The ``(epoch, position)`` to resume at from a Loader's ``state``, once its sampler's
    state loads (``sampler.load_state_dict``; checked here first, so nothing moves when it
    is refused).

    Raises:
        OptionError: not a Loader's state (None, another library's, a Sampler's), another
            batch size, seed or split, or a position outside the epoch.
    """
    checked = check_format(
        state,
        LOADER_STATE_FORMAT,
        "Loader",
        {SAMPLER_STATE_FORMAT: _SAMPLER_HINT},
    )
    for name, mine in (("batch_size", options.batch_size), ("seed", options.seed)):
        if checked.get(name) != mine:
            raise OptionError(
                f"cannot resume: the state has {name}={checked.get(name)!r} but this loader "
                f"has {mine!r}; build the Loader with the same {name}"
            )
    _check_split(checked, dataset)
    place = check_place(checked, len(sampler), "Loader")
    if not isinstance(checked.get("sampler"), Mapping):
        raise OptionError(
            "Loader.load_state_dict(): the state has no 'sampler' entry; give it what "
            "loader.state_dict() returned"
        )
    return place


def merge_states(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One Loader state of a whole world from every rank's ``Loader.state_dict()``.

    Its ``position`` is 0: each rank of the new world starts at the beginning of its share
    of what is left of the epoch (its sampler, loaded with the merged sampler state, knows
    which plan positions those are).

    Raises:
        OptionError: not a list of Loader states, states that disagree on the epoch, batch
            size, seed or split, or sampler states ``Sampler.merge_states`` refuses.
    """
    if isinstance(states, Mapping | str) or not isinstance(states, Sequence) or not states:
        raise OptionError(
            "Loader.merge_states() takes a non-empty list of every rank's "
            f"loader.state_dict(), got {_shown(states)}"
        )
    checked = [_rank_state(i, state) for i, state in enumerate(states)]
    check_agree(checked, _SHARED, "Loader")
    samplers = [
        {**state["sampler"], "epoch": state.get("epoch"), "position": state.get("position")}
        for state in checked
    ]
    shared = {name: checked[0][name] for name in _SHARED if name in checked[0]}
    return {
        "format": LOADER_STATE_FORMAT,
        **shared,
        "position": 0,
        "sampler": _merged_samplers(samplers),
    }


def _merged_samplers(samplers: list[dict[str, Any]]) -> dict[str, Any]:
    """``Sampler.merge_states`` of the ranks' sampler states, its refusal named as ours."""
    try:
        return Sampler.merge_states(samplers)
    except OptionError as exc:
        raise OptionError(f"Loader.merge_states(): {exc}") from None


def _rank_state(index: int, state: object) -> Mapping[str, Any]:
    """Entry ``index`` of the list given to ``merge_states`` when it is a Loader's state."""
    try:
        checked = check_format(
            state, LOADER_STATE_FORMAT, "Loader", {SAMPLER_STATE_FORMAT: _SAMPLER_HINT}
        )
    except OptionError as exc:
        raise OptionError(f"Loader.merge_states(): entry {index} of the list: {exc}") from None
    if not isinstance(checked.get("sampler"), Mapping):
        raise OptionError(
            f"Loader.merge_states(): entry {index} of the list has no 'sampler' entry; give "
            "it what loader.state_dict() returned"
        )
    return checked


def _shown(value: object) -> str:
    """What was given instead of a list, for a message (an empty list says so)."""
    if isinstance(value, Sequence) and not isinstance(value, str) and not value:
        return "an empty list"
    return type(value).__name__
