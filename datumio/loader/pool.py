"""Persistent worker processes, one duplex pipe each, with death detection and re-issue.

Each worker has its own pipe, so a worker killed in the middle of a message damages only its
own pipe (a shared queue would stay locked); the main process waits on every pipe and every
process sentinel at once (``multiprocessing.connection.wait``) and so sees a result, an
error or a death as soon as it happens.

Death policy: a worker that dies (SIGKILL, segfault in a decoder, out of memory) is replaced
by a fresh worker and the batches it held are re-issued to the replacement; their slots
are still reserved, so nothing is lost and the batch order is unchanged. A batch that has
killed ``max_restarts + 1`` workers, or workers that keep dying without finishing any batch,
raise :class:`LoaderError` instead: never a hang, never an endless restart loop.

Thread/fork/pickle: a pool lives in the process (and thread) that created it; not picklable.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from multiprocessing import spawn
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from datumio.errors import LoaderError, OptionError, WorkerError
from datumio.loader.job import WorkerConfig, portable
from datumio.loader.messages import BatchDone, BatchFailed, BatchPlan, Ready, Stop
from datumio.loader.worker import worker_main

logger = logging.getLogger("datumio")

Message = BatchDone | BatchFailed
_JOIN_TIMEOUT_S = 2.0
_KILL_TIMEOUT_S = 1.0


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


_HIDING = threading.local()
_MAIN_KEYS = ("init_main_from_path", "init_main_from_name")


def _preparation_without_main(original: Callable[[str], dict[str, Any]]) -> Any:
    """``multiprocessing.spawn.get_preparation_data`` that leaves out the parent's main
    module while this thread starts a datumio worker (a no-op for everyone else)."""

    def get_preparation_data(name: str) -> dict[str, Any]:
        data = original(name)
        if getattr(_HIDING, "on", False):
            for key in _MAIN_KEYS:
                data.pop(key, None)
        return data

    get_preparation_data.datumio_wrapped = True  # type: ignore[attr-defined]
    return get_preparation_data


@contextlib.contextmanager
def main_hidden(method: str) -> Iterator[None]:
    """Start spawn/forkserver workers without the caller's ``__main__``.

    Those start methods import the parent's ``__main__`` (its file, or its module under
    ``python -m``) in every child, and the fork server does once more: a training script
    without ``if __name__ == "__main__":`` would run again in each of them, and a main read
    from stdin, ``-c`` or a notebook has no file to import. Workers run
    :func:`~datumio.loader.worker.worker_main` and a job that never refers to ``__main__``
    (:func:`~datumio.loader.job.portable` sends such code by value), so the preparation
    data multiprocessing sends them leaves the main module out. Only this thread's starts
    are affected, and ``__main__`` itself is never touched.
    """
    if method == "fork":
        yield
        return
    if not getattr(spawn.get_preparation_data, "datumio_wrapped", False):
        spawn.get_preparation_data = _preparation_without_main(spawn.get_preparation_data)
    _HIDING.on = True
    try:
        yield
    finally:
        _HIDING.on = False


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread while a worker starts.

    A worker ignores SIGINT (the training process decides what Ctrl-C means), but only once
    :func:`~datumio.loader.worker.worker_main` runs; a Ctrl-C that reached the process group
    while a worker was still importing would kill its start. A child inherits the blocked
    mask, through fork, exec (spawn) and the fork server this start may launch, and unblocks
    SIGINT only after ignoring it. A Ctrl-C meant for this process waits until the start is
    done (another thread may take it meanwhile): it is delayed, never lost.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def start_worker(proc: BaseProcess, method: str) -> None:
    """``proc.start()`` with :func:`main_hidden`; what cannot be sent to a spawn/forkserver
    child (an open file or a lock inside a ``user_fn``'s closure, say) raises
    :class:`OptionError`.
    """
    try:
        with main_hidden(method), sigint_blocked():
            proc.start()
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        if "pickle" not in str(exc):
            raise
        raise OptionError(
            f"cannot send the worker configuration to a {method!r} worker process: {exc}. "
            "Everything the workers run (Transform.user_fn, a data_loader, ...) must be "
            "picklable (functions are sent by value with cloudpickle): leave open files, locks "
            "and connections out of what they refer to, and open them inside the function"
        ) from exc


@dataclass(frozen=True)
class ConfigFactory:
    """Builds a worker's config at its (re)start from one template: the parent pid and the
    death signal depend on where and when the worker starts. The template's job is made
    :func:`~datumio.loader.job.portable` once, here (fork needs no pickling)."""

    template: WorkerConfig
    method: str

    def __post_init__(self) -> None:
        if self.method != "fork":
            job = portable(self.template.job)
            object.__setattr__(self, "template", replace(self.template, job=job))

    def __call__(self, worker_id: int) -> WorkerConfig:
        return replace(
            self.template,
            worker_id=worker_id,
            parent_pid=0 if self.method == "forkserver" else os.getpid(),
            death_signal=threading.current_thread() is threading.main_thread(),
        )


def worker_error(msg: BatchFailed, who: str = "loader", item: str = "record") -> WorkerError:
    """The error raised in the main process for a failed batch (or a failed start)."""
    where = f"batch {msg.batch}" if msg.batch >= 0 else "start-up"
    shard = f" (shard {msg.shard})" if msg.shard else ""
    record = f", {item} {msg.record}{shard}" if msg.record >= 0 else ""
    text = (
        f"{who} worker {msg.worker_id} failed at {where}{record}: {msg.error}\n\n"
        f"Worker traceback:\n{msg.traceback}"
    )
    return WorkerError(text, batch=msg.batch, record=msg.record, shard=msg.shard, tb=msg.traceback)


class WorkerPool:
    """``workers`` processes running :func:`worker_main`, fed one :class:`BatchPlan` at a time."""

    def __init__(
        self,
        method: str,
        make_config: Callable[[int], WorkerConfig],
        workers: int,
        max_restarts: int,
    ) -> None:
        self._ctx = multiprocessing.get_context(method)
        self._method = method
        self._make_config = make_config
        self._max_restarts = max_restarts
        self._procs: list[BaseProcess | None] = [None] * workers
        self._conns: list[Connection | None] = [None] * workers
        self._outstanding: list[dict[tuple[int, int], BatchPlan]] = [{} for _ in range(workers)]
        self._kills: dict[tuple[int, int], int] = {}
        self._barren_deaths = 0
        #: Whether each worker said it started (:class:`Ready`), or said why it could not
        #: (a :class:`BatchFailed` of no batch), whichever pipe read took the message.
        self._ready = [False] * workers
        self._start_failed = [False] * workers
        self.restarts = 0
        self.closed = False

    # -- processes ------------------------------------------------------------------------

    def start(self) -> None:
        for k in range(len(self._procs)):
            self._spawn(k)

    def _spawn(self, k: int) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(self._make_config(k), child_end),
            name=f"datumio-worker-{k}",
            daemon=True,
        )
        start_worker(proc, self._method)
        child_end.close()  # only the worker holds it now: its death reads as EOF here
        self._ready[k] = False
        self._start_failed[k] = False
        self._procs[k] = proc
        self._conns[k] = parent_end

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p is not None and p.pid is not None]

    @property
    def processes(self) -> list[BaseProcess]:
        return [p for p in self._procs if p is not None]

    def current(self) -> list[tuple[int, int, BatchPlan]]:
        """(worker, pid, plan) for each worker with work: the oldest plan it was sent, which
        is the one it is filling (a worker takes its plans in order)."""
        out = []
        for k, proc in enumerate(self._procs):
            plans = self._outstanding[k]
            if proc is not None and proc.pid is not None and plans:
                out.append((k, proc.pid, next(iter(plans.values()))))
        return out

    # -- work -----------------------------------------------------------------------------

    def submit(self, plan: BatchPlan) -> list[Message]:
        """Send ``plan`` to the least busy worker; returns results drained from a dead one."""
        k = min(range(len(self._procs)), key=lambda i: len(self._outstanding[i]))
        self._outstanding[k][(plan.generation, plan.batch)] = plan
        conn = self._conns[k]
        try:
            if conn is None:
                raise BrokenPipeError
            conn.send(plan)
        except (OSError, ValueError):
            return self._on_death(k)
        return []

    def wait(self, timeout: float) -> list[Message]:
        """Results that arrive within ``timeout`` s; replaces dead workers on the way.

        Raises:
            LoaderError: a batch keeps killing workers, or workers die without working.
        """
        conns = {c: k for k, c in enumerate(self._conns) if c is not None}
        sentinels = {p.sentinel: k for k, p in enumerate(self._procs) if p is not None}
        ready = wait([*conns, *sentinels], timeout)
        out: list[Message] = []
        dead: set[int] = set()
        for obj in ready:
            if obj in conns:
                k = conns[obj]
                if not self._drain(k, out):
                    dead.add(k)
            else:
                dead.add(sentinels[obj])  # type: ignore[index]
        for k in sorted(dead):
            out.extend(self._on_death(k))
        return out

    def _drain(self, k: int, out: list[Message]) -> bool:
        """Receive every pending message of worker ``k``; False on EOF (worker gone)."""
        conn = self._conns[k]
        if conn is None:
            return False
        try:
            while conn.poll(0):
                msg = conn.recv()
                if isinstance(msg, Ready):
                    self._ready[k] = True
                    continue
                self._outstanding[k].pop((msg.generation, msg.batch), None)
                if isinstance(msg, BatchDone):
                    self._barren_deaths = 0
                elif msg.batch < 0:
                    self._start_failed[k] = True
                out.append(msg)
        except (EOFError, OSError):
            return False
        return True

    def _on_death(self, k: int) -> list[Message]:
        out: list[Message] = []
        self._drain(k, out)
        proc, conn = self._procs[k], self._conns[k]
        if proc is not None:
            proc.join(_KILL_TIMEOUT_S)
            if proc.is_alive():  # its pipe broke but it runs on: make sure it is gone
                proc.kill()
                proc.join(_KILL_TIMEOUT_S)
        if conn is not None:
            conn.close()
        self._procs[k] = self._conns[k] = None
        code = None if proc is None else proc.exitcode
        if self.closed:
            return out
        if self._start_failed[k]:
            return out  # it could not start and said why; the loader raises that
        if not self._ready[k] and code is not None and code > 0:
            # It exited with an error before it could work (its traceback is on stderr):
            # a replacement would fail the same way.
            raise LoaderError(
                f"worker {k} could not start ({describe_exit(code)}; its error is printed "
                "above). Check that the dataset path and the functions the workers run can be "
                "imported there, and memory limits (dmesg)"
            )
        plans = list(self._outstanding[k].values())
        self._outstanding[k] = {}
        self._barren_deaths += 1
        if self._barren_deaths > self._max_restarts + len(self._procs):
            raise LoaderError(
                f"worker {k} died ({describe_exit(code)}) and {self._barren_deaths} workers in a "
                "row died without finishing a batch: check memory limits (dmesg) and the "
                "records being read"
            )
        for plan in plans:
            key = (plan.generation, plan.batch)
            self._kills[key] = self._kills.get(key, 0) + 1
            if self._kills[key] > self._max_restarts:
                raise LoaderError(
                    f"batch {plan.batch} killed {self._kills[key]} workers (last: "
                    f"{describe_exit(code)}); its records {plan.ids.tolist()} may crash the "
                    "decoder or exhaust memory; raise max_restarts to keep trying"
                )
        logger.warning(
            "datumio loader: worker %d died (%s); starting a replacement and re-issuing %d "
            "batch(es)",
            k,
            describe_exit(code),
            len(plans),
        )
        self.restarts += 1
        self._spawn(k)
        for plan in plans:
            out.extend(self.submit(plan))
        return out

    def forget(self, generation: int, batch: int) -> None:
        self._kills.pop((generation, batch), None)

    # -- shutdown -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every worker: ask, wait, terminate, kill (see NOTE(shutdown) in loader.py)."""
        self.closed = True
        for conn in self._conns:
            if conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(Stop())
        for proc in self._procs:
            if proc is not None:
                proc.join(_JOIN_TIMEOUT_S)
        for proc in self._procs:
            if proc is not None and proc.is_alive():
                proc.terminate()
                proc.join(_KILL_TIMEOUT_S)
            if proc is not None and proc.is_alive():
                proc.kill()
                proc.join(_KILL_TIMEOUT_S)
        for conn in self._conns:
            if conn is not None:
                conn.close()
        for proc in self._procs:
            if proc is not None and not proc.is_alive():
                proc.close()
        self._procs = [None] * len(self._procs)
        self._conns = [None] * len(self._conns)
