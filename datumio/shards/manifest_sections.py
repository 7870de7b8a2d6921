"""The sections of ``manifest.json`` below its top level, each a frozen dataclass that reads
itself from its JSON object by a table of keys.

A section lists its JSON keys with a check each (``KEYS``, checks of :mod:`datumio.checks`)
and, in :meth:`Section.agree`, the few rules that tie its keys together. :meth:`Section.read`
runs both and builds the section from the checked values; the keys this version does not
know (written by a newer datumio of the same format version) are kept in ``extra`` so that
they survive a round trip. A key an older writer left out reads as null, which its check
turns into the value readers assume (``payload_bytes`` 0 ...). A refusal is a
:class:`~datumio.checks.BadValue` naming the key's path from the top of the manifest
(``shards[3].num_records=-1; give an int >= 0``);
:meth:`~datumio.shards.manifest.Manifest.from_json` adds the file. ``to_json`` gives back the
JSON object the writer writes, key for key and in the same order.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from datumio.checks import (
    BadValue,
    Check,
    finite,
    integer,
    mapping,
    non_negative_int,
    optional,
    refuse,
    string,
)
from datumio.shards import format as fmt


def plain(value: Any) -> Any:
    """A deep copy of a JSON value in JSON's own types (a tuple becomes a list)."""
    if isinstance(value, Mapping):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value  # a number, a text, a bool or None: immutable


def unknown_keys(obj: Mapping[str, Any], known: Container[str]) -> dict[str, Any]:
    """The keys of ``obj`` this version does not know, kept for ``to_json``."""
    return {key: plain(v) for key, v in obj.items() if key not in known}


# -- checks of manifest values -------------------------------------------------------------


def _normal_relative(path: str) -> bool:
    """``path`` is relative and its own ``posixpath.normpath`` (no empty part, none that
    starts with a dot: ``shards/shard-00003.mdb``), told without normalising it."""
    return (
        path[:1] not in ("", "/", ".") and path[-1] != "/" and "//" not in path and "/." not in path
    )


def normal_path(path: str) -> str:
    """``posixpath.normpath(path)``."""
    return path if _normal_relative(path) else posixpath.normpath(path)


def inside(name: str, value: Any) -> str:
    """A relative path that stays inside the dataset directory."""
    if isinstance(value, str) and value and "\\" not in value and "\x00" not in value:
        if _normal_relative(value):
            return value
        norm = posixpath.normpath(value)
        if not posixpath.isabs(norm) and norm != ".." and not norm.startswith("../"):
            return value
    raise refuse(name, value, "a relative path inside the dataset")


def array(check: Check, *, empty: bool = True) -> Check:
    """A JSON array (``empty=False``: of one item at least), each item passing ``check``;
    a tuple."""
    want = "a list" if empty else "a non-empty list"

    def checked(name: str, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple) or (not empty and not value):
            raise refuse(name, value, want)
        try:  # the items by the list's name: an item's path is built only to name a refusal
            return tuple([check(name, item) for item in value])
        except BadValue:
            for k, item in enumerate(value):
                check(f"{name}[{k}]", item)  # the same refusal, named by the item's path
            raise

    return checked


def as_written(check: Check) -> Check:
    """What ``check`` accepts, kept as the file holds it (an int stays an int: a round trip
    gives the same bytes)."""

    def checked(name: str, value: Any) -> Any:
        check(name, value)
        return value

    return checked


def json_object(name: str, value: Any) -> dict[str, Any]:
    """Any JSON object, copied."""
    if not isinstance(value, Mapping):
        raise refuse(name, value, "an object")
    copied: dict[str, Any] = plain(value)
    return copied


def object_or_empty(check: Check) -> Check:
    """What ``check`` accepts; absent or null reads as an empty object (a new one each read)."""
    return lambda name, value: check(name, {} if value is None else value)


def key_path(name: str, key: str) -> str:
    """``name.key``; ``key`` alone at the top level (``name`` empty)."""
    return f"{name}.{key}" if name else key


