"""Checkpoint state of a sampler: what is saved and what must match on resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datumio.errors import OptionError

STATE_FORMAT = "datumio.sampler/1"


def _json_norm(value: object) -> object:
    """Normalise tuples to lists so a JSON round trip compares equal."""
    if isinstance(value, tuple | list):
        return [_json_norm(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_norm(v) for k, v in value.items()}
    return value


def check_state(
    state: Mapping[str, Any], expected: Mapping[str, Any], rank_size: int
) -> tuple[int, int]:
    """Check a saved state against this sampler and return its ``(epoch, position)``.

    Args:
        state: output of ``Sampler.state_dict`` (possibly through JSON).
        expected: this sampler's values of the fields that must match (seed, world size, ...).
        rank_size: records per epoch on this rank (bounds the position).

    Raises:
        OptionError: another format, a mismatching field, or a position out of range.
    """
    if state.get("format") != STATE_FORMAT:
        raise OptionError(f"state format {state.get('format')!r} is not {STATE_FORMAT!r}")
    for name, mine in expected.items():
        theirs = state.get(name)
        if _json_norm(theirs) != _json_norm(mine):
            raise OptionError(
                f"cannot resume: the state has {name}={theirs!r} but this sampler has "
                f"{mine!r}; build the Sampler with the same {name} (a different world_size "
                "changes which positions each rank owns, so positions are not remapped)"
            )
    try:
        epoch, position = int(state["epoch"]), int(state["position"])
    except (KeyError, TypeError, ValueError):
        raise OptionError("state needs integer 'epoch' and 'position' entries") from None
    if epoch < 0 or not 0 <= position <= rank_size:
        raise OptionError(
            f"state epoch {epoch} / position {position} out of range (position must be in "
            f"[0, {rank_size}])"
        )
    return epoch, position
