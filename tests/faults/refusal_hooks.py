"""Top-level functions the refusal tests hand to workers (``Transform(user_fn=...)``, a
``DataGenerator`` ``data_loader``): importable in a worker process, so they pickle by
reference. Each does one thing the loader must refuse or report."""

from __future__ import annotations

import multiprocessing
import sys

import numpy as np


def doubled_float64(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float64 values from -10 to 500: a cast to uint8 would wrap them."""
    return image.astype(np.float64) * 2.0 - 10.0


def shifted_int64(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int64 values from 300 up: a cast to uint8 would wrap them."""
    return image.astype(np.int64) + 300


def one_nan(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 values, one of them NaN."""
    out = image.astype(np.float32)
    out[0, 0, 0] = np.nan
    return out


def exits_3(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sys.exit(3)


def interrupts(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise KeyboardInterrupt


def loader_exits_4_in_a_worker(path: str) -> np.ndarray:
    """A ``DataGenerator`` data_loader that ends the process instead of loading, in a
    worker (the generator loads one sample in the calling process first, for its shape)."""
    if multiprocessing.parent_process() is not None:
        sys.exit(4)
    return np.zeros((8, 8, 3), np.uint8)
