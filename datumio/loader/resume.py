"""Where a Loader resumes: its saved state checked against the Loader it is loaded into."""

from __future__ import annotations

from collections.abc import Mapping

from datumio.errors import OptionError
from datumio.loader.options import LoaderOptions
from datumio.sampling import Sampler
from datumio.sampling._state import LOADER_STATE_FORMAT, check_format, check_place
from datumio.sampling._state import STATE_FORMAT as SAMPLER_STATE_FORMAT

__all__ = ["LOADER_STATE_FORMAT", "check_resume"]


def check_resume(state: object, options: LoaderOptions, sampler: Sampler) -> tuple[int, int]:
    """The ``(epoch, position)`` to resume at from a Loader's ``state``, once its sampler's
    state loads (``sampler.load_state_dict``; checked here first, so nothing moves when it
    is refused).

    Raises:
        OptionError: not a Loader's state (None, another library's, a Sampler's), another
            batch size or seed, or a position outside the epoch.
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
    place = check_place(checked, len(sampler), "Loader")
    if not isinstance(checked.get("sampler"), Mapping):
        raise OptionError(
            "Loader.load_state_dict(): the state has no 'sampler' entry; give it what "
            "loader.state_dict() returned"
        )
    return place
