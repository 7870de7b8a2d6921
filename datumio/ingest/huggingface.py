"""Hugging Face datasets as input: ``save_to_disk`` folders, Parquet files and objects.

:func:`huggingface_source` makes a :class:`~datumio.ingest.samples.Source` of

* a ``save_to_disk`` folder of a ``Dataset`` (``state.json`` and Arrow IPC stream files
  ``data-0000x-of-0000n.arrow``) or of a ``DatasetDict`` (``dataset_dict.json`` and one such
  folder per split);
* a Parquet file, or a folder of them (the split from the hub's naming:
  ``train-00000-of-00003.parquet``, or a ``train/`` folder);
* a ``datasets.Dataset`` or ``datasets.DatasetDict`` object.

Files are read with ``pyarrow`` alone, record batch by record batch (Arrow files through a
memory map, Parquet files by their row groups, only the columns used), so nothing is held
whole in memory; ``datasets`` is imported only for an object. What each column holds is
decided in :mod:`datumio.ingest.hf_columns`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Unpack

from datumio.checks import on_top
from datumio.errors import IngestError
from datumio.ingest.hf_columns import ColumnPlan, plan_columns
from datumio.ingest.options import IngestKeywords, IngestOptions
from datumio.ingest.samples import Sample, Source
from datumio.ingest.sources import Reject
from datumio.ingest.stream import write_source

if TYPE_CHECKING:
    from datumio.ingest.report import IngestReport

#: Rows per record batch read (each row an encoded image: a few MB per batch).
_BATCH_ROWS = 256
_INSTALL = 'pip install "datumio[huggingface]"'
#: The hub's file naming: ``train-00000-of-00003.parquet`` (a hash may follow the count).
_SPLIT_FILE = re.compile(r"(?P<split>\w+?)-\d+-of-\d+(-[0-9a-f]+)?\.parquet", re.IGNORECASE)

Batches = Callable[[Sequence[str]], Iterator[Any]]


@dataclass(frozen=True)
class _Part:
    """Rows read together: one file, or one object's split."""

    split: str | None
    rows: int
    #: ``batches(columns)`` -> the part's record batches with (at least) those columns.
    batches: Batches


@dataclass(frozen=True)
class _Input:
    """What was found at the input, before any row is read."""

    where: str
    parts: list[_Part]
    schema: Any
    features: dict[str, Any]
    #: What relative image paths are relative to ("": the working directory).
    root: str
    #: Files, sizes and modification times (or the objects' fingerprints).
    identity: list[Any]


def _pyarrow() -> Any:
    """The ``pyarrow`` module (with ``ipc`` and ``parquet`` loaded), or the install hint."""
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        raise IngestError(f"reading a Hugging Face dataset needs pyarrow: {_INSTALL}") from None
    return pyarrow


def _require(schema: Any, columns: Sequence[str], file: str) -> None:
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise IngestError(
            f"{file} has no column {missing[0]!r} (its columns are {', '.join(schema.names)}); "
            "every file of a dataset needs the same columns"
        )


def _arrow_reader(source: Any) -> tuple[Any, Iterator[Any]]:
    """(schema, record batches) of an open Arrow IPC stream (``save_to_disk``) or IPC file."""
    pa = _pyarrow()
    try:
        stream = pa.ipc.open_stream(source)
        return stream.schema, iter(stream)
    except pa.ArrowInvalid:
        source.seek(0)
        file = pa.ipc.open_file(source)
        return file.schema, (file.get_batch(k) for k in range(file.num_record_batches))


def _arrow_batches(path: str, columns: Sequence[str]) -> Iterator[Any]:
    with _pyarrow().memory_map(path) as source:
        schema, batches = _arrow_reader(source)
        _require(schema, columns, path)
        yield from batches


def _parquet_batches(path: str, columns: Sequence[str]) -> Iterator[Any]:
    file = _pyarrow().parquet.ParquetFile(path)
    _require(file.schema_arrow, columns, path)
    yield from file.iter_batches(batch_size=_BATCH_ROWS, columns=list(columns))


def _file_facts(path: str) -> tuple[Any, int]:
    """(Arrow schema, rows) of a data file, from its metadata (an Arrow file's batch headers:
    the memory map reads no data)."""
    pa = _pyarrow()
    try:
        if path.endswith(".parquet"):
            file = pa.parquet.ParquetFile(path)
            return file.schema_arrow, file.metadata.num_rows
        with pa.memory_map(path) as source:
            schema, batches = _arrow_reader(source)
            return schema, sum(batch.num_rows for batch in batches)
    except (OSError, pa.ArrowException) as exc:
        raise IngestError(f"{path}: not a readable Arrow or Parquet file ({exc})") from exc


