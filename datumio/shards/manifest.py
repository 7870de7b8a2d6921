"""``manifest.json`` as a typed, frozen :class:`Manifest`: read, checked, written.

:meth:`Manifest.from_json` refuses a foreign format, a newer format version and every field
a reader cannot use (:class:`~datumio.errors.FormatError` naming the field);
:meth:`Manifest.to_json` gives back the JSON object the writer writes, key for key and in
the same order. Keys this version does not know (written by a newer datumio of the same
format version) are kept in ``extra`` at each level, so they survive a round trip. Fields
an older writer left out come back with the value readers assume for them (``generation``
0, ``payload_bytes`` 0, ``null`` ...). ``docs/format.md`` describes every field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from datumio.errors import FormatError
from datumio.fields.spec import FieldSpec
from datumio.shards import format as fmt
from datumio.shards._manifest_checks import check_fields, check_version


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(root: str) -> Manifest:
    """Load and check a dataset's manifest; refuse newer format versions."""
    path = os.path.join(root, fmt.MANIFEST)
    if not os.path.isdir(root):
        what = "it is a file" if os.path.exists(root) else "no such directory"
        raise FormatError(f"{root} is not a dataset directory ({what})")
    if not os.path.isfile(path):
        raise FormatError(
            f"{root} has no {fmt.MANIFEST}: it is not a datumio dataset, or its ingest did not "
            "finish (rerun datumio-ingest)"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (OSError, ValueError) as exc:
        raise FormatError(
            f"{path} is not valid JSON ({exc}): the manifest is damaged; restore it from a copy "
            "or re-ingest"
        ) from exc
    return Manifest.from_json(obj, path)


def write_manifest(root: str, manifest: Manifest) -> None:
    """Write ``root/manifest.json`` atomically (the last file of a dataset to be written)."""
    write_json_atomic(os.path.join(root, fmt.MANIFEST), manifest.to_json())


def names_datumio_format(path: str) -> bool:
    """The file at ``path`` is a JSON object whose ``format`` is datumio's (nothing else is
    checked: ``--overwrite`` may replace a dataset whose manifest is otherwise damaged)."""
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and obj.get("format") == fmt.FORMAT_NAME


# -- the typed manifest ------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A deep copy of a JSON value in JSON's own types (a tuple becomes a list)."""
    if isinstance(value, Mapping):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value  # a number, a text, a bool or None: immutable


def _given(obj: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``obj[key]``, or ``default`` when the key is absent or null."""
    value = obj.get(key)
    return default if value is None else value


def _extra(obj: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """The keys of ``obj`` this version does not know, kept for :meth:`to_json`."""
    names = set(known)
    return {key: _plain(v) for key, v in obj.items() if key not in names}


def _mapping(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else _plain(value)


def _tuple(values: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)


_SHARD_KEYS = (
    "file",
    "first_id",
    "num_records",
    "payload_bytes",
    "file_bytes",
    "records_crc32",
    "fields_crc32",
)


@dataclass(frozen=True, kw_only=True)
class ListedShard:
    """One shard as the manifest lists it (``shards[s]``)."""

    #: Relative to the dataset directory: ``shards/shard-00003.mdb``.
    file: str
    #: Global id of the shard's local id 0 (``shard_offsets[s]``).
    first_id: int
    num_records: int
    payload_bytes: int = 0
    #: Size of the shard file when it was closed.
    file_bytes: int
    #: CRC32 of the shard's per-record CRC32 array (little-endian ``<u4`` bytes).
    records_crc32: int
    #: CRC32 of the shard's per-record fields CRC32 array; None (not written) without fields.
    fields_crc32: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        fields = {} if self.fields_crc32 is None else {"fields_crc32": self.fields_crc32}
        return {
            "file": self.file,
            "first_id": self.first_id,
            "num_records": self.num_records,
            "payload_bytes": self.payload_bytes,
            "file_bytes": self.file_bytes,
            "records_crc32": self.records_crc32,
            **fields,
            **_plain(self.extra),
        }


def _listed_shard(obj: Mapping[str, Any]) -> ListedShard:
    return ListedShard(
        file=obj["file"],
        first_id=obj["first_id"],
        num_records=obj["num_records"],
        payload_bytes=_given(obj, "payload_bytes", 0),
        file_bytes=obj["file_bytes"],
        records_crc32=obj["records_crc32"],
        fields_crc32=obj.get("fields_crc32"),
        extra=_extra(obj, _SHARD_KEYS),
    )


@dataclass(frozen=True, kw_only=True)
class EmptyClass:
    """A class that ended with no record, and why (``empty_classes[k]``)."""

    id: int
    name: str
    why: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "why": self.why, **_plain(self.extra)}


def _empty_class(obj: Mapping[str, Any]) -> EmptyClass:
    return EmptyClass(
        id=obj["id"], name=obj["name"], why=obj["why"], extra=_extra(obj, ("id", "name", "why"))
    )


@dataclass(frozen=True, kw_only=True)
class Groups:
    """The labels file's group column: a name per group id, records per group."""

    names: tuple[str, ...]
    counts: tuple[int, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "counts": list(self.counts), **_plain(self.extra)}


def _groups(obj: Mapping[str, Any]) -> Groups:
    return Groups(
        names=tuple(obj["names"]),
        counts=tuple(_given(obj, "counts", ())),
        extra=_extra(obj, ("names", "counts")),
    )


@dataclass(frozen=True, kw_only=True)
class StatsFiles:
    """The files that keep the stats exact across ``--append`` (``stats.files``)."""

    #: ``<u8 [C, 256]`` counts of stored pixel values.
    histogram: str
    #: ``<u4 [N, 2]`` upright source (width, height) of every record.
    source_sizes: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "histogram": self.histogram,
            "source_sizes": self.source_sizes,
            **_plain(self.extra),
        }


_STATS_KEYS = (
    "pixel_scale",
    "mean",
    "std",
    "source_size",
    "stored_size",
    "source_formats",
    "files",
)


@dataclass(frozen=True, kw_only=True)
class Stats:
    """Statistics of the stored records, exact (``stats``).

    ``source_size`` and ``stored_size`` map ``width``, ``height`` and ``aspect`` to their
    ``min``, ``max``, ``mean`` and ``median`` (empty for a dataset without records).
    """

    pixel_scale: str = "0-255"
    #: Per-channel mean and standard deviation of every stored pixel, on ``pixel_scale``.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source_size: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    stored_size: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: Accepted files per Pillow format name.
    source_formats: Mapping[str, int] = field(default_factory=dict)
    #: None in datasets written before ``--append`` existed.
    files: StatsFiles | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "pixel_scale": self.pixel_scale,
            "mean": _plain(self.mean),
            "std": _plain(self.std),
            "source_size": _plain(self.source_size),
            "stored_size": _plain(self.stored_size),
            "source_formats": _plain(self.source_formats),
            "files": None if self.files is None else self.files.to_json(),
            **_plain(self.extra),
        }


