"""Workers die with their training process through each of their own watches.

``docs/loader.md``, "Shutdown": when the training process dies without running Python code,
workers see EOF on their pipe, get the kernel's parent-death signal (workers started from
the main thread) and watch for a change of parent. EOF alone hides the other two, so each
case here takes EOF away: a forked child of the training process keeps the pipes' parent
ends open, as any ``fork`` child of a training script does.

* A worker started from another thread has no death signal: only its parent watch ends it.
* A worker busy in a ``user_fn`` reads no pipe and looks at no parent: only the death
  signal ends it.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from leaks import session_members, wait_until

from datumio.loader import remove_stale_segments

pytestmark = pytest.mark.timeout(120)

TRAIN = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from datumio.augment import Transform
    from datumio.loader import Loader

    path, mode = sys.argv[1], sys.argv[2]


    def stall(image, rng):
        print("BUSY", flush=True)  # the worker's stdout is the training process's
        time.sleep(90)  # longer than the test waits: only a signal ends it sooner
        return image


    def main():
        spec = Transform(size=(16, 16), user_fn=stall if mode == "busy" else None)
        loader = Loader(path, 2, transform=spec, workers=1, start_method="spawn",
                        sampling="natural", batch_timeout_s=600)
        if mode == "thread":  # started from another thread: no parent-death signal
            starter = threading.Thread(target=loader.start)
            starter.start()
            starter.join()
        else:
            loader.start()
        print(" ".join(map(str, loader.worker_pids)), flush=True)
        if os.fork() == 0:  # holds the parent ends of the workers' pipes: no EOF for them
            signal.pause()
        batches = iter(loader)
        next(batches)  # "thread": the worker has served a batch and waits for the next plan
        print("SERVED", flush=True)
        signal.pause()


    main()
    """
)


def _line_reader(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The subprocess's stdout lines, read on a thread (so each wait has a timeout)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


@pytest.mark.parametrize("mode", ["thread", "busy"])
def test_workers_exit_when_the_training_process_is_killed_without_eof(
    small_lmdb: Path, tmp_path: Path, mode: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(small_lmdb), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    workers: list[int] = []
    try:
        lines = _line_reader(proc)
        workers = [int(p) for p in lines.get(timeout=60).split()]
        assert len(workers) == 1
        assert lines.get(timeout=60) == ("SERVED" if mode == "thread" else "BUSY")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        assert wait_until(lambda: all(_gone(pid) for pid in workers), 20.0), (
            f"worker {workers} outlived the training process ({mode})"
        )
    finally:
        for pid in [*session_members(proc.pid), *workers]:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
        wait_until(lambda: not session_members(proc.pid), 20.0)
        remove_stale_segments()  # the training process's segments (its pid is dead)
