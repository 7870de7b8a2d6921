"""The worker process: map the slots, open the job, fill each :class:`BatchPlan` sent.

What filling means is the job's (:mod:`datumio.loader.job`); this loop only serves plans in
order, hints the records of the plans already queued to it (read-ahead), turns an exception
into a :class:`BatchFailed` message and exits cleanly. A worker owns nothing the main process
needs back: it maps the slots itself (never through the resource tracker, so it can never
unlink them) and exits on a :class:`Stop`, on EOF of its pipe (the main process is gone),
when its parent changes, or by the kernel's death signal.
"""

from __future__ import annotations

import collections
import os
import signal
import traceback
from multiprocessing.connection import Connection

from datumio._process import die_with_parent
from datumio.loader.job import Filler, RecordFailure, WorkerConfig
from datumio.loader.messages import BatchDone, BatchFailed, BatchPlan, Ready, Stop
from datumio.loader.slots import attach

_PARENT_POLL_S = 1.0


def _failure(cfg: WorkerConfig, plan: BatchPlan | None, exc: BaseException) -> BatchFailed:
    record, shard = -1, ""
    cause: BaseException = exc
    if isinstance(exc, RecordFailure):
        record, shard = exc.record, exc.shard
        cause = exc.__cause__ or exc
    text = "".join(traceback.format_exception(cause))
    try:
        error = f"{type(cause).__qualname__}: {cause}"
        if isinstance(cause, SystemExit):
            error = f"SystemExit: the code the worker runs called sys.exit({cause.code!r})"
    except Exception:  # a broken __str__ must not hide the failure
        error = type(cause).__qualname__
    if plan is None:
        return BatchFailed(-1, -1, -1, cfg.worker_id, record, shard, error, text)
    return BatchFailed(
        plan.generation, plan.batch, plan.slot, cfg.worker_id, record, shard, error, text
    )


def worker_main(config: WorkerConfig, conn: Connection) -> None:
    """Entry point of a worker process (a top-level function, so every start method works)."""
    # The parent handles Ctrl-C; a terminal sends SIGINT to the whole process group. The
    # worker was started with SIGINT blocked (pool.sigint_blocked): ignore it, then unblock.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if config.death_signal:
        die_with_parent()
    first_parent = os.getppid()
    if config.parent_pid and first_parent != config.parent_pid:
        return  # the parent died before the death signal was armed
    try:
        segments = attach(config.slot_names, config.slot_bytes)
        filler = config.job.open(config.worker_id, segments)
    except BaseException as exc:
        _send(conn, _failure(config, None, exc))
        return
    if not _send(conn, Ready(config.worker_id)):
        filler.close()
        return
    try:
        _serve(config, conn, filler, first_parent)
    finally:
        filler.close()


def _serve(config: WorkerConfig, conn: Connection, filler: Filler, first_parent: int) -> None:
    queued: collections.deque[object] = collections.deque()  # received early, for read-ahead
    while True:
        early = bool(queued)  # taken by _look_ahead: its records were hinted then
        msg = queued.popleft() if early else _receive(conn, first_parent)
        if msg is None or isinstance(msg, Stop):
            return
        if not isinstance(msg, BatchPlan):
            continue
        if config.readahead:
            if not early:
                filler.advise(msg.ids)
            _look_ahead(config, conn, queued, filler)
        try:
            reply: BatchDone | BatchFailed = filler.fill(msg)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # The job's code (a data_loader, a user hook) calling sys.exit or raising
            # KeyboardInterrupt (SIGINT is ignored here: never a Ctrl-C) fails its batch,
            # saying so; it must not end the worker, or the batch would be retried on
            # replacements and blamed on its records.
            reply = _failure(config, msg, exc)
        if not _send(conn, reply):
            return


def _receive(conn: Connection, first_parent: int) -> object | None:
    """The next message; None once the main process is gone (EOF, or we were reparented)."""
    while True:
        try:
            if conn.poll(_PARENT_POLL_S):
                return conn.recv()
        except (EOFError, OSError):
            return None  # the main process closed its end or died
        if os.getppid() != first_parent:
            return None  # reparented: the process that started us is gone


def _look_ahead(
    config: WorkerConfig, conn: Connection, queued: collections.deque[object], filler: Filler
) -> None:
    """Take the plans already sent to this worker (up to ``readahead - 1``) and hint their
    records, so that their reads run while this batch decodes."""
    while sum(isinstance(m, BatchPlan) for m in queued) < config.readahead - 1:
        try:
            if not conn.poll(0):
                return
            msg = conn.recv()
        except (EOFError, OSError):
            queued.append(None)  # served in order: after the batches already queued
            return
        queued.append(msg)
        if isinstance(msg, BatchPlan):
            filler.advise(msg.ids)


def _send(conn: Connection, msg: object) -> bool:
    try:
        conn.send(msg)
    except (OSError, EOFError):
        return False
    return True