def _stats(obj: Mapping[str, Any]) -> Stats:
    files = obj.get("files")
    return Stats(
        pixel_scale=_given(obj, "pixel_scale", "0-255"),
        mean=_tuple(obj.get("mean")),
        std=_tuple(obj.get("std")),
        source_size=_plain(_given(obj, "source_size", {})),
        stored_size=_plain(_given(obj, "stored_size", {})),
        source_formats=_plain(_given(obj, "source_formats", {})),
        files=None
        if files is None
        else StatsFiles(
            histogram=files["histogram"],
            source_sizes=files["source_sizes"],
            extra=_extra(files, ("histogram", "source_sizes")),
        ),
        extra=_extra(obj, _STATS_KEYS),
    )


@dataclass(frozen=True, kw_only=True)
class RejectSummary:
    """The files ingest skipped: how many, by reason, and the file listing them."""

    count: int = 0
    by_reason: Mapping[str, int] = field(default_factory=dict)
    #: Relative to the dataset directory (``rejects.jsonl``; ``rejects-gNNNNN.jsonl`` after
    #: an append).
    file: str = fmt.REJECTS
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "by_reason": _plain(self.by_reason),
            "file": self.file,
            **_plain(self.extra),
        }


def _reject_summary(obj: Mapping[str, Any]) -> RejectSummary:
    return RejectSummary(
        count=_given(obj, "count", 0),
        by_reason=_plain(_given(obj, "by_reason", {})),
        file=_given(obj, "file", fmt.REJECTS),
        extra=_extra(obj, ("count", "by_reason", "file")),
    )