def _features(schema: Any, folder: str) -> dict[str, Any]:
    """The ``datasets`` features (JSON) in the schema's metadata or ``dataset_info.json``."""
    stored = (schema.metadata or {}).get(b"huggingface")
    try:
        if stored is not None:
            return dict(json.loads(stored)["info"]["features"])
        info = os.path.join(folder, "dataset_info.json")
        if os.path.isfile(info):
            with open(info, encoding="utf-8") as fh:
                return dict(json.load(fh).get("features") or {})
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # no usable features: the Arrow types decide
    return {}


def _saved_files(folder: str) -> list[str]:
    """The data files of a ``save_to_disk`` Dataset folder, in order (``state.json``)."""
    try:
        with open(os.path.join(folder, "state.json"), encoding="utf-8") as fh:
            names = [entry["filename"] for entry in json.load(fh)["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IngestError(f"{folder}/state.json is not a save_to_disk state ({exc})") from exc
    return [os.path.join(folder, name) for name in names]


def _parquet_split(rel: str) -> str | None:
    """A Parquet file's split: its hub naming, else its folder (not ``data/``), else None."""
    folder, name = os.path.split(rel)
    match = _SPLIT_FILE.fullmatch(name)
    if match is not None:
        return match.group("split")
    parent = os.path.basename(folder)
    return parent if parent and parent != "data" else None


def _parquet_files(src: str) -> list[tuple[str, str | None]]:
    """(path, split) of the Parquet files below ``src`` (hidden entries skipped), sorted."""
    found: list[str] = []
    for top, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(top, f) for f in files if f.endswith(".parquet") and f[0] != "."]
    found.sort(key=lambda path: os.path.relpath(path, src))
    return [(path, _parquet_split(os.path.relpath(path, src))) for path in found]


def _files_at(src: str) -> list[tuple[str, str | None]]:
    """(data file, split) of the input at ``src``, in reading order."""
    if os.path.isfile(src):
        if src.endswith((".parquet", ".arrow")):
            return [(src, None)]
        raise IngestError(f"{src}: a Hugging Face input is a .parquet or .arrow file or a folder")
    if not os.path.isdir(src):
        raise IngestError(f"{src}: no such file or folder")
    listing = os.path.join(src, "dataset_dict.json")
    if os.path.isfile(listing):
        try:
            with open(listing, encoding="utf-8") as fh:
                splits = [str(s) for s in json.load(fh)["splits"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IngestError(f"{listing} is not a DatasetDict's listing ({exc})") from exc
        return [(f, s) for s in splits for f in _saved_files(os.path.join(src, s))]
    if os.path.isfile(os.path.join(src, "state.json")):
        return [(f, None) for f in _saved_files(src)]
    found = _parquet_files(src)
    if not found:
        raise IngestError(
            f"{src}: no Hugging Face dataset here: a save_to_disk folder (state.json or "
            "dataset_dict.json) or Parquet files"
        )
    return found


def _from_path(src: str) -> _Input:
    files = _files_at(src)
    root = src if os.path.isdir(src) else os.path.dirname(src)
    parts: list[_Part] = []
    identity: list[Any] = []
    schema: Any = None
    for path, split in files:
        facts, rows = _file_facts(path)
        schema = facts if schema is None else schema
        reader = _parquet_batches if path.endswith(".parquet") else _arrow_batches
        parts.append(_Part(split, rows, partial(reader, path)))
        stat = os.stat(path)
        identity.append([os.path.relpath(path, root), stat.st_size, stat.st_mtime_ns])
    features = _features(schema, os.path.dirname(files[0][0]))
    return _Input(src, parts, schema, features, root, identity)


def _object_batches(dataset: Any, columns: Sequence[str]) -> Iterator[Any]:
    """A ``datasets.Dataset``'s record batches (its row selection and order applied)."""
    for table in dataset.select_columns(list(columns)).with_format("arrow").iter(_BATCH_ROWS):
        yield from table.to_batches()


def _from_object(data: Any) -> _Input:
    try:
        import datasets  # optional: only an object needs it
    except ImportError:
        raise IngestError(
            f"reading a Hugging Face dataset object needs the datasets package: {_INSTALL}"
        ) from None
    if isinstance(data, datasets.DatasetDict):
        named: list[tuple[str | None, Any]] = [(str(s), d) for s, d in data.items()]
    elif isinstance(data, datasets.Dataset):
        named = [(None, data)]
    else:
        raise IngestError(
            "a Hugging Face input is a path, a datasets.Dataset or a datasets.DatasetDict, "
            f"not {type(data).__name__}"
        )
    if not named:
        raise IngestError("the DatasetDict has no split")
    parts = [_Part(s, d.num_rows, partial(_object_batches, d)) for s, d in named]
    identity = [[s, getattr(d, "_fingerprint", None), d.num_rows] for s, d in named]
    first = named[0][1]
    where = f"datasets.{type(data).__name__}"
    if isinstance(data, datasets.DatasetDict):
        where += f"[{', '.join(str(s) for s, _ in named)}]"
    return _Input(where, parts, first.data.schema, first.features.to_dict(), "", identity)


def _split_counts(found: _Input, plan: ColumnPlan, column: str) -> dict[str, int]:
    """Rows per value of the split column (read alone), in order of first appearance."""
    counts: dict[str, int] = {}
    for part in found.parts:
        for batch in part.batches([column]):
            for name in plan.splits_of(batch):
                if name is not None:
                    counts[name] = counts.get(name, 0) + 1
    return counts


def _check_splits(where: str, wanted: Sequence[str], there: list[str]) -> None:
    unknown = [name for name in wanted if name not in there]
    if not unknown:
        return
    if there:
        have = f"the splits there are {', '.join(there)}"
    else:
        have = "it has no splits (a column of split names is named with --column split=NAME)"
    raise IngestError(f"{where}: no split {unknown[0]!r} to import (--split); {have}")


def _select(
    found: _Input, plan: ColumnPlan, wanted: Sequence[str] | None
) -> tuple[list[_Part], frozenset[str] | None, int]:
    """The parts to read, the splits whose rows to keep (None: all) and their rows."""
    if wanted is None:
        return found.parts, None, sum(part.rows for part in found.parts)
    if plan.split is not None:
        counts = _split_counts(found, plan, plan.split)
        _check_splits(found.where, wanted, list(counts))
        return found.parts, frozenset(wanted), sum(counts[name] for name in wanted)
    there = list(dict.fromkeys(p.split for p in found.parts if p.split is not None))
    _check_splits(found.where, wanted, there)
    parts = [part for part in found.parts if part.split in wanted]
    return parts, None, sum(part.rows for part in parts)


def _samples(
    parts: list[_Part], plan: ColumnPlan, root: str, selected: frozenset[str] | None
) -> Iterator[Sample | Reject]:
    """Every sample of the parts in order; rows are numbered from 0 within each split."""
    first_rows: dict[str | None, int] = {}
    for part in parts:
        first = first_rows.get(part.split, 0)
        for batch in part.batches(plan.columns):
            yield from plan.samples(batch, part.split, first, root, selected)
            first += batch.num_rows
        first_rows[part.split] = first


def huggingface_source(src: Any, options: IngestOptions) -> Source:
    """The records of a Hugging Face dataset, as a stream of samples.

    Args:
        src: a ``save_to_disk`` folder (of a Dataset or a DatasetDict), a Parquet file or a
            folder of them, an Arrow file, or a ``datasets.Dataset`` / ``DatasetDict``.
        options: the run's options; ``columns`` (role -> column), ``fields`` (declared
            field types) and ``splits`` (which splits to import) shape the source.

    Returns:
        The source: class names from the label's ``ClassLabel``, field declarations from
        the features (declared ones win), a fingerprint of the files and the column
        choice, and the row count.

    Raises:
        IngestError: no dataset at ``src``, a missing package (with its install hint), a
            column or split that is not there (listing those that are).
    """
    found = _from_object(src) if not isinstance(src, str | os.PathLike) else None
    if found is None:
        _pyarrow()
        found = _from_path(os.path.abspath(os.fspath(src)))
    plan = plan_columns(found.schema, found.features, options, found.where)
    parts, selected, total = _select(found, plan, options.splits)
    choice = {"input": found.identity, "columns": plan.describe(), "splits": options.splits}
    return Source(
        kind="huggingface",
        where=found.where,
        samples=partial(_samples, parts, plan, found.root, selected),
        class_names=plan.class_names,
        fields={f.column: f.type for f in plan.fields},
        fingerprint=hashlib.sha256(json.dumps(choice, default=str).encode()).hexdigest(),
        total=total,
        root=found.root,
    )


def from_huggingface(
    data: Any,
    out: str | os.PathLike[str],
    options: IngestOptions | None = None,
    **keywords: Unpack[IngestKeywords],
) -> IngestReport:
    """Write a Hugging Face dataset, an object or a path, into a new dataset at ``out``.

    ``datumio.ingest(data, out, importer="huggingface", ...)`` does the same and also takes
    ``executor=``, ``progress=``, ``events=`` and ``stop=``.

    Args:
        data: a ``datasets.Dataset`` or ``DatasetDict``, or what :func:`huggingface_source`
            takes as a path.
        out: the dataset directory to create (``.lmdb`` / ``.h5`` picks the backend).
        options: see :class:`IngestOptions`; ``columns``, ``fields`` and ``splits`` choose
            what is read.
        keywords: any :class:`IngestOptions` field on top of ``options``.

    Returns:
        The report of the run.

    Raises:
        IngestError: see :func:`huggingface_source`; the errors of any ingest.
        TypeError: a keyword that is not an option (with the closest name).
    """
    fields: dict[str, Any] = {"importer": "huggingface", **keywords}
    options = on_top(IngestOptions, options, fields, "from_huggingface")
    return write_source(huggingface_source(data, options), out, options)
