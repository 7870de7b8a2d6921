"""Write a dataset from samples given one by one: the engine of ``Writer`` and the importers.

A :class:`StreamRun` takes :class:`~datumio.ingest.samples.Sample` s in order, checks
what can be checked at once (label, group, split, field values), and gathers them into
chunks; each chunk becomes one shard task (:class:`~datumio.ingest.shard_task.ShardTask`,
its images carried in the task) run by the same process pool, reject policy, sidecars,
index, manifest and atomic publish as a folder ingest (:class:`ShardRun`,
:func:`~datumio.ingest.finalize.write_dataset`, :func:`~datumio.ingest.atomic.publish`).

A chunk closes at ``shard_records`` samples (else :data:`CHUNK_RECORDS`) or when its
images reach ``min(shard_bytes, CHUNK_BYTES)``: a stream's length is unknown, so shards
stay small enough for every worker to get some, and a run holds at most
``2 * workers + 1`` chunks in memory. Chunks depend only on the samples and the options,
so ``resume`` (an importer with a fingerprint) reuses the finished shards of a dead run.

Class, group and split ids are given in order of first appearance, unless the class names
are fixed (``class_names``: names index them, ints are ids); int labels without names are
their own ids (classes named ``"0"``, ``"1"`` ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

import numpy as np

from datumio._shm import Segment
from datumio.errors import IngestError
from datumio.fields.spec import FieldValueError
from datumio.ingest import atomic
from datumio.ingest.executors import Running
from datumio.ingest.finalize import DatasetInfo, Records, read_sidecars, write_dataset
from datumio.ingest.lock import writer_lock
from datumio.ingest.options import IngestOptions, recorded_options
from datumio.ingest.pipeline import (
    Events,
    check_new_out,
    executor_for,
    no_usable_image,
    tidy_build_dir,
    work_spec,
)
from datumio.ingest.plan import CONTENT_OPTIONS, Plan, read_dataset_id
from datumio.ingest.report import IngestReport
from datumio.ingest.reshuffle import shuffle_records
from datumio.ingest.running import Progress, RejectPolicy, ShardRun, ShouldStop
from datumio.ingest.samples import Sample, Source
from datumio.ingest.shard_task import ShardTask
from datumio.ingest.shared_images import share
from datumio.ingest.sidecar import SIDECARS_DIR
from datumio.ingest.sources import Reject
from datumio.ingest.stream_fields import StreamFields
from datumio.ingest.stream_input import Chunk, Names, image_of
from datumio.remote.store import is_url, public
from datumio.shards import format as fmt

#: A chunk (one shard) closes at this many samples, unless ``shard_records`` says.
CHUNK_RECORDS = 1024
#: ... or when its images reach this many bytes (or ``shard_bytes``, if smaller).
CHUNK_BYTES = 64 << 20


class StreamRun:
    """One stream written into a new dataset at ``out`` (see the module docstring).

    Made by :meth:`start`, which takes OUT's writer lock and makes the build directory;
    :meth:`close` publishes the dataset, :meth:`abort` leaves nothing at OUT.
    """

    def __init__(
        self,
        out: str,
        options: IngestOptions,
        source: Source,
        *,
        executor: Executor | None = None,
        progress: Progress | None = None,
        events: Events | None = None,
        stop: ShouldStop | None = None,
    ) -> None:
        self.out = out
        self.options = options
        self._source = source
        self._executor = executor
        self._progress = progress
        self._events = events
        self._stop = stop
        self._root = os.path.abspath(source.root) if source.root else os.getcwd()
        self.classes = Names("label", source.class_names)
        self.groups = Names("group")
        self.splits = Names("split")
        self._has_groups: bool | None = None
        self.fields = StreamFields({**source.fields, **(options.fields or {})}, source.where)
        self.rejects = RejectPolicy(options)
        self._chunk = Chunk()
        self._number = 0
        self._seen = 0
        self._started = time.perf_counter()
        self._lock = contextlib.ExitStack()
        self._pool = contextlib.ExitStack()
        self._tmp: str | None = None
        self._run: ShardRun | None = None
        #: Arrays go to local workers through shared memory (not to a caller's executor).
        self._share = executor is None and options.executor == "local"
        #: The segment of each submitted shard whose task has not been answered yet.
        self._segments: dict[int, Segment] = {}
        self._running: Running | None = None
        self._dataset_id = ""

    def start(self) -> StreamRun:
        """Take OUT's writer lock, make (or, with ``resume``, adopt) the build directory and
        start the executor."""
        _check_out(self.out, self.options, self._source)
        try:
            self._lock.enter_context(
                writer_lock(self.out, self.options.wait, events=self._events, stop=self._stop)
            )
            _check_out(self.out, self.options, self._source)
            plan = Plan([], 0, _fingerprint(self._source, self.options, self.out))
            self._tmp = atomic.build_dir(self.out, plan, self.options.resume)
            self._dataset_id = read_dataset_id(self._tmp) or plan.dataset_id
            os.makedirs(os.path.join(self._tmp, fmt.SHARDS_DIR), exist_ok=True)
            os.makedirs(os.path.join(self._tmp, SIDECARS_DIR), exist_ok=True)
            if self._events is not None:
                self._events("start")
            running = self._running = self._pool.enter_context(
                executor_for(self.options, self._executor)
            )
            total = self._source.total or 0
            self._run = ShardRun(
                self._tmp, running, self.rejects, self._progress, total, self._stop
            )
        except BaseException as exc:
            self.abort(exc)
            raise
        return self

    def add(self, sample: Sample) -> None:
        """Check ``sample`` and add it to the current chunk (submitted once full).

        Raises:
            TypeError, ValueError: a sample the caller's code got wrong (an image that is
                no image type, a label of the wrong type); nothing of the run is lost.
            IngestError: see :meth:`StreamFields.check`; the reject policy's errors.
        """
        self._seen += 1
        name = sample.name if sample.name is not None else f"#{self._seen - 1}"
        path, inline, size = image_of(sample.image, self._root)
        try:
            label = self.classes.id(sample.label)
        except ValueError as exc:
            self.reject(Reject(name, "unknown class", str(exc)))
            return
        try:
            values = self._values(sample) if self.fields.fixed else sample.fields
        except FieldValueError as exc:
            self.reject(Reject(name, exc.reason, exc.detail, label=label))
            return
        chunk = self._chunk
        chunk.names.append(name if sample.name is not None or path is None else path)
        chunk.paths.append(path if path is not None else name)
        chunk.labels.append(label)
        chunk.groups.append(self._group(sample))
        chunk.splits.append(-1 if sample.split is None else self.splits.id(sample.split))
        chunk.values.append(dict(values) if values else None)
        chunk.images.append(inline)
        chunk.bytes += size
        if self._full(chunk):
            self._flush()

    def reject(self, reject: Reject) -> None:
        """Record an input row that did not become a sample."""
        self.rejects.add(reject)

    def close(self) -> IngestReport:
        """Write the last chunk, wait for every shard, publish the dataset at OUT."""
        try:
            if len(self._chunk) or self._number == 0:
                self._flush()
            run, tmp = self._building()
            records = Records()
            read_sidecars(tmp, run.finish(), records)
            if self.options.shuffle and records.shards:
                records = self._shuffled(tmp, records)
            self._pool.close()
            self._release(self._number)
            manifest = self._finish(tmp, records)
            self._tmp = None
        except BaseException as exc:
            self.abort(exc)
            raise
        self._lock.close()
        return IngestReport(
            out=self.out,
            manifest=manifest,
            rejects=self.rejects.items,
            files_seen=self._seen,
            seconds=time.perf_counter() - self._started,
            shards_reused=run.reused,
        )

    def abort(self, exc: BaseException) -> BaseException:
        """Stop the run after ``exc``: cancel what has not started, remove the build
        (kept for ``resume`` as a folder ingest keeps it), release OUT. Returns the error
        to raise (a full disk becomes a :class:`~datumio.errors.DiskFullError`)."""
        if self._run is not None:
            self._run.cancel()
        try:
            self._pool.close()  # waits for the tasks that run
            self._release(self._number)
            tmp, self._tmp = self._tmp, None
            return atomic.after_failure(exc, tmp, self.options.resume)
        finally:
            self._lock.close()

    def _values(self, sample: Sample) -> dict[str, Any]:
        return self.fields.check(self._seen, sample.fields)

    def _group(self, sample: Sample) -> int:
        has = sample.group is not None
        if self._has_groups is None:
            self._has_groups = has
        elif has != self._has_groups:
            raise ValueError(
                f"sample {self._seen - 1} {'has' if has else 'has no'} group, unlike the "
                "samples before it: give every sample a group, or none"
            )
        return self.groups.id(sample.group) if sample.group is not None else 0

    def _full(self, chunk: Chunk) -> bool:
        limit = self.options.shard_records or CHUNK_RECORDS
        return len(chunk) >= limit or chunk.bytes >= min(self.options.shard_bytes, CHUNK_BYTES)

    def _building(self) -> tuple[ShardRun, str]:
        """The run's shard tasks and build directory.

        Raises:
            IngestError: :meth:`start` was not called (or the run already ended).
        """
        if self._run is None or self._tmp is None:
            raise IngestError(f"the run writing {self.out} is not started, or has ended")
        return self._run, self._tmp

    def _flush(self) -> None:
        chunk, self._chunk = self._chunk, Chunk()
        if not self.fields.fixed:
            self.fields.fix(chunk.values)
            chunk = self._checked(chunk)
        run, tmp = self._building()
        spec = work_spec(self._root, self.options, self.fields.specs())
        images: tuple[Any, ...] = tuple(chunk.images)
        shared = share(images) if self._share else None
        if shared is not None:
            self._segments[self._number] = shared[1]
            images = tuple(None if isinstance(i, np.ndarray) else i for i in images)
        run.submit(
            ShardTask(
                root=tmp,
                number=self._number,
                rels=tuple(chunk.paths),
                names=tuple(chunk.names) if chunk.names != chunk.paths else None,
                labels=tuple(chunk.labels),
                groups=tuple(chunk.groups) if self._has_groups else None,
                backend=self.options.backend_for(self.out),
                num_classes=len(self.classes.names),
                spec=spec,
                stop_at_reject=self.options.on_error == "raise",
                values=tuple(chunk.values) if spec.fields else None,
                dataset_id=self._dataset_id,
                inline=images,
                shared=None if shared is None else shared[0],
                splits=tuple(chunk.splits) if self.splits.names else None,
            )
        )
        self._number += 1
        self._release(len(run.numbers))

    def _release(self, answered: int) -> None:
        """Unlink the segments of the first ``answered`` shards (their tasks are done)."""
        for number in [n for n in self._segments if n < answered]:
            segment = self._segments.pop(number)
            segment.unlink()
            segment.close()

    def _checked(self, chunk: Chunk) -> Chunk:
        """The first chunk with its values checked now that the types are fixed."""
        kept = Chunk(bytes=chunk.bytes)
        for k, name in enumerate(chunk.names):
            try:
                values = self.fields.check(k + 1, chunk.values[k])
            except FieldValueError as exc:
                self.reject(Reject(name, exc.reason, exc.detail, label=chunk.labels[k]))
                continue
            kept.names.append(name)
            kept.paths.append(chunk.paths[k])
            kept.labels.append(chunk.labels[k])
            kept.groups.append(chunk.groups[k])
            kept.splits.append(chunk.splits[k])
            kept.values.append(values or None)
            kept.images.append(chunk.images[k])
        return kept

    def _shuffled(self, tmp: str, records: Records) -> Records:
        if self._running is None:
            raise IngestError(f"the run writing {self.out} has no executor to shuffle with")
        return shuffle_records(
            tmp,
            records,
            self._running,
            seed=self.options.seed,
            per_shard=self.options.shard_records or CHUNK_RECORDS,
            backend=self.options.backend_for(self.out),
            encoding=self.options.encoding,
            num_classes=len(self.classes.names),
            field_names=tuple(spec.name for spec in self.fields.specs()),
            dataset_id=self._dataset_id,
        )

    def _finish(self, tmp: str, records: Records) -> Any:
        if not records.shards:
            raise no_usable_image(self._source.where, self.rejects)
        info = DatasetInfo(
            src=self._source.where,
            kind=self._source.kind,
            backend=self.options.backend_for(self.out),
            options=self.options,
            class_names=self.classes.names,
            group_names=self.groups.names if self._has_groups else None,
            rejects=self.rejects.items,
            fields=self.fields.specs(),
            dataset_id=self._dataset_id,
            split_names=tuple(self.splits.names),
        )
        manifest = write_dataset(tmp, fmt.INDEX_DIR, records, info)
        if self._events is not None:
            self._events("finalize")
            self._events("publish")
        tidy_build_dir(tmp)
        atomic.publish(
            tmp, self.out, self.options.overwrite, _protected(self._source), self._events
        )
        return manifest


def local_out(out: str | os.PathLike[str], kind: str) -> str:
    """OUT as an absolute local path; a URL is refused (streams write locally)."""
    if is_url(out):
        raise IngestError(
            f"{kind} writes a local dataset, not {public(os.fspath(out))}: write it locally, "
            "then publish it with datumio.remote.publish"
        )
    return os.path.abspath(os.fspath(out))


def _check_out(out: str, options: IngestOptions, source: Source) -> None:
    if options.append:
        raise IngestError(
            f"{source.kind}: append is for folders and labels files; write the new samples "
            "to a dataset of their own (or ingest them as files with --append)"
        )
    check_new_out(out, options, _protected(source))


def _protected(source: Source) -> list[str]:
    """What OUT must never hold: the source's input, when it is a local path."""
    where = source.where
    return [os.path.abspath(where)] if os.path.exists(where) else []