#: A finite number, kept as written.
json_number = as_written(finite)
count_list = array(non_negative_int)
name_list = array(string(), empty=False)
#: Names of files -> their paths inside the dataset.
path_map = mapping(string(), inside, want="an object")


#: How a section reads, worked out once: its (key, check) pairs in the table's order, the
#: checked keys it does not keep (derived ones), and whether its checked values can be filled
#: in (:func:`_filled`: every attribute is a key or ``extra``, and it has no ``__post_init__``).
_Plan = tuple[tuple[tuple[str, Check], ...], tuple[str, ...], bool]
_PLANS: dict[type, _Plan] = {}


def _plan(section: type[Section]) -> _Plan:
    """The section's :data:`_Plan`."""
    plan = _PLANS.get(section)
    if plan is None:
        attributes = {f.name for f in dataclasses.fields(section)}  # type: ignore[arg-type]
        dropped = tuple(key for key in section.KEYS if key not in attributes)
        kept = {*section.KEYS, "extra"}.difference(dropped)
        fill = kept == attributes and not hasattr(section, "__post_init__")
        plan = _PLANS[section] = (tuple(section.KEYS.items()), dropped, fill)
    return plan


def _filled(section: type[Any], values: dict[str, Any]) -> Any:
    """A ``section`` holding ``values`` (every attribute, checked), filled in as unpickling
    does: the frozen ``__init__`` (an ``object.__setattr__`` each) costs as much as the checks."""
    made = object.__new__(section)
    made.__dict__.update(values)
    return made


class Section:
    """A JSON object of the manifest read by its table of keys (:meth:`read`)."""

    #: JSON key -> check of its value (an absent key is checked as null). A key that is not
    #: an attribute of the section (a derived one) is checked and agreed on, not kept.
    KEYS: ClassVar[Mapping[str, Check]] = {}

    @classmethod
    def read(cls, name: str, value: Any) -> Self:
        """The section in the JSON ``value`` found at key path ``name`` (a check).

        Raises:
            BadValue: a key's value, or two keys together, that a reader cannot use; the
                text names the key's path.
        """
        if not isinstance(value, dict):
            raise refuse(name, value, "an object")
        checks, dropped, fill = _plan(cls)
        get = value.get
        try:  # each key by its own name: its path is built only to name a refusal
            values = {key: check(key, get(key)) for key, check in checks}
        except BadValue:
            for key, check in checks:
                check(key_path(name, key), get(key))  # the same refusal, named by its path
            raise
        cls.agree(name, values)
        for key in dropped:
            del values[key]
        known = cls.KEYS.keys()
        values["extra"] = {} if value.keys() <= known else unknown_keys(value, known)
        made: Self = _filled(cls, values) if fill else cls(**values)
        return made

    @classmethod
    def agree(cls, name: str, values: Mapping[str, Any]) -> None:
        """Refuse checked ``values`` whose keys disagree with each other (none by default)."""


# -- the sections --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ListedShard(Section):
    """One shard as the manifest lists it (``shards[s]``)."""

    KEYS: ClassVar[Mapping[str, Check]] = {
        "file": inside,
        "first_id": non_negative_int,
        "num_records": non_negative_int,
        "payload_bytes": optional(non_negative_int, 0),
        "file_bytes": non_negative_int,
        "records_crc32": non_negative_int,
        "fields_crc32": optional(non_negative_int),
    }

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
            **plain(self.extra),
        }


@dataclass(frozen=True, kw_only=True)
class EmptyClass(Section):
    """A class that ended with no record, and why (``empty_classes[k]``)."""

    KEYS: ClassVar[Mapping[str, Check]] = {
        "id": non_negative_int,
        "name": string(),
        "why": string(),
    }

    id: int
    name: str
    why: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "why": self.why, **plain(self.extra)}


