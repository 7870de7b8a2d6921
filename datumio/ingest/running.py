"""A run's shard tasks in flight: submitted in order, answered in order, rejects enforced.

:class:`ShardRun` is the one place a run hands shard tasks to its executor, whoever makes
them: a folder ingest submits the tasks of its plan, a :class:`datumio.Writer` (and every
importer, :mod:`datumio.ingest.stream`) one task per chunk of samples as they come. At
most ``Running.in_flight`` tasks run at once; answers are taken in submission order, so the
error policies (:class:`RejectPolicy`) see files in input order. A shard that an earlier
run finished (its sidecar is there: ``resume``) is reused instead of submitted.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from concurrent.futures import Future

from datumio.errors import BadInputError, IngestError, TooManyRejectsError
from datumio.ingest.executors import Running
from datumio.ingest.options import IngestOptions
from datumio.ingest.shard_task import ShardDone, ShardTask, write_shard
from datumio.ingest.sidecar import load_sidecar
from datumio.ingest.sources import Reject, utf8_text

#: Called as ``progress(files_done, files_total)`` after each shard (total 0: unknown).
Progress = Callable[[int, int], None]
#: Polled while the run waits for shards (every :data:`STOP_POLL_S`): True stops the run as
#: Ctrl-C would. Tools set it from a signal handler, which itself must not raise into the
#: process pool's machinery (a KeyboardInterrupt inside it can leave a lock held for ever).
ShouldStop = Callable[[], bool]
STOP_POLL_S = 0.2


class RejectPolicy:
    """Collects rejects in input order and enforces ``on_error`` and ``max_errors``."""

    def __init__(self, options: IngestOptions) -> None:
        self.items: list[Reject] = []
        self._options = options

    def add(self, reject: Reject) -> None:
        self.items.append(reject)
        where = utf8_text(reject.path) + (f" (line {reject.line})" if reject.line else "")
        if self._options.on_error == "raise":
            raise BadInputError(
                f"{where}: {reject.reason}"
                + (f" ({reject.detail})" if reject.detail else "")
                + "; rerun without --on-error raise to skip such files"
            )
        limit = self._options.max_errors
        if limit is not None and len(self.items) > limit:
            raise TooManyRejectsError(
                f"{len(self.items)} files rejected, more than --max-errors {limit}; the last: "
                f"{where}: {reject.reason}. Fix the input or raise --max-errors"
            )


def _finished(root: str, number: int) -> ShardDone | None:
    """The answer of a shard a previous run finished (shard file and sidecar), or None."""
    car = load_sidecar(root, number, meta_only=True)
    if car is None:
        return None
    if car.meta["file"] is not None and not os.path.isfile(os.path.join(root, car.meta["file"])):
        return None
    return ShardDone(number, int(car.meta["files"]), int(car.meta["num_records"]), car.rejects)


def _done(value: ShardDone) -> Future[ShardDone]:
    future: Future[ShardDone] = Future()
    future.set_result(value)
    return future


class ShardRun:
    """The shard tasks of one run (see the module docstring).

    Args:
        root: the build directory the tasks write into.
        running: the executor and how many tasks it takes at once.
        rejects: the run's reject policy (raises as ``on_error``/``max_errors`` say).
        progress: called after each answered shard with the files done and ``total``.
        total: the run's files (0 when unknown, a stream).
        stop: polled while waiting for an answer.
    """

    def __init__(
        self,
        root: str,
        running: Running,
        rejects: RejectPolicy,
        progress: Progress | None = None,
        total: int = 0,
        stop: ShouldStop | None = None,
    ) -> None:
        self._root = root
        self._running = running
        self._rejects = rejects
        self._progress = progress
        self._total = total
        self._stop = stop
        self._pending: collections.deque[Future[ShardDone]] = collections.deque()
        #: The answered shards' numbers, in submission order.
        self.numbers: list[int] = []
        #: How many shards were reused from an earlier run.
        self.reused = 0
        self._files = 0

    def submit(self, task: ShardTask) -> None:
        """Run ``task`` (or reuse its finished shard); waits while the executor is full."""
        while len(self._pending) >= self._running.in_flight:
            self._take()
        earlier = _finished(self._root, task.number)
        if earlier is not None:
            self.reused += 1
            self._pending.append(_done(earlier))
        else:
            self._pending.append(self._running.executor.submit(write_shard, task))

    def finish(self) -> list[int]:
        """Wait for every submitted task; returns the shard numbers in order."""
        while self._pending:
            self._take()
        return self.numbers

    def cancel(self) -> None:
        """Cancel the tasks not started yet (the run is failing)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()

    def _take(self) -> None:
        answer = self._answer(self._pending.popleft())
        for reject in answer.rejects:
            self._rejects.add(reject)
        if not answer.complete:  # on_error="raise" stopped it, and add() raised above
            raise IngestError(f"shard {answer.number} stopped without a reject")
        self.numbers.append(answer.number)
        self._files += answer.files
        if self._progress is not None:
            self._progress(self._files, self._total)

    def _answer(self, future: Future[ShardDone]) -> ShardDone:
        if self._stop is None:
            return future.result()
        while True:
            if self._stop():
                raise KeyboardInterrupt
            try:
                return future.result(timeout=STOP_POLL_S)
            except TimeoutError:
                continue
