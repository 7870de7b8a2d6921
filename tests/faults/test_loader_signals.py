"""A training process that gets Ctrl-C, SIGTERM or SIGKILL leaves no worker and no segment.

Part of the fault suite: the leak check of tests/faults/conftest.py runs after every test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fault_support import LineReader, wait_until
from leaks import remove_segments_of, session_members

from datumio.augment import Transform
from datumio.loader import Loader

#: Above the sum of the waits below (30 + 20 + 8 + 5 s), so that on a slow machine a wait
#: fails with its message, and the ``finally`` cleans up, before pytest-timeout strikes.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

TRAIN = textwrap.dedent(
    """
    import os, sys, time
    from datumio.augment import Transform
    from datumio.loader import Loader

    if __name__ == "__main__":
        loader = Loader(sys.argv[1], 2, transform=Transform(size=(16, 16)), workers=2,
                        epoch_size=1_000_000)
        it = iter(loader)
        next(it)
        print("READY", " ".join(loader.segment_names), flush=True)
        for batch in it:
            time.sleep(0.005)
    """
)


@pytest.mark.parametrize(
    ("sig", "whole_group"),
    [
        (signal.SIGINT, True),  # Ctrl-C in a terminal reaches the whole foreground group
        (signal.SIGTERM, False),
        (signal.SIGKILL, False),
        (signal.SIGKILL, True),  # the resource tracker dies too: the next start cleans up
    ],
    ids=["ctrl-c", "sigterm", "sigkill", "sigkill-group"],
)
def test_training_process_killed(
    poison_lmdb: Path, tmp_path: Path, sig: signal.Signals, whole_group: bool
) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    proc = subprocess.Popen(
        [sys.executable, str(script), poison_lmdb],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = LineReader(proc).next_line(timeout=30).split()
        assert line and line[0] == "READY", line
        names = line[1:]
        assert names and all(os.path.exists(f"/dev/shm/{n}") for n in names)
        if whole_group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        proc.wait(timeout=20)
        assert wait_until(lambda: not session_members(proc.pid), 8.0), "processes remain"
        if sig == signal.SIGKILL and whole_group:
            # Nothing of the dead run is left to clean up: the next Loader start does it.
            assert all(os.path.exists(f"/dev/shm/{n}") for n in names)
            with Loader(poison_lmdb, 2, transform=Transform(size=(8, 8)), workers=1) as nxt:
                nxt.start()
        assert wait_until(lambda: not any(os.path.exists(f"/dev/shm/{n}") for n in names), 5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
        remove_segments_of(proc.pid)  # a failed test must not leave them in /dev/shm
