"""The ingest pipeline: list -> process files on an Executor -> write shards in order -> publish.

The main process lists the input, hands chunks of relative paths to the executor and
writes the outcomes strictly in input order, so the dataset is the same whatever the
number of workers. Any ``concurrent.futures.Executor`` works; by default a local process
pool with one worker per core.
"""

from __future__ import annotations

import collections
import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np

from datumio.errors import BadInputError, IngestError, TooManyRejectsError
from datumio.ingest import atomic
from datumio.ingest.options import IngestOptions
from datumio.ingest.report import IngestReport, summarise_sizes
from datumio.ingest.sources import Item, Listing, Reject, list_folders, list_labels_file
from datumio.ingest.work import Accepted, ChunkResult, WorkSpec, init_worker, process_chunk
from datumio.shards import format as fmt
from datumio.shards.writer import DatasetWriter

Progress = Callable[[int, int], None]
_WINDOW_PER_WORKER = 4


class InlineExecutor(Executor):
    """Runs each task at submit time in this process (``workers=1``, debugging)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _list(src: str, options: IngestOptions) -> Listing:
    if options.labels_file is not None:
        return list_labels_file(src, options.labels_file, options.class_names)
    return list_folders(src)


def _check_paths(src: str, out: str, options: IngestOptions) -> None:
    if not os.path.isdir(src):
        raise IngestError(f"input {src} is not a directory")
    src_real, out_real = os.path.realpath(src), os.path.realpath(out)
    if out_real == src_real or out_real.startswith(src_real.rstrip(os.sep) + os.sep):
        raise IngestError(f"output {out} is inside the input {src}; write it somewhere else")
    if os.path.lexists(out) and not options.overwrite:
        raise IngestError(f"{out} already exists; pass --overwrite to replace it")


def _results(
    executor: Executor, items: list[Item], spec: WorkSpec, chunk: int, window: int
) -> Iterator[tuple[list[Item], ChunkResult]]:
    """Chunk results in input order, with at most ``window`` chunks in flight."""
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    pending: collections.deque[tuple[list[Item], Future[ChunkResult]]] = collections.deque()
    next_chunk = 0
    while pending or next_chunk < len(chunks):
        while next_chunk < len(chunks) and len(pending) < window:
            part = chunks[next_chunk]
            pending.append((part, executor.submit(process_chunk, [i.rel for i in part], spec)))
            next_chunk += 1
        part, future = pending.popleft()
        yield part, future.result()


def _kept_bytes(src: str, item: Item, outcome: Accepted) -> bytes | Reject:
    """The original bytes a worker checked, read again here (a page-cache hit), or a Reject
    when the file changed in between."""
    try:
        with open(os.path.join(src, item.rel), "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return Reject(item.rel, "unreadable", f"{type(exc).__name__}: {exc}")
    if len(data) != outcome.file_bytes or zlib.crc32(data) != outcome.crc:
        return Reject(item.rel, "changed during ingest", "the file's bytes changed after the check")
    return data


class _Rejects:
    """Collects rejects and enforces the error policy."""

    def __init__(self, options: IngestOptions) -> None:
        self.items: list[Reject] = []
        self.per_class: collections.Counter[int] = collections.Counter()
        self._options = options

    def add(self, reject: Reject, label: int | None = None) -> None:
        self.items.append(reject)
        if label is not None:
            self.per_class[label] += 1
        where = f"{reject.path}" + (f" (line {reject.line})" if reject.line else "")
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


def ingest(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: IngestOptions | None = None,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest the images below ``src`` into a new dataset at ``out``.

    Args:
        src: the input root (class folders, or the files a labels file names).
        out: the dataset directory to create (``.lmdb`` / ``.h5`` picks the backend).
        options: see :class:`IngestOptions`.
        executor: where files are processed; default a local process pool.
        progress: called as ``progress(files_done, files_total)``.

    Returns:
        The report of the run (also written into the dataset's manifest).

    Raises:
        IngestError: bad paths, ``on_error="raise"`` on a bad file, or too many rejects.
    """
    options = options or IngestOptions()
    src, out = os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(out))
    _check_paths(src, out, options)
    atomic.clean_stale(out)
    started = time.perf_counter()
    listing = _list(src, options)
    rejects = _Rejects(options)
    for reject in listing.rejects:
        rejects.add(reject, reject.label)
    items = listing.items
    if options.shuffle:
        order = np.random.default_rng(options.seed).permutation(len(items))
        items = [items[i] for i in order]
    spec = WorkSpec(
        root=src,
        encoding=options.encoding,
        quality=options.quality,
        max_side=options.max_side,
        short_side=options.short_side,
        size=options.size,
        gray=options.gray,
        background=options.background,
        max_pixels=options.max_pixels,
        min_side=options.min_side,
        # Local workers see the same files: keep the originals out of the pipe.
        send_payload=executor is not None,
    )
    backend = options.backend_for(out)
    tmp = atomic.make_tmp(out)
    writer = DatasetWriter(
        tmp,
        backend=backend,
        encoding=options.encoding,
        class_names=listing.class_names,
        shard_bytes=options.shard_bytes if options.shard_bytes > 0 else 2**62,
        shard_records=options.shard_records,
    )
    own_executor = executor is None
    if executor is None:
        executor = (
            InlineExecutor()
            if options.num_workers == 1
            else ProcessPoolExecutor(options.num_workers, initializer=init_worker)
        )
    try:
        stats = _Stats()
        window = _WINDOW_PER_WORKER * options.num_workers
        done = 0
        for part, result in _results(executor, items, spec, options.chunk_size, window):
            stats.add_histogram(result.histogram)
            for item, outcome in zip(part, result.outcomes, strict=True):
                if isinstance(outcome, Accepted):
                    payload = outcome.payload
                    if payload is None:
                        kept = _kept_bytes(src, item, outcome)
                        if isinstance(kept, Reject):
                            rejects.add(kept, item.label)
                            continue
                        payload = kept
                    writer.add(
                        payload,
                        label=item.label,
                        crc=outcome.crc,
                        shape=outcome.shape,
                        source=item.rel,
                        group=item.group,
                    )
                    stats.add(outcome)
                else:
                    rejects.add(Reject(item.rel, outcome.reason, outcome.detail), item.label)
            done += len(part)
            if progress is not None:
                progress(done, len(items))
        if len(writer) == 0:
            first = rejects.items[0] if rejects.items else None
            raise IngestError(
                f"no usable image in {src}: {len(rejects.items)} files rejected"
                + (f", the first: {first.path}: {first.reason}" if first else "")
            )
        extra = _manifest_extra(src, options, listing, rejects, stats, writer)
        _write_rejects(os.path.join(tmp, fmt.REJECTS), rejects.items)
        manifest = writer.finish(extra)
        atomic.publish(tmp, out, options.overwrite)
    except BaseException:
        writer.abort()
        atomic.discard(tmp)
        raise
    finally:
        if own_executor:
            executor.shutdown(wait=True, cancel_futures=True)
    return IngestReport(
        out=out,
        manifest=manifest,
        rejects=rejects.items,
        files_seen=len(items) + len(listing.rejects),
        seconds=time.perf_counter() - started,
    )


