"""After every datagen test: no shared-memory segment of this process, no child process."""

from __future__ import annotations

import gc
import multiprocessing
import time

import pytest
from datagen_leaks import leaked_segments, live_descendants


@pytest.fixture(autouse=True)
def no_leaks():
    yield
    gc.collect()
    deadline = time.monotonic() + 5.0
    while True:
        segments = leaked_segments()
        procs = [p for p in multiprocessing.active_children() if p.is_alive()]
        others = live_descendants()
        if not segments and not procs and not others:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    pytest.fail(f"leak after test: segments={segments} children={procs} descendants={others}")
