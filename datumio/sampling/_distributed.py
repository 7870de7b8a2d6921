"""Discovery of this process's rank and the world size.

This is the one place in the sampler that looks outside its arguments: explicit arguments
win, then an initialised ``torch.distributed`` process group (only if the caller already
imported torch: datumio never imports it), then the ``RANK`` / ``WORLD_SIZE`` environment
variables set by ``torchrun`` and most launchers, then ``(0, 1)``.
"""

from __future__ import annotations

import os
import sys

from datumio.errors import OptionError


def _from_torch() -> tuple[int, int] | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return int(dist.get_rank()), int(dist.get_world_size())


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise OptionError(f"environment variable {name}={text!r} is not an integer") from None


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Return ``(rank, world_size)`` from the arguments, torch.distributed, env vars or (0, 1).

    An argument given explicitly overrides only that value; the other is still discovered.

    Raises:
        OptionError: the resulting rank is not in ``[0, world_size)`` or a value is malformed.
    """
    found = None
    if rank is None or world_size is None:
        found = _from_torch()
        if found is None:
            env_rank, env_world = _env_int("RANK"), _env_int("WORLD_SIZE")
            if env_rank is not None or env_world is not None:
                found = (env_rank or 0, env_world or 1)
    found_rank, found_world = found if found is not None else (0, 1)
    final_rank = found_rank if rank is None else rank
    final_world = found_world if world_size is None else world_size
    if final_world < 1:
        raise OptionError(f"world_size must be >= 1, got {final_world}")
    if not 0 <= final_rank < final_world:
        raise OptionError(
            f"rank must be in [0, world_size={final_world}), got {final_rank}; "
            "pass rank= and world_size= explicitly or fix RANK/WORLD_SIZE"
        )
    return final_rank, final_world
