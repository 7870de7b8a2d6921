"""Whether OpenCV (``cv2``) is here, and the one place that imports it.

A leaf: it imports nothing from :mod:`datumio.augment`, so the spec (which checks
``backend="opencv"`` against :func:`installed`) and the OpenCV kernels
(:mod:`datumio.augment.opencv`, which call :func:`load`) both sit above it.

In datumio's worker processes OpenCV runs single-threaded: the pool is the parallelism.

Thread/fork/pickle: :func:`load` imports once per process (``functools.cache``); a forked
child inherits the parent's cached result, a spawned child loads its own.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import multiprocessing
from types import ModuleType

logger = logging.getLogger("datumio")


def installed() -> bool:
    """Whether ``cv2`` can be imported (looked up without importing it)."""
    return importlib.util.find_spec("cv2") is not None


@functools.cache
def load() -> ModuleType | None:
    """``cv2``, imported once (single-threaded in child processes), or None."""
    try:
        import cv2
    except ImportError as exc:
        if multiprocessing.parent_process() is None:  # once, in the training process
            logger.warning(
                "datumio: OpenCV (cv2) cannot be imported (%s): decoding and warping use "
                "Pillow, about 2x slower; `pip install opencv-python-headless` restores the "
                "fast path",
                exc,
            )
        return None
    if multiprocessing.parent_process() is not None:
        cv2.setNumThreads(1)
    return cv2


def describe() -> str:
    """The image backend in use, for the tools' reports: ``"OpenCV 5.0.0"`` or a sentence
    saying that Pillow is used and why."""
    cv2 = load()
    if cv2 is None:
        return "Pillow (OpenCV cannot be imported: about 2x slower)"
    return f"OpenCV {cv2.__version__}"
