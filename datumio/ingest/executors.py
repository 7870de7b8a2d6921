"""Where ingest tasks run: in-process, a local process pool, or a Dask cluster.

``--executor local`` (default) uses a ``ProcessPoolExecutor`` whose workers die with the
parent; ``--executor dask`` starts a ``distributed.LocalCluster`` with one single-threaded
worker process per core (``--workers``); ``--executor dask=tcp://HOST:PORT`` connects to a
running scheduler. Dask is an optional extra (``pip install datumio[dask]``) imported only
here, only when asked for. Every worker must see SRC and the directory beside OUT at the
same paths as the driver (a shared filesystem), since tasks read and write files there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from datumio.errors import IngestError, OptionError
from datumio.ingest.work import init_worker


class InlineExecutor(Executor):
    """Runs each task at submit time in this process (``workers=1``, debugging)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@dataclass(frozen=True)
class Running:
    """An executor ready for tasks and how many tasks to keep in flight on it."""

    executor: Executor
    in_flight: int
    description: str


def parse_executor(spec: str) -> tuple[str, str | None]:
    """``"local"`` -> ("local", None); ``"dask"`` -> ("dask", None); ``"dask=ADDR"``."""
    if spec in ("local", "dask"):
        return spec, None
    if spec.startswith("dask=") and len(spec) > len("dask="):
        return "dask", spec[len("dask=") :]
    raise OptionError(
        f"executor={spec!r}; use 'local', 'dask' (a LocalCluster on this machine) or "
        "'dask=tcp://HOST:PORT' (an existing Dask scheduler)"
    )


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise IngestError(
            "--executor dask needs Dask's distributed scheduler: pip install 'datumio[dask]'"
        ) from exc
    return distributed


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    processes = dict(getattr(pool, "_processes", None) or {})  # no public handle on them
    for proc in processes.values():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            proc.kill()


@contextlib.contextmanager
def open_executor(spec: str, workers: int) -> Iterator[Running]:
    """The executor ``spec`` names, shut down (cluster included) when the block ends.

    NOTE(shutdown): pending tasks are cancelled first, then running ones are waited for
    (a local worker finishing its shard writes into a directory that is about to be
    discarded or kept for ``--resume``; either is fine), then a LocalCluster is closed.
    """
    kind, address = parse_executor(spec)
    if kind == "local":
        if workers == 1:
            yield Running(InlineExecutor(), 1, "in-process")
            return
        pool = ProcessPoolExecutor(workers, initializer=init_worker)
        try:
            yield Running(pool, 2 * workers, f"{workers} local processes")
        except KeyboardInterrupt:
            # Ctrl-C may strike inside the pool's own machinery (starting a worker, feeding
            # its queue) and leave workers waiting for work that never comes; the interpreter
            # would then wait for them at exit for ever. They hold nothing worth finishing.
            _kill_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    distributed = _import_distributed()
    cluster = None
    if address is None:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = distributed.Client(cluster)
    else:
        client = distributed.Client(address, timeout="30s")
    try:
        slots = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        where = f"Dask LocalCluster, {workers} workers" if cluster else f"Dask at {address}"
        yield Running(client.get_executor(pure=False), max(2, 2 * slots), where)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
