"""Helpers of the augmentation tests (a module name of its own: conftest names clash)."""

from __future__ import annotations

import numpy as np


def checker(size: int = 16, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A random uint8 image: every pixel distinct enough to catch any misplacement."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
