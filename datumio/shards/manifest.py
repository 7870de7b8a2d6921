"""``manifest.json`` as a typed, frozen :class:`Manifest`: read, checked, written.

:meth:`Manifest.from_json` refuses a foreign format, a newer format version and every key
a reader cannot use (:class:`~datumio.errors.FormatError` naming the file and the key's path:
``manifest.json: shards[3].num_records=-1; give an int >= 0; the manifest is damaged ...``).
The manifest and each of its sections (``manifest_sections.py``) list their JSON keys with a
check each; the rules that tie keys together (counts that add up, shards that follow each
other) come after. :meth:`Manifest.to_json` gives back the JSON object the writer writes, key
for key and in the same order. Keys this version does not know (written by a newer datumio
of the same format version) are kept in ``extra`` at each level, so they survive a round
trip. Keys an older writer left out come back with the value readers assume for them
(``generation`` 0, ``payload_bytes`` 0, ``null`` ...). ``docs/format.md`` describes every
key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from datumio.checks import (
    BadValue,
    Check,
    choice,
    integer,
    non_negative_int,
    optional,
    refuse,
    string,
)
from datumio.codec import ENCODINGS
from datumio.errors import FormatError, FormatVersionError
from datumio.fields.spec import FieldSpec, specs_problem
from datumio.shards import format as fmt
from datumio.shards.manifest_sections import (
    EmptyClass,
    Groups,
    IngestRun,
    ListedShard,
    RejectSummary,
    Section,
    Splits,
    Stats,
    StatsFiles,
    array,
    count_list,
    json_object,
    name_list,
    normal_path,
    path_map,
    plain,
)

__all__ = [
    "EmptyClass",
    "Groups",
    "IngestRun",
    "ListedShard",
    "Manifest",
    "RejectSummary",
    "Splits",
    "Stats",
    "StatsFiles",
    "names_datumio_format",
    "read_manifest",
    "write_json_atomic",
    "write_manifest",
]

#: What every refusal of a damaged manifest ends with: what to do.
DAMAGED = (
    "; the manifest is damaged (restore it from a copy or re-ingest; datumio verify lists "
    "what else is wrong)"
)


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


def _check_version(obj: Mapping[str, Any], where: str) -> None:
    """Raise unless ``obj`` names this format at a version this reader knows."""
    if obj.get("format") != fmt.FORMAT_NAME:
        raise FormatError(f"{where}: format is {obj.get('format')!r}, expected {fmt.FORMAT_NAME!r}")
    version = obj.get("format_version")
    if not isinstance(version, int):
        raise FormatError(f"{where}: format_version is {version!r}, expected an integer")
    if version > fmt.FORMAT_VERSION:
        raise FormatVersionError(
            f"{where} uses datumio format version {version}, but this datumio reads versions "
            f"up to {fmt.FORMAT_VERSION}: upgrade datumio (pip install -U datumio)"
        )
    if version < 1:
        raise FormatVersionError(f"{where}: format_version {version} is not a known version")


def _field_specs(name: str, value: Any) -> tuple[FieldSpec, ...]:
    """The records' typed fields (``fields``): a spec each, no field named twice."""
    problem = specs_problem(value)
    if problem is not None:
        raise BadValue(problem)
    return tuple(FieldSpec.from_json(entry) for entry in value)


def _classes_agree(values: Mapping[str, Any]) -> None:
    """``num_classes``, ``class_counts`` and ``class_rejected`` follow ``class_names``, and
    the counts add up to ``num_records``."""
    classes, num_records = len(values["class_names"]), values["num_records"]
    if values["num_classes"] not in (None, classes):
        raise refuse("num_classes", values["num_classes"], f"{classes}, as class_names lists")
    counts = values["class_counts"]
    if len(counts) != classes or sum(counts) != num_records:
        want = f"{classes} counts (one per class name) that add up to num_records={num_records}"
        raise refuse("class_counts", list(counts), want)
    rejected = values["class_rejected"]
    if rejected is not None and len(rejected) != classes:
        raise refuse("class_rejected", list(rejected), f"{classes} counts, one per class name")


def _shards_agree(values: Mapping[str, Any]) -> None:
    """Each shard starts where the one before ends, they hold ``num_records`` in all, and no
    two name the same file."""
    first, files = 0, set()
    for k, shard in enumerate(values["shards"]):
        if shard.first_id != first:
            raise refuse(f"shards[{k}].first_id", shard.first_id, f"{first}, where it starts")
        first += shard.num_records
        file = normal_path(shard.file)
        if file in files:
            raise refuse(f"shards[{k}].file", shard.file, "a file no other shard names")
        files.add(file)
    if first != values["num_records"]:
        raise refuse("num_records", values["num_records"], f"{first}, what the shards hold")


