"""Where a Loader resumes: its saved state checked against the Loader it is loaded into.

A state saved on a stored split names it and the split files it read (``split``,
``split_dir``; absent for the whole dataset): it resumes on that split only, as those
splits made it (a split made again holds other records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datumio.errors import OptionError
from datumio.loader.options import LoaderOptions
from datumio.sampling import Sampler
from datumio.sampling._state import LOADER_STATE_FORMAT, check_format, check_place
from datumio.sampling._state import STATE_FORMAT as SAMPLER_STATE_FORMAT
from datumio.shards.dataset import Dataset

__all__ = ["LOADER_STATE_FORMAT", "check_resume", "split_state"]


def split_state(dataset: Dataset) -> dict[str, Any]:
    """What a Loader's state says of the split it reads: its name and the directory of its
    files (nothing for the whole dataset, so such a state is as it always was)."""
    splits = dataset.manifest.splits
    if dataset.split is None or splits is None:
        return {}
    return {"split": dataset.split, "split_dir": splits.dir}


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
        {
            SAMPLER_STATE_FORMAT: "this is a Sampler's state (loader.sampler.load_state_dict "
            "takes it); resume a Loader from what loader.state_dict() or an adapter's "
            "state_dict() returned"
        },
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