@dataclass(frozen=True, kw_only=True)
class IngestRun:
    """The ingest run that wrote the dataset (``ingest``): for debugging, and for
    ``--append``, which stores new records with the same options."""

    #: Absolute input directory of the run.
    source: str | None = None
    #: ``folders``, ``labels-file`` or ``table`` (a labels file without paths: no image).
    input: str | None = None
    #: Every ``IngestOptions`` field of the run by name, plus the resolved ``encoding``,
    #: as JSON values (a tuple becomes a list).
    options: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Options built from an IngestOptions hold tuples: keep what the file will hold.
        object.__setattr__(self, "options", _mapping(self.options))

    @property
    def background(self) -> tuple[int, int, int] | None:
        """The run's ``background`` option (checked: three values 0..255), if recorded."""
        value = (self.options or {}).get("background")
        return None if value is None else (int(value[0]), int(value[1]), int(value[2]))

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "input": self.input,
            "options": _plain(self.options),
            **_plain(self.extra),
        }


def _ingest_run(obj: Mapping[str, Any]) -> IngestRun:
    return IngestRun(
        source=obj.get("source"),
        input=obj.get("input"),
        # The check lets any empty value stand for "no options": only an object is kept.
        options=options if isinstance(options := obj.get("options"), dict) else None,
        extra=_extra(obj, ("source", "input", "options")),
    )


