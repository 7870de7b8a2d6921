"""Top-level functions the loader tests hand to workers through ``Transform(user_fn=...)``."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np


def fail_always(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise ValueError("boom from user_fn")


class Unpicklable(Exception):
    """An exception that cannot cross a pipe: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def fail_unpicklable(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    raise Unpicklable("cannot pickle me")


def invert(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - image


def slow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    time.sleep(0.01)
    return image


def die(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    os.kill(os.getpid(), signal.SIGKILL)
    return image
