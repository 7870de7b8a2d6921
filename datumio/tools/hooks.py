"""Fault-test hooks of ``datumio-ingest``, switched on by one environment variable.

``DATUMIO_TEST_HOOK`` holds ``;``-separated actions; without it nothing happens:

- ``ready=FILE``: create FILE once the run has started with its signal handlers installed
  (a test waits for it before it sends SIGINT or SIGTERM, instead of sleeping).
- ``hold=FILE``: then wait there until FILE exists (at most :data:`HOLD_LIMIT_S`), so that
  a signal sent meanwhile lands in a run that has not finished, however fast the machine.
- ``kill=STEP`` or ``kill=STEP:N``: SIGKILL this process the N-th time (default the first)
  the run reaches STEP: ``start``, ``shard`` (a shard finished), ``finalize``, ``publish``,
  ``published`` or ``commit`` (see :data:`datumio.ingest.pipeline.Events`).

The fault suite (``tests/faults``) kills ingests at exact points of their plan this way.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from datumio.errors import OptionError

ENV = "DATUMIO_TEST_HOOK"
STEPS = ("start", "shard", "finalize", "publish", "published", "commit")
#: The longest ``hold=FILE`` waits: far beyond any test's wait, short enough that a run
#: somehow left behind does not hang for ever.
HOLD_LIMIT_S = 120.0


class Hooks:
    """The actions of one ``DATUMIO_TEST_HOOK`` value; ``step(name)`` runs them."""

    def __init__(self, spec: str | None) -> None:
        self.ready: str | None = None
        self.hold: str | None = None
        self.kill: tuple[str, int] | None = None
        self._seen: Counter[str] = Counter()
        for item in filter(None, (part.strip() for part in (spec or "").split(";"))):
            key, _, value = item.partition("=")
            if key == "ready" and value:
                self.ready = value
            elif key == "hold" and value:
                self.hold = value
            elif key == "kill" and value.split(":")[0] in STEPS:
                step, _, count = value.partition(":")
                self.kill = (step, int(count) if count.isdigit() else 1)
            else:
                raise OptionError(
                    f"{ENV}: {item!r} is not ready=FILE, hold=FILE or kill=STEP[:N] with STEP "
                    f"one of {', '.join(STEPS)}"
                )

    def step(self, name: str) -> None:
        self._seen[name] += 1
        if name == "start" and self.ready is not None:
            with open(self.ready, "w", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\n")
        if name == "start" and self.hold is not None:
            deadline = time.monotonic() + HOLD_LIMIT_S
            while not os.path.exists(self.hold) and time.monotonic() < deadline:
                time.sleep(0.01)  # a signal's handler runs here (a second one raises)
        if self.kill is not None and self.kill == (name, self._seen[name]):
            os.kill(os.getpid(), signal.SIGKILL)


def from_env() -> Hooks:
    """The hooks ``DATUMIO_TEST_HOOK`` asks for (none when it is unset)."""
    return Hooks(os.environ.get(ENV))
