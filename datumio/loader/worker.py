"""The worker process: read records, decode, transform, write into a shared-memory slot.

A worker owns nothing the main process needs back: it maps the slots itself (never through
the resource tracker, so it can never unlink them), opens shards lazily in its own process,
and exits on a :class:`Stop`, on EOF of its pipe (the main process is gone), when its parent
changes, or by the kernel's death signal.
"""

from __future__ import annotations

import collections
import os
import signal
import traceback
from multiprocessing.connection import Connection

import numpy as np

from datumio._process import die_with_parent
from datumio.augment.device import stage
from datumio.augment.normalize import normalize_batch
from datumio.augment.pipeline import apply
from datumio.augment.seeds import sample_rng
from datumio.errors import DecodeError, RecordError
from datumio.loader.messages import (
    BatchDone,
    BatchFailed,
    BatchPlan,
    Replacement,
    Stop,
    WorkerConfig,
)
from datumio.loader.slots import Segment, attach
from datumio.shards.dataset import Dataset

_PARENT_POLL_S = 1.0
#: Other records of the same class tried before a failing record's batch fails.
MAX_REPLACEMENT_TRIES = 16


class _RecordFailure(Exception):
    """Carries the record and shard of a failure up to the message."""

    def __init__(self, record: int, shard: str) -> None:
        super().__init__(record, shard)
        self.record = record
        self.shard = shard


def _shard_of(dataset: Dataset, record: int) -> str:
    try:
        return dataset.shard_path(dataset.locate(record)[0])
    except (IndexError, ValueError):
        return ""


class _Filler:
    """Fills slots for one worker; holds the open dataset and the mapped slots."""

    def __init__(self, config: WorkerConfig, segments: list[Segment]) -> None:
        self.config = config
        self.dataset = config.dataset
        self.views = [config.layout.views(seg.mmap) for seg in segments]
        self.progress = [config.layout.progress(seg.mmap) for seg in segments]
        #: decode="device": per-sample geometry written beside the record's bytes.
        self.params = (
            [config.layout.params_view(seg.mmap) for seg in segments]
            if config.layout.params
            else None
        )

    def fill(self, plan: BatchPlan) -> BatchDone:
        cfg, ds = self.config, self.dataset
        images, labels, ids, groups = self.views[plan.slot]
        # What this worker is on, for the main process's stall watch (PROGRESS_FIELDS).
        progress = self.progress[plan.slot]
        progress[:] = (plan.generation, plan.batch, 0, -1)
        replacements: list[Replacement] = []
        for k in range(len(plan.ids)):
            record = int(plan.ids[k])
            position = int(plan.positions[k])
            progress[3] = record
            params = None if self.params is None else self.params[plan.slot][k]
            used, label = self._fill_one(
                record, plan.epoch, position, images[k], params, replacements
            )
            labels[k] = label
            ids[k] = used
            groups[k] = int(ds.groups[used]) if ds.groups is not None else -1
            progress[2] = k + 1
        normalize_batch(images[: len(plan.ids)], cfg.transform)  # no-op unless batch_zmuv
        return BatchDone(
            plan.generation,
            plan.batch,
            plan.slot,
            cfg.worker_id,
            len(plan.ids),
            tuple(replacements),
        )

    def _fill_one(
        self,
        record: int,
        epoch: int,
        position: int,
        out: np.ndarray,
        params: np.ndarray | None,
        log: list[Replacement],
    ) -> tuple[int, int]:
        """Decode and transform ``record`` (or a replacement) into ``out``: (id used, label)."""
        ds = self.dataset
        tries = 0
        candidate = record
        while True:
            # A fresh stream per attempt: the pixels of a replacement do not depend on how
            # far the failed attempt got.
            rng = sample_rng(self.config.seed, epoch, position)
            try:
                payload, label, shape = ds.record(candidate)
                if params is not None:  # decode="device": bytes and geometry, no pixels
                    stage(self.config.transform, payload, rng, shape, out, params)
                    return candidate, label
                apply(
                    self.config.transform,
                    payload,
                    rng,
                    out,
                    encoding=ds.encoding,
                    shape=shape,
                    background=ds.background,
                )
                return candidate, label
            except (RecordError, DecodeError) as exc:
                shard = _shard_of(ds, candidate)
                if self.config.strict:
                    raise _RecordFailure(candidate, shard) from exc
                nxt = self._next_of_class(record, tries)
                if nxt is None:
                    raise _RecordFailure(candidate, shard) from exc
                log.append(Replacement(candidate, nxt, shard, str(exc)))
                candidate = nxt
                tries += 1
            except Exception as exc:
                raise _RecordFailure(candidate, _shard_of(ds, candidate)) from exc

    def _next_of_class(self, record: int, tries: int) -> int | None:
        """The ``tries``-th replacement of ``record``: the next ids of its class, cyclically."""
        members = self.dataset.class_index(int(self.dataset.labels[record]))
        n = len(members)
        if tries >= min(n - 1, MAX_REPLACEMENT_TRIES):
            return None
        at = int(np.searchsorted(members, record))
        return int(members[(at + 1 + tries) % n])


def _failure(cfg: WorkerConfig, plan: BatchPlan | None, exc: BaseException) -> BatchFailed:
    record, shard = -1, ""
    cause: BaseException = exc
    if isinstance(exc, _RecordFailure):
        record, shard = exc.record, exc.shard
        cause = exc.__cause__ or exc
    text = "".join(traceback.format_exception(cause))
    try:
        error = f"{type(cause).__qualname__}: {cause}"
    except Exception:  # a broken __str__ must not hide the failure
        error = type(cause).__qualname__
    if plan is None:
        return BatchFailed(-1, -1, -1, cfg.worker_id, record, shard, error, text)
    return BatchFailed(
        plan.generation, plan.batch, plan.slot, cfg.worker_id, record, shard, error, text
    )


def worker_main(config: WorkerConfig, conn: Connection) -> None:
    """Entry point of a worker process (a top-level function, so every start method works)."""
    # The parent handles Ctrl-C; a terminal sends SIGINT to the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if config.death_signal:
        die_with_parent()
    first_parent = os.getppid()
    if config.parent_pid and first_parent != config.parent_pid:
        return  # the parent died before the death signal was armed
    try:
        segments = attach(config.slot_names, config.layout.slot_bytes)
        filler = _Filler(config, segments)
    except BaseException as exc:
        _send(conn, _failure(config, None, exc))
        return
    try:
        _serve(config, conn, filler, first_parent)
    finally:
        config.dataset.close()


def _serve(config: WorkerConfig, conn: Connection, filler: _Filler, first_parent: int) -> None:
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
                filler.dataset.advise(msg.ids)
            _look_ahead(config, conn, queued, filler)
        try:
            reply: BatchDone | BatchFailed = filler.fill(msg)
        except Exception as exc:
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
    config: WorkerConfig, conn: Connection, queued: collections.deque[object], filler: _Filler
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
            filler.dataset.advise(msg.ids)


def _send(conn: Connection, msg: object) -> bool:
    try:
        conn.send(msg)
    except (OSError, EOFError):
        return False
    return True
