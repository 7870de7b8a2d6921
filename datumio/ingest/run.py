"""``datumio.ingest()``: pick the run's target (a new dataset, or ``--append``), run the flow."""

from __future__ import annotations

import os
from concurrent.futures import Executor

from datumio.ingest.append import Append
from datumio.ingest.new_dataset import NewDataset
from datumio.ingest.options import IngestOptions
from datumio.ingest.pipeline import Events, Progress, Stop, Target, check_paths, run_ingest
from datumio.ingest.report import IngestReport


def ingest(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: IngestOptions | None = None,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
    events: Events | None = None,
    stop: Stop | None = None,
) -> IngestReport:
    """Ingest the images below ``src`` into a new dataset at ``out`` (or add them to it).

    Args:
        src: the input root (class folders, or the files a labels file names).
        out: the dataset directory to create (``.lmdb`` / ``.h5`` picks the backend).
        options: see :class:`IngestOptions` (``append``, ``resume``, ``executor`` ...).
        executor: where shard tasks run; default the one ``options.executor`` names.
        progress: called as ``progress(files_done, files_total)`` after each shard.
        events: called with the name of each step as the run reaches it (see
            :data:`datumio.ingest.pipeline.Events`).
        stop: polled while the run waits for shards; True stops it as Ctrl-C would.

    Returns:
        The report of the run (also written into the dataset's manifest).

    Raises:
        IngestError: bad paths, ``on_error="raise"`` on a bad file, or too many rejects.
    """
    options = options or IngestOptions()
    src, out = os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(out))
    check_paths(src, out, options)
    target: Target = Append(out) if options.append else NewDataset(src, out, options)
    return run_ingest(
        src, out, options, target, executor=executor, progress=progress, events=events, stop=stop
    )