@dataclass(frozen=True, kw_only=True)
class Groups(Section):
    """The labels file's group column: a name per group id, records per group."""

    KEYS: ClassVar[Mapping[str, Check]] = {
        "names": name_list,
        "counts": optional(count_list, ()),
    }

    names: tuple[str, ...]
    #: Empty when not recorded.
    counts: tuple[int, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def agree(cls, name: str, values: Mapping[str, Any]) -> None:
        """Counts, when recorded, one per group name."""
        given, wanted = values["counts"], len(values["names"])
        if given and len(given) != wanted:
            raise refuse(f"{name}.counts", list(given), f"{wanted} counts, one per group name")

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "counts": list(self.counts), **plain(self.extra)}


@dataclass(frozen=True, kw_only=True)
class StatsFiles(Section):
    """The files that keep the stats exact across ``--append`` (``stats.files``)."""

    KEYS: ClassVar[Mapping[str, Check]] = {"histogram": inside, "source_sizes": inside}

    #: ``<u8 [C, 256]`` counts of stored pixel values.
    histogram: str
    #: ``<u4 [N, 2]`` upright source (width, height) of every record.
    source_sizes: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "histogram": self.histogram,
            "source_sizes": self.source_sizes,
            **plain(self.extra),
        }


#: ``width``, ``height`` and ``aspect`` -> their ``min``, ``max``, ``mean`` and ``median``.
_SIZES = object_or_empty(mapping(string(), mapping(string(), json_number), want="an object"))


@dataclass(frozen=True, kw_only=True)
class Stats(Section):
    """Statistics of the stored records, exact (``stats``).

    ``source_size`` and ``stored_size`` map ``width``, ``height`` and ``aspect`` to their
    ``min``, ``max``, ``mean`` and ``median`` (empty for a dataset without records).
    """

    KEYS: ClassVar[Mapping[str, Check]] = {
        "pixel_scale": optional(string(), "0-255"),
        "mean": optional(array(json_number)),
        "std": optional(array(json_number)),
        "source_size": _SIZES,
        "stored_size": _SIZES,
        "source_formats": object_or_empty(mapping(string(), non_negative_int, want="an object")),
        "files": optional(StatsFiles.read),
    }

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
            "mean": plain(self.mean),
            "std": plain(self.std),
            "source_size": plain(self.source_size),
            "stored_size": plain(self.stored_size),
            "source_formats": plain(self.source_formats),
            "files": None if self.files is None else self.files.to_json(),
            **plain(self.extra),
        }


@dataclass(frozen=True, kw_only=True)
class RejectSummary(Section):
    """The files ingest skipped: how many, by reason, and the file listing them."""

    KEYS: ClassVar[Mapping[str, Check]] = {
        "count": optional(non_negative_int, 0),
        "by_reason": object_or_empty(mapping(string(), non_negative_int, want="an object")),
        "file": optional(inside, fmt.REJECTS),
    }

    count: int = 0
    by_reason: Mapping[str, int] = field(default_factory=dict)
    #: Relative to the dataset directory (``rejects.jsonl``; ``rejects-gNNNNN.jsonl`` after
    #: an append).
    file: str = fmt.REJECTS
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "by_reason": plain(self.by_reason),
            "file": self.file,
            **plain(self.extra),
        }


_CHANNEL = integer(0, 255)


def _options(name: str, value: Any) -> Mapping[str, Any] | None:
    """The run's options: an object (its ``background``, if recorded, three ints 0..255);
    any empty value stands for "no options"."""
    if not isinstance(value, Mapping):
        if value:
            raise refuse(name, value, "an object or null")
        return None
    background = value.get("background")
    if background is not None:
        if not isinstance(background, list | tuple) or len(background) != 3:
            raise refuse(f"{name}.background", background, "three ints from 0 to 255")
        for k, channel in enumerate(background):
            _CHANNEL(f"{name}.background[{k}]", channel)
    return value  # copied by IngestRun


