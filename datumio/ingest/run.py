"""``datumio.ingest()``: pick the run's target (a new dataset, or ``--append``), run the flow."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, Unpack

from datumio.checks import on_top
from datumio.errors import IngestError
from datumio.ingest import importers
from datumio.ingest.append import Append
from datumio.ingest.lock import writer_lock
from datumio.ingest.new_dataset import NewDataset
from datumio.ingest.options import Importer, IngestKeywords, IngestOptions
from datumio.ingest.pipeline import Events, Progress, ShouldStop, Target, check_paths, run_ingest
from datumio.ingest.report import IngestReport
from datumio.ingest.stream import write_source
from datumio.remote.cache import cache_key
from datumio.remote.publish import publish, seen_manifest
from datumio.remote.store import DEFAULT_CACHE_DIR, is_url, public
from datumio.remote.urls import check_url
from datumio.shards import format as fmt
from datumio.shards.manifest import read_manifest


def ingest(
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: IngestOptions | None = None,
    *,
    executor: Executor | str | None = None,
    progress: Progress | None = None,
    events: Events | None = None,
    stop: ShouldStop | None = None,
    **overrides: Unpack[IngestKeywords],
) -> IngestReport:
    """Ingest the images below ``src`` into a new dataset at ``out`` (or add them to it).

    Args:
        src: the input: the root of class folders or of the files a labels file names
            (or of a COCO JSON's images); a Hugging Face ``save_to_disk`` folder or Parquet
            files; WebDataset tars (a brace pattern, a folder of tars, or a list of them).
            ``importer`` says which (default: told from SRC and ``labels_file``).
        out: the dataset directory to create (``.lmdb`` / ``.h5`` picks the backend), or a
            URL (``s3://bucket/out.lmdb``): the dataset is written in a local staging
            directory (``$DATUMIO_CACHE/ingest/...``; ``resume`` continues it), then every
            file is uploaded and the manifest last, so a reader never sees half of it.
        options: see :class:`IngestOptions` (``append``, ``resume``, ``executor`` ...).
        executor: where shard tasks run: an Executor, or the name of one
            (``IngestOptions.executor``: ``"local"``, ``"dask"``, ``"dask=tcp://HOST:PORT"``);
            default the one ``options.executor`` names.
        progress: called as ``progress(files_done, files_total)`` after each shard.
        events: called with the name of each step as the run reaches it (see
            :data:`datumio.ingest.pipeline.Events`).
        stop: polled while the run waits for shards; True stops it as Ctrl-C would.
        overrides: any other :class:`IngestOptions` field on top of ``options``
            (``ingest(src, out, size=(224, 224), workers=4)``; see :class:`IngestKeywords`).

    Returns:
        The report of the run (also written into the dataset's manifest).

    Raises:
        IngestError: bad paths, ``on_error="raise"`` on a bad file, too many rejects, or
            another run writing ``out`` (see ``IngestOptions.wait``).
        DiskFullError: a file could not be written for want of space; the message says
            where, and how to go on with ``resume`` (the finished shards are kept).
        RemoteError: ``out`` is a URL that cannot be written, or another writer published
            there while this run was writing.
        OptionError: ``out`` is a URL with a query string or fragment its scheme takes
            none of (``s3://...?x``); a bad option, naming it.
        TypeError: a keyword that is not an option (with the closest name).
    """
    fields: dict[str, Any] = dict(overrides)
    if isinstance(executor, str):
        fields["executor"], executor = executor, None
    options = on_top(IngestOptions, options, fields, "ingest")
    run: dict[str, Any] = dict(executor=executor, progress=progress, events=events, stop=stop)
    kind = importers.resolve(src, options)
    if kind in importers.STREAMS:
        return _ingest_stream(kind, src, out, options, run)
    if not isinstance(src, str | os.PathLike):
        raise IngestError(
            f"a list of inputs is for WebDataset tars; a {kind} input is one folder "
            f"({importers.describe(src)})"
        )
    if kind != options.importer:
        options = dataclasses.replace(options, importer=kind)  # checked again for that kind
    if is_url(out):
        return _ingest_to_url(src, str(out), options, **run)
    out = os.path.abspath(os.fspath(out))
    # Bad paths are refused before the lock makes OUT's folder (and checked again under it).
    check_paths(os.path.abspath(os.fspath(src)), out, options)
    # One writer at a time, from before anything at OUT is read to the end of the run.
    with writer_lock(out, options.wait, events=events, stop=stop):
        return _ingest_local(src, out, options, **run)


def _ingest_stream(
    kind: Importer, src: Any, out: str | os.PathLike[str], options: IngestOptions, run: Any
) -> IngestReport:
    """An importer's stream of samples (a Hugging Face dataset, WebDataset tars) into a new
    local dataset."""
    source = importers.open_source(kind, src, options)
    return write_source(source, out, options, **run)


def _ingest_local(
    src: str | os.PathLike[str],
    out: str,
    options: IngestOptions,
    *,
    upload: str | None = None,
    **run: Any,
) -> IngestReport:
    """Ingest into the local directory ``out`` (absolute), whose writer lock is held."""
    src = os.path.abspath(os.fspath(src))
    check_paths(src, out, options)  # OUT may have changed while this run waited for the lock
    target: Target
    if options.append:
        target = Append(out, options.resume)
    else:
        target = NewDataset(src, out, options)
    return run_ingest(src, out, options, target, upload=upload, **run)


def _ingest_to_url(
    src: str | os.PathLike[str], url: str, options: IngestOptions, **run: Any
) -> IngestReport:
    """Ingest into a local staging directory (kept for ``--resume``); each task uploads its
    shard once it is whole, then the rest is published to ``url`` with the manifest last
    (:func:`datumio.remote.publish.publish`, which skips the shards already there).

    Runs on this machine take turns through the staging directory's writer lock; a writer
    elsewhere is caught at the end: the manifest is sent only if the one at ``url`` is
    still the one seen at the start (``docs/remote.md``). A URL is checked as readers check
    it: a query string or fragment where its scheme takes none is refused up front."""
    url = check_url(url)
    if options.append:
        raise IngestError(
            f"--append to a URL ({public(url)}) is not supported: append to a local copy, "
            "then publish it"
        )
    base = os.environ.get("DATUMIO_CACHE") or DEFAULT_CACHE_DIR
    staging = os.path.join(os.path.expanduser(base), "ingest", cache_key(public(url)))
    with writer_lock(
        staging, options.wait, shown=public(url), events=run["events"], stop=run["stop"]
    ):
        seen = seen_manifest(url)
        if not (options.overwrite or options.resume) and seen.dataset:
            raise IngestError(
                f"{public(url)} already holds a dataset; pass --overwrite to replace its files "
                "in place (readers of the old one then refuse the new files until they "
                "reopen: better, write to a new URL and switch readers over)"
            )
        if options.resume and os.path.isfile(os.path.join(staging, fmt.MANIFEST)):
            # The local run finished before (the publish was interrupted): send what is missing.
            manifest = read_manifest(staging)
            report = IngestReport(staging, manifest, [], 0, 0.0, len(manifest.shards))
        else:
            local = dataclasses.replace(options, overwrite=not options.resume)
            report = _ingest_local(src, staging, local, upload=url, **run)
        publish(staging, url, seen=seen)
    return dataclasses.replace(report, out=url)
