"""``datumio.Writer``: write a dataset from Python code, sample by sample.

The same engine as ``datumio-ingest`` and the importers (:mod:`datumio.ingest.stream`): the
images are decoded, checked, resized and encoded by the ingest worker pool, the shards,
index and manifest are the same, and the dataset appears at OUT only when :meth:`close`
(the end of the ``with`` block) publishes it. An exception inside the ``with`` publishes
nothing and removes what the writer wrote.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from types import TracebackType
from typing import Any, Unpack

from datumio.checks import on_top
from datumio.errors import OptionError
from datumio.ingest.options import IngestKeywords, IngestOptions
from datumio.ingest.report import IngestReport
from datumio.ingest.running import Progress
from datumio.ingest.samples import ImageInput, Sample, Source
from datumio.ingest.stream import StreamRun, local_out

#: Options of a folder ingest that mean nothing for samples given from code.
_NOT_FOR_CODE = ("labels_file", "append", "resume", "columns", "splits")


class Writer:
    """Write a new dataset at ``out`` from samples given one by one.

    Example::

        with datumio.Writer("out.lmdb", class_names=["cat", "dog"], encode="jpeg") as w:
            for image, label in my_samples():     # uint8 arrays, bytes or paths
                w.add(image, label)
        print(w.report.manifest.num_records)

    Args:
        out: the dataset directory to create (``.lmdb`` / ``.h5`` picks the backend).
        options: :class:`~datumio.ingest.IngestOptions`; the keywords below go on top.
        executor: where shard tasks run (an Executor, or ``"local"``, ``"dask"`` ...).
        progress: called as ``progress(samples_done, 0)`` after each shard.
        overrides: any :class:`~datumio.ingest.IngestOptions` field: ``class_names`` (fix
            the classes and their order: labels may then be names or ids), ``fields``
            (declare field types, ``{"boxes": "boxes"}``; undeclared ones are inferred from
            the first shard's samples), ``encode``, ``short_side``, ``size``,
            ``shard_records``, ``workers``, ``on_error``, ``overwrite`` ...

    Raises:
        OptionError: an option that means nothing here (``labels_file``, ``append``,
            ``resume``, ``columns``, ``splits``), or a bad value.
        IngestError: OUT exists (without ``overwrite``), or another run writes it.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        options: IngestOptions | None = None,
        *,
        executor: Executor | str | None = None,
        progress: Progress | None = None,
        **overrides: Unpack[IngestKeywords],
    ) -> None:
        given: dict[str, Any] = dict(overrides)
        fields = given.pop("fields", None)
        if isinstance(executor, str):
            given["executor"], executor = executor, None
        options = on_top(IngestOptions, options, given, "Writer")
        wrong = [name for name in _NOT_FOR_CODE if getattr(options, name) not in (None, False)]
        if wrong:
            raise OptionError(
                f"Writer: {wrong[0]} applies to ingesting files and importers, not to "
                "samples given from code; leave it out"
            )
        source = Source(
            kind="code",
            where="datumio.Writer",
            samples=lambda: iter(()),
            class_names=options.class_names,
            fields=dict(fields or options.fields or {}),
        )
        self._run = StreamRun(
            local_out(out, "Writer"), options, source, executor=executor, progress=progress
        )
        self._started = False
        #: The report of the finished run (set by :meth:`close`).
        self.report: IngestReport | None = None

    def __enter__(self) -> Writer:
        self._start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.abort(exc)
            return
        self.close()

    def _start(self) -> None:
        if not self._started:
            self._run.start()
            self._started = True

    def add(
        self,
        image: ImageInput,
        label: int | str,
        group: int | str | None = None,
        *,
        name: str | None = None,
        split: str | None = None,
        **fields: Any,
    ) -> None:
        """Add one sample (its image is processed by the worker pool, in order).

        Args:
            image: encoded bytes (stored as they are unless an option changes the
                pixels), a uint8 array (HxW or HxWxC; stored as PNG with the default
                ``encode``), or the path of an image file.
            label: a class id or name (see ``class_names``).
            group: a group id or name (patient, video ...): give one to every sample or
                to none.
            name: shown in rejects and stored as the record's source (default ``#N``).
            split: the stored split of the sample (``"train"``, ``"val"`` ...).
            fields: the sample's field values by name.

        Raises:
            TypeError, ValueError: an image, label or group of the wrong kind (a
                programming error: the ``with`` block then publishes nothing).
        """
        if self.report is not None:
            raise OptionError("Writer.add() after close(): the dataset is already written")
        self._start()
        sample = Sample(image, label, group, fields or None, name, split)
        self._run.add(sample)

    def close(self) -> IngestReport:
        """Wait for every shard and publish the dataset at OUT (once); returns the report."""
        if self.report is None:
            self._start()
            self.report = self._run.close()
        return self.report

    def abort(self, exc: BaseException | None = None) -> None:
        """Publish nothing: stop the workers and remove what was written."""
        if self._started and self.report is None:
            self._run.abort(exc or KeyboardInterrupt())
            self._started = False
