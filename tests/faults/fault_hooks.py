"""Top-level functions the fault tests hand to workers through ``Transform(user_fn=...)``.

They must be importable in a worker process (spawn/forkserver pickle them by reference).
"""

from __future__ import annotations

import os
import time

import numpy as np

#: The longest a hook blocks: far beyond any test's timeout, short enough that a worker
#: somehow left behind does not live on for long.
_BLOCK_LIMIT_S = 120.0


def _is_poison(image: np.ndarray) -> bool:
    # Same test as fault_support.is_poison (kept here so workers import nothing else).
    return int(image[..., 0].max()) < 40 and int(image[..., 2].min()) > 200


def hang_on_poison(image: np.ndarray, rng: np.random.Generator, gate: str) -> np.ndarray:
    """Blocks on the poison picture until the file ``gate`` exists (bind ``gate`` with
    ``functools.partial``); every other picture passes through at once."""
    if _is_poison(image):
        deadline = time.monotonic() + _BLOCK_LIMIT_S
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
    return image


def slow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    time.sleep(0.02)
    return image