_MANIFEST_KEYS = (
    "format",
    "format_version",
    "backend",
    "encoding",
    "num_records",
    "num_classes",
    "class_names",
    "class_counts",
    "shards",
    "index",
    "writer",
    "generation",
    "channels",
    "class_rejected",
    "empty_classes",
    "groups",
    "stats",
    "rejects",
    "ingest",
    "fields",
    "dataset_id",
)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What a dataset is (``manifest.json``); ``docs/format.md`` gives each field's meaning.

    Build one from the parsed JSON with :meth:`from_json` (which checks it) and get the JSON
    object back with :meth:`to_json`. Frozen: change a copy (``dataclasses.replace``).
    """

    format: str = fmt.FORMAT_NAME
    format_version: int = fmt.FORMAT_VERSION
    #: ``lmdb`` or ``hdf5``.
    backend: str
    #: Payload encoding of every record (``auto`` resolved).
    encoding: str
    num_records: int
    class_names: tuple[str, ...]
    #: Records per class id.
    class_counts: tuple[int, ...]
    shards: tuple[ListedShard, ...]
    #: Index file name (``labels``) -> path in the dataset; None: the paths under ``index/``
    #: (datasets written before ``--append`` existed).
    index: Mapping[str, str] | None = None
    #: datumio, Python and numpy versions of the writer and its Unix time (debugging only).
    writer: Mapping[str, Any] | None = None
    #: 0 for a fresh ingest, +1 per ``--append``.
    generation: int = 0
    #: 3 (RGB) or 1 (gray); None when not recorded.
    channels: int | None = None
    #: Files rejected per class id; None when not recorded.
    class_rejected: tuple[int, ...] | None = None
    empty_classes: tuple[EmptyClass, ...] = ()
    groups: Groups | None = None
    stats: Stats | None = None
    rejects: RejectSummary | None = None
    ingest: IngestRun | None = None
    #: The records' typed fields, in storage order (format version 2; none before). Not
    #: written when empty, so a dataset without fields has the manifest it always had.
    fields: tuple[FieldSpec, ...] = ()
    #: The dataset's identity: random, chosen when a new dataset is written and kept by
    #: ``--append`` (so a reader can tell an append, which keeps every record it had, from
    #: a replacement); None in datasets written before identities existed.
    dataset_id: str | None = None
    #: Top-level keys this version does not know, kept for :meth:`to_json`.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_images(self) -> bool:
        """False for a dataset of records without an image (``encoding`` ``"none"``)."""
        return self.encoding != fmt.NO_IMAGE

    def index_path(self, name: str) -> str:
        """Path of index file ``name`` (``labels.npy``) inside the dataset: the manifest names
        the files, as an append writes a new generation of them beside the old one."""
        base = name.removesuffix(".npy")
        return (self.index or {}).get(base, f"{fmt.INDEX_DIR}/{base}.npy")

    @classmethod
    def from_json(cls, obj: Any, where: str = fmt.MANIFEST) -> Manifest:
        """The manifest in the parsed JSON ``obj``, checked as every reader needs it.

        Args:
            obj: what ``json.load`` gave for ``manifest.json``.
            where: names the manifest in error messages (its path).

        Raises:
            FormatError: not a datumio manifest, or a field a reader cannot use (named).
            FormatVersionError: a format version newer than this datumio reads.
        """
        if not isinstance(obj, dict):
            raise FormatError(f"{where} holds a JSON {type(obj).__name__}, not an object")
        check_version(obj, where)
        check_fields(obj, where)
        groups, stats, rejects, ingest = (
            obj.get(k) for k in ("groups", "stats", "rejects", "ingest")
        )
        return cls(
            format=obj["format"],
            format_version=obj["format_version"],
            backend=obj["backend"],
            encoding=obj["encoding"],
            num_records=obj["num_records"],
            class_names=tuple(obj["class_names"]),
            class_counts=tuple(obj["class_counts"]),
            shards=tuple(_listed_shard(entry) for entry in obj["shards"]),
            index=_mapping(obj.get("index")),
            writer=_mapping(obj.get("writer")),
            generation=_given(obj, "generation", 0),
            channels=obj.get("channels"),
            class_rejected=_tuple(obj.get("class_rejected")),
            empty_classes=tuple(_empty_class(e) for e in _given(obj, "empty_classes", ())),
            groups=None if groups is None else _groups(groups),
            stats=None if stats is None else _stats(stats),
            rejects=None if rejects is None else _reject_summary(rejects),
            ingest=None if ingest is None else _ingest_run(ingest),
            fields=tuple(FieldSpec.from_json(f) for f in _given(obj, "fields", ())),
            dataset_id=obj.get("dataset_id"),
            extra=_extra(obj, _MANIFEST_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``manifest.json``: this version's keys in the writer's order,
        then the unknown ones (``extra``). A fresh copy: changing it changes nothing here."""
        return {
            "format": self.format,
            "format_version": self.format_version,
            "backend": self.backend,
            "encoding": self.encoding,
            "num_records": self.num_records,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "class_counts": list(self.class_counts),
            "shards": [shard.to_json() for shard in self.shards],
            "index": _mapping(self.index),
            "writer": _mapping(self.writer),
            "generation": self.generation,
            "channels": self.channels,
            "class_rejected": _plain(self.class_rejected),
            "empty_classes": [e.to_json() for e in self.empty_classes],
            "groups": None if self.groups is None else self.groups.to_json(),
            "stats": None if self.stats is None else self.stats.to_json(),
            "rejects": None if self.rejects is None else self.rejects.to_json(),
            "ingest": None if self.ingest is None else self.ingest.to_json(),
            **({"fields": [f.to_json() for f in self.fields]} if self.fields else {}),
            **({} if self.dataset_id is None else {"dataset_id": self.dataset_id}),
            **_plain(self.extra),
        }
