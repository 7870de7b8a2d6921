"""Checkpoint state of a sampler: what is saved and what must match on resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datumio.errors import OptionError

STATE_FORMAT = "datumio.sampler/1"
#: The format of ``Loader.state_dict()`` (``datumio.loader``), which holds a sampler's state.
LOADER_STATE_FORMAT = "datumio.loader/1"
_OTHER_WORLD = (
    ", or, to resume on another world size, load Sampler.merge_states() of every rank's "
    "state (one rank's position says nothing of what the other ranks served)"
)


def _json_norm(value: object) -> object:
    """Normalise tuples to lists so a JSON round trip compares equal."""
    if isinstance(value, tuple | list):
        return [_json_norm(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_norm(v) for k, v in value.items()}
    return value


def check_format(
    state: object, expected: str, owner: str, others: Mapping[str, str]
) -> Mapping[str, Any]:
    """``state`` when it is a mapping of format ``expected``: what ``owner.state_dict()``
    returns (possibly through JSON or a checkpoint).

    Args:
        state: what ``owner.load_state_dict`` was given.
        expected: the format ``owner`` writes.
        owner: ``"Sampler"`` or ``"Loader"``, for the message.
        others: another datumio format -> what to do with a state of that format.

    Raises:
        OptionError: not a mapping, a mapping of another library, or another datumio
            state (saying whose, and what to do).
    """
    wanted = f"give it what {owner}.state_dict() returned (possibly through JSON)"
    if not isinstance(state, Mapping):
        raise OptionError(
            f"{owner}.load_state_dict() got {type(state).__name__}, not a datumio state: {wanted}"
        )
    found = state.get("format")
    if found == expected:
        return state
    hint = others.get(found) if isinstance(found, str) else None
    if hint is not None:
        raise OptionError(
            f"{owner}.load_state_dict(): state format {found!r} is not {expected!r}: {hint}"
        )
    if not isinstance(found, str) or not found.startswith("datumio."):
        keys = ", ".join(repr(k) for k in list(state)[:6])
        raise OptionError(
            f"{owner}.load_state_dict(): not a datumio state (no format {expected!r}; its "
            f"keys: {keys or 'none'}); {wanted}"
        )
    raise OptionError(
        f"{owner}.load_state_dict(): state format {found!r} is not {expected!r} (saved by "
        f"another datumio version?); {wanted}"
    )


def check_place(state: Mapping[str, Any], rank_size: int, owner: str) -> tuple[int, int]:
    """The ``(epoch, position)`` of ``state``: a position inside its epoch.

    Raises:
        OptionError: missing or non-integer entries, or a position outside the epoch.
    """
    try:
        epoch, position = _whole(state["epoch"]), _whole(state["position"])
    except (KeyError, TypeError, ValueError):
        raise OptionError(
            f"{owner}.load_state_dict(): the state needs integer 'epoch' and 'position' "
            f"entries, got {state.get('epoch')!r} and {state.get('position')!r}"
        ) from None
    if epoch < 0 or not 0 <= position <= rank_size:
        raise OptionError(
            f"{owner}.load_state_dict(): state epoch {epoch} / position {position} out of "
            f"range: an epoch here has {rank_size} draws on this rank, so the position must "
            f"be in [0, {rank_size}]; the state was saved by another setup (epoch_size, "
            "world_size, pad) or edited"
        )
    return epoch, position


def _whole(value: object) -> int:
    """``value`` as an int when it is a whole number (a JSON int, or a float like 3.0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(value)
    return int(value)


def check_state(
    state: Mapping[str, Any], expected: Mapping[str, Any], rank_size: int
) -> tuple[int, int]:
    """Check a saved state against this sampler and return its ``(epoch, position)``.

    Args:
        state: output of ``Sampler.state_dict`` (possibly through JSON).
        expected: this sampler's values of the fields that must match (seed, world size, ...).
        rank_size: records per epoch on this rank (bounds the position).

    Raises:
        OptionError: not a sampler's state, a mismatching field, or a position out of range.
    """
    state = check_format(
        state,
        STATE_FORMAT,
        "Sampler",
        {LOADER_STATE_FORMAT: "this is a Loader's state; its sampler's is state['sampler']"},
    )
    for name, mine in expected.items():
        theirs = state.get(name)
        if _json_norm(theirs) != _json_norm(mine):
            raise OptionError(
                f"cannot resume: the state has {name}={theirs!r} but this sampler has "
                f"{mine!r}; build the Sampler with the same {name}"
                + (_OTHER_WORLD if name == "world_size" else "")
            )
    return check_place(state, rank_size, "Sampler")