def _fingerprint(source: Source, options: IngestOptions, out: str) -> str:
    """What a resumed run must share with the dead one: the input and the content options."""
    recorded = recorded_options(options)
    head = {
        "kind": source.kind,
        "input": source.fingerprint,
        "backend": options.backend_for(out),
        "options": {k: recorded[k] for k in CONTENT_OPTIONS},
        "class_names": list(source.class_names or ()),
        "fields": dict(source.fields),
        "chunk": [CHUNK_RECORDS, CHUNK_BYTES],
    }
    text = json.dumps(head, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()


def write_source(
    source: Source,
    out: str | os.PathLike[str],
    options: IngestOptions,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
    events: Events | None = None,
    stop: ShouldStop | None = None,
) -> IngestReport:
    """Write every sample of ``source`` into a new dataset at ``out`` (see the module).

    ``resume`` needs a source with a fingerprint: without one nothing tells a dead run's
    build of the same input from another's.
    """
    out = local_out(out, source.kind)
    if options.resume and not source.fingerprint:
        raise IngestError(
            f"{source.kind}: resume needs an input that names itself (a fingerprint); "
            "start the run again without resume"
        )
    run = StreamRun(
        out,
        options,
        source,
        executor=executor,
        progress=progress,
        events=events,
        stop=stop,
    ).start()
    try:
        for sample in _samples(source):
            if isinstance(sample, Reject):
                run.reject(sample)
            else:
                run.add(sample)
    except BaseException as exc:
        error = run.abort(exc)
        if error is exc:
            raise
        raise error from exc
    return run.close()


def _samples(source: Source) -> Iterator[Sample | Reject]:
    yield from source.samples()