def _images_agree(values: Mapping[str, Any]) -> None:
    """Records with images have channels, and the stats one number per channel."""
    channels = values["channels"]
    if channels == 0 and values["encoding"] != fmt.NO_IMAGE:
        raise refuse("channels", channels, "an int from 1 to 4 (the records have images)")
    stats = values["stats"]
    if stats is None or channels is None:
        return
    for key in ("mean", "std"):
        numbers = getattr(stats, key)
        if numbers is not None and len(numbers) != channels:
            raise refuse(f"stats.{key}", list(numbers), f"one number per channel ({channels})")


def _splits_agree(values: Mapping[str, Any]) -> None:
    """Each split counts records per class (of the classes there were when it was made: an
    append may add classes since, which no split holds), and the splits hold no more
    records than the dataset (a record is in one split at most)."""
    splits: Splits | None = values["splits"]
    if splits is None:
        return
    classes, num_records = len(values["class_names"]), values["num_records"]
    for name, counts in splits.class_counts.items():
        if len(counts) > classes:
            want = f"at most {classes} counts, one per class name"
            raise refuse(f"splits.class_counts.{name}", list(counts), want)
    if sum(splits.counts.values()) > num_records:
        want = f"counts that add up to at most num_records={num_records}"
        raise refuse("splits.counts", dict(splits.counts), want)


def _fields_agree(values: Mapping[str, Any]) -> None:
    """With record fields, every shard lists the CRC32 of its fields."""
    if not values["fields"]:
        return
    for k, shard in enumerate(values["shards"]):
        if shard.fields_crc32 is None:
            want = "the CRC32 of the shard's fields CRC32 list (the records have fields)"
            raise refuse(f"shards[{k}].fields_crc32", None, want)


@dataclass(frozen=True, kw_only=True)
class Manifest(Section):
    """What a dataset is (``manifest.json``); ``docs/format.md`` gives each key's meaning.

    Build one from the parsed JSON with :meth:`from_json` (which checks it) and get the JSON
    object back with :meth:`to_json`. Frozen: change a copy (``dataclasses.replace``).
    """

    KEYS: ClassVar[Mapping[str, Check]] = {
        # Refused before the table unless this format at a version this reader knows.
        "format": string(),
        "format_version": integer(),
        "backend": choice(fmt.BACKENDS),
        "encoding": choice((*ENCODINGS, fmt.NO_IMAGE)),
        "num_records": non_negative_int,
        "num_classes": optional(non_negative_int),  # the length of class_names: not kept
        "class_names": name_list,
        "class_counts": count_list,
        "shards": array(ListedShard.read),
        "index": optional(path_map),
        "writer": optional(json_object),
        "generation": optional(non_negative_int, 0),
        "channels": optional(integer(0, 4)),
        "class_rejected": optional(count_list),
        "empty_classes": optional(array(EmptyClass.read), ()),
        "groups": optional(Groups.read),
        "stats": optional(Stats.read),
        "rejects": optional(RejectSummary.read),
        "ingest": optional(IngestRun.read),
        "fields": optional(_field_specs, ()),
        "dataset_id": optional(string(empty=False, longest=64)),
        "splits": optional(Splits.read),
    }

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
    #: 3 (RGB) or 1 (gray); 0 for records without an image; None when not recorded.
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
    #: The stored splits (train, val, test ...: ``datumio.shards.splits``); None: none. Not
    #: written when None, so a dataset without splits has the manifest it always had.
    splits: Splits | None = None
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
    def agree(cls, name: str, values: Mapping[str, Any]) -> None:
        """The rules between top-level keys (and the sections they hold)."""
        _classes_agree(values)
        _shards_agree(values)
        _images_agree(values)
        _fields_agree(values)
        _splits_agree(values)

    @classmethod
    def from_json(cls, obj: Any, where: str = fmt.MANIFEST) -> Manifest:
        """The manifest in the parsed JSON ``obj``, checked as every reader needs it.

        Args:
            obj: what ``json.load`` gave for ``manifest.json``.
            where: names the manifest in error messages (its path).

        Raises:
            FormatError: not a datumio manifest, or a key a reader cannot use (its path
                named, as ``shards[3].num_records``).
            FormatVersionError: a format version newer than this datumio reads.
        """
        if not isinstance(obj, dict):
            raise FormatError(f"{where} holds a JSON {type(obj).__name__}, not an object")
        _check_version(obj, where)
        try:
            return cls.read("", obj)
        except BadValue as exc:
            raise FormatError(f"{where}: {exc}{DAMAGED}") from None

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
            "index": plain(self.index),
            "writer": plain(self.writer),
            "generation": self.generation,
            "channels": self.channels,
            "class_rejected": plain(self.class_rejected),
            "empty_classes": [e.to_json() for e in self.empty_classes],
            "groups": None if self.groups is None else self.groups.to_json(),
            "stats": None if self.stats is None else self.stats.to_json(),
            "rejects": None if self.rejects is None else self.rejects.to_json(),
            "ingest": None if self.ingest is None else self.ingest.to_json(),
            **({"fields": [f.to_json() for f in self.fields]} if self.fields else {}),
            **({} if self.dataset_id is None else {"dataset_id": self.dataset_id}),
            **({} if self.splits is None else {"splits": self.splits.to_json()}),
            **plain(self.extra),
        }
