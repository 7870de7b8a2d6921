"""``docs/loader.md``: a worker without progress for a tenth of ``batch_timeout_s`` is
reported well before the timeout, and the loader goes on when the worker resumes.

With ``batch_timeout_s=20`` the report is due after 2 s of stall; the test waits up to 15 s
for it (a bound for a loaded machine, not a measurement, still short of the timeout), then
resumes the worker.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import pytest
from leaks import wait_until

from datumio.augment import Transform
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(120)


def test_a_stall_is_reported_long_before_the_timeout(
    small_lmdb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="datumio")
    loader = Loader(small_lmdb, 3, transform=Transform(size=(16, 16)), workers=1,
                    epoch_size=30, batch_timeout_s=20.0)  # fmt: skip
    served: list[int] = []
    errors: list[BaseException] = []
    victim = 0

    def consume(batches: object) -> None:
        try:
            for _, labels in batches:  # type: ignore[attr-defined]
                served.append(len(labels))
        except BaseException as exc:
            errors.append(exc)

    try:
        batches = iter(loader)
        next(batches)
        victim = loader.worker_pids[0]
        os.kill(victim, signal.SIGSTOP)
        consumer = threading.Thread(target=consume, args=(batches,))
        consumer.start()

        def reported() -> bool:
            return any(f"(pid {victim})" in r.getMessage() for r in caplog.records)

        assert wait_until(reported, 15.0), "no stall report within 15 s"
        os.kill(victim, signal.SIGCONT)
        victim = 0
        consumer.join(timeout=60)
        assert not consumer.is_alive() and not errors, errors
        assert sum(served) == 27  # the rest of the epoch, after the first batch
    finally:
        if victim:
            os.kill(victim, signal.SIGCONT)
        loader.close()