@dataclass(frozen=True, kw_only=True)
class IngestRun(Section):
    """The ingest run that wrote the dataset (``ingest``): for debugging, and for
    ``--append``, which stores new records with the same options."""

    KEYS: ClassVar[Mapping[str, Check]] = {
        "source": optional(string()),
        "input": optional(string()),
        "options": _options,
    }

    #: Absolute input directory of the run.
    source: str | None = None
    #: ``folders``, ``labels-file`` or ``table`` (a labels file without paths: no image).
    input: str | None = None
    #: Every ``IngestOptions`` attribute of the run by name, plus the resolved ``encoding``,
    #: as JSON values (a tuple becomes a list).
    options: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Options built from an IngestOptions hold tuples: keep what the file will hold.
        object.__setattr__(self, "options", None if self.options is None else plain(self.options))

    @property
    def background(self) -> tuple[int, int, int] | None:
        """The run's ``background`` option (checked: three values 0..255), if recorded."""
        value = (self.options or {}).get("background")
        return None if value is None else (int(value[0]), int(value[1]), int(value[2]))

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "input": self.input,
            "options": plain(self.options),
            **plain(self.extra),
        }


#: A split's name, which is also a directory name: ASCII letters and digits, ``_`` and ``-``.
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def split_name(name: str, value: Any) -> str:
    """The name of a stored split (``train``, ``val``): 1 to 64 ASCII letters, digits, ``_``
    or ``-``, starting with a letter or digit (it names the split's directory)."""
    if not isinstance(value, str) or not _SPLIT_NAME.fullmatch(value):
        want = "a split name: 1 to 64 ASCII letters, digits, '_' or '-', a letter or digit first"
        raise refuse(name, value, want)
    return value


@dataclass(frozen=True, kw_only=True)
class Splits(Section):
    """The dataset's stored splits (``splits``): views over its records, kept as index files
    under ``dir`` (``datumio.shards.splits``); a record is in one split at most."""

    KEYS: ClassVar[Mapping[str, Check]] = {
        "names": array(split_name, empty=False),
        "dir": inside,
        "counts": mapping(split_name, non_negative_int, want="an object"),
        "class_counts": mapping(split_name, count_list, want="an object"),
        "how": object_or_empty(json_object),
    }

    #: The split names, in order (``train``, ``val``, ``test``).
    names: tuple[str, ...]
    #: The directory of the split files, relative to the dataset (``index/splits-1a2b3c4d``):
    #: a new one per re-split, so a reader of the old files keeps reading them.
    dir: str
    #: Records per split, by name.
    counts: Mapping[str, int]
    #: Records per class id in each split, by name.
    class_counts: Mapping[str, tuple[int, ...]]
    #: How the records were assigned (seed, fractions, stratified by ...; ``given``: from an
    #: input column): any JSON object, for people and for re-splitting alike.
    how: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def agree(cls, name: str, values: Mapping[str, Any]) -> None:
        """Names differ (ignoring case: they name directories), ``counts`` and
        ``class_counts`` give one entry per name, and each split's class counts add up to
        its count."""
        names = values["names"]
        if len({n.casefold() for n in names}) != len(names):
            raise refuse(f"{name}.names", list(names), "names that differ (ignoring case)")
        for key in ("counts", "class_counts"):
            if list(values[key]) != list(names):
                want = f"an entry per split name, in the order of names ({', '.join(names)})"
                raise refuse(f"{name}.{key}", plain(values[key]), want)
        for split in names:
            counts = values["class_counts"][split]
            if sum(counts) != values["counts"][split]:
                want = f"counts that add up to counts.{split}={values['counts'][split]}"
                raise refuse(f"{name}.class_counts.{split}", list(counts), want)

    def path(self, split: str, file: str) -> str:
        """Path of split ``split``'s ``file`` (``ids.npy`` ...) relative to the dataset."""
        return f"{self.dir}/{split}/{file}"

    def to_json(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "dir": self.dir,
            "counts": dict(self.counts),
            "class_counts": {split: list(c) for split, c in self.class_counts.items()},
            "how": plain(self.how),
            **plain(self.extra),
        }
