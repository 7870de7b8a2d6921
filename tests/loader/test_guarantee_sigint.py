"""``docs/loader.md``: workers ignore SIGINT, the parent decides.

A terminal sends Ctrl-C to the whole process group. A training script that handles SIGINT
itself (to save a checkpoint, say) and goes on must find its workers alive: no worker dies
of the signal and none is replaced.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

TRAIN = textwrap.dedent(
    """
    import signal, sys, time
    from datumio.augment import Transform
    from datumio.loader import Loader

    interrupted = []
    signal.signal(signal.SIGINT, lambda *args: interrupted.append(1))  # a checkpoint, say
    loader = Loader(sys.argv[1], 2, transform=Transform(size=(16, 16)), workers=2,
                    epoch_size=1_000_000)
    batches = iter(loader)
    next(batches)
    pids = loader.worker_pids
    print("READY", flush=True)
    while not interrupted:
        next(batches)
        time.sleep(0.005)
    for _, _ in zip(range(6), batches):  # the training loop goes on after Ctrl-C
        pass
    print("DONE", loader.stats.worker_restarts, loader.worker_pids == pids, flush=True)
    loader.close()
    """
)


def test_ctrl_c_caught_by_the_training_loop_leaves_the_workers_running(
    small_lmdb: Path, tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    errors = tmp_path / "stderr.txt"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(small_lmdb)],
        stdout=subprocess.PIPE,
        stderr=errors.open("w"),
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert lines.get(timeout=60) == "READY"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole group
        done = lines.get(timeout=60) if proc.poll() is None or not lines.empty() else ""
        assert done == "DONE 0 True", errors.read_text()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


STARTING = textwrap.dedent(
    """
    import signal, sys
    from datumio.augment import Transform
    from datumio.loader import Loader
    from loader_hooks import GatedStart

    interrupted = []
    signal.signal(signal.SIGINT, lambda *args: interrupted.append(1))
    user_fn = GatedStart(sys.argv[2], sys.argv[3])
    loader = Loader(sys.argv[1], 2, transform=Transform(size=(16, 16), user_fn=user_fn),
                    workers=2, epoch_size=64, start_method=sys.argv[4])
    loader.start()
    print("STARTED", flush=True)
    batches = sum(1 for _ in loader)
    print("DONE", batches, bool(interrupted), loader.stats.worker_restarts, flush=True)
    loader.close()
    """
)


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_ctrl_c_while_workers_are_starting_leaves_them_running(
    small_lmdb: Path, tmp_path: Path, method: str
) -> None:
    """The signal lands while both workers unpickle their job, before any worker code."""
    script = tmp_path / "train.py"
    script.write_text(STARTING)
    started, gate = tmp_path / "started", tmp_path / "gate"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(small_lmdb), str(started), str(gate), method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("started.*"))) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        assert len(list(tmp_path.glob("started.*"))) == 2, "the workers never began to start"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole group, workers mid-start
        gate.touch()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "DONE 32 True 0" in out, out + err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