class _Stats:
    """Pixel histograms and sizes of accepted images, for the manifest."""

    def __init__(self) -> None:
        self.histogram: np.ndarray | None = None
        self.source_sizes: list[tuple[int, int]] = []
        self.stored_sizes: list[tuple[int, int]] = []
        self.formats: collections.Counter[str] = collections.Counter()

    def add_histogram(self, histogram: np.ndarray | None) -> None:
        if histogram is None:
            return
        if self.histogram is None:
            self.histogram = histogram.copy()
        else:
            self.histogram += histogram

    def add(self, outcome: Accepted) -> None:
        self.add_histogram(outcome.histogram)
        self.source_sizes.append(outcome.source_size)
        self.stored_sizes.append((outcome.shape[1], outcome.shape[0]))
        self.formats[outcome.source_format] += 1

    def to_dict(self) -> dict[str, Any]:
        hist = self.histogram if self.histogram is not None else np.zeros((3, 256), np.uint64)
        values = np.arange(256, dtype=np.float64)
        counts = hist.astype(np.float64)
        total = counts.sum(axis=1)
        mean = (counts * values).sum(axis=1) / np.maximum(total, 1)
        var = (counts * values**2).sum(axis=1) / np.maximum(total, 1) - mean**2
        return {
            "pixel_scale": "0-255",
            "mean": [round(float(m), 4) for m in mean],
            "std": [round(float(s), 4) for s in np.sqrt(np.maximum(var, 0))],
            "source_size": summarise_sizes(self.source_sizes),
            "stored_size": summarise_sizes(self.stored_sizes),
            "source_formats": dict(sorted(self.formats.items())),
        }


def _manifest_extra(
    src: str,
    options: IngestOptions,
    listing: Listing,
    rejects: _Rejects,
    stats: _Stats,
    writer: DatasetWriter,
) -> dict[str, Any]:
    counts = np.bincount(writer.labels_array(), minlength=len(listing.class_names))
    empty = [
        {
            "id": c,
            "name": name,
            "why": f"all {rejects.per_class[c]} file(s) rejected"
            if rejects.per_class[c]
            else "no files",
        }
        for c, name in enumerate(listing.class_names)
        if counts[c] == 0
    ]
    by_reason = collections.Counter(r.reason for r in rejects.items)
    groups = None
    if listing.group_names is not None:
        group_counts = np.bincount(writer.groups_array(), minlength=len(listing.group_names))
        groups = {"names": listing.group_names, "counts": group_counts.tolist()}
    opts = asdict(options)
    opts["encoding"] = options.encoding
    return {
        "channels": 1 if options.gray else 3,
        "class_rejected": [rejects.per_class[c] for c in range(len(listing.class_names))],
        "empty_classes": empty,
        "groups": groups,
        "stats": stats.to_dict(),
        "rejects": {
            "count": len(rejects.items),
            "by_reason": dict(by_reason.most_common()),
            "file": fmt.REJECTS,
        },
        "ingest": {"source": src, "input": listing.kind, "options": opts},
    }


def _write_rejects(path: str, rejects: list[Reject]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for reject in rejects:
            fh.write(json.dumps(reject.to_dict(), ensure_ascii=False) + "\n")
