"""Run independent slow steps of a test two at a time.

The suite runs its tests one after another, so a test that starts a child interpreter
(importing a framework takes seconds of CPU) leaves the second core idle. Steps that do not
depend on each other, such as a run never stopped and a run that stops and resumes, start
side by side here; each step's exception (a failed assertion included) reaches the test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

K = TypeVar("K")
T = TypeVar("T")

#: Steps run at once: the cores of the machine the suite is sized for.
WIDTH = 2


def side_by_side(steps: Mapping[K, Callable[[], T]], width: int = WIDTH) -> dict[K, T]:
    """``{key: step()}``, ``width`` steps at a time; every step ends before this returns,
    then the first failure (in ``steps``' order) is raised."""
    with ThreadPoolExecutor(max_workers=width) as pool:
        futures = {key: pool.submit(step) for key, step in steps.items()}
    return {key: future.result() for key, future in futures.items()}
