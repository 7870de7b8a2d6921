"""The checks of a parsed ``manifest.json`` that :meth:`Manifest.from_json` runs first.

Each check looks at the raw JSON object and names the first field a reader cannot use, so
the typed :class:`~datumio.shards.manifest.Manifest` is only ever built from checked values.
"""

from __future__ import annotations

import posixpath
from typing import Any, TypeGuard

from datumio.codec import ENCODINGS
from datumio.errors import FormatError, FormatVersionError
from datumio.fields.spec import specs_problem
from datumio.shards import format as fmt


def check_version(m: dict[str, Any], where: str) -> None:
    """Raise unless ``m`` names this format at a version this reader knows."""
    if m.get("format") != fmt.FORMAT_NAME:
        raise FormatError(f"{where}: format is {m.get('format')!r}, expected {fmt.FORMAT_NAME!r}")
    version = m.get("format_version")
    if not isinstance(version, int):
        raise FormatError(f"{where}: format_version is {version!r}, expected an integer")
    if version > fmt.FORMAT_VERSION:
        raise FormatVersionError(
            f"{where} uses datumio format version {version}, but this datumio reads versions "
            f"up to {fmt.FORMAT_VERSION}: upgrade datumio (pip install -U datumio)"
        )
    if version < 1:
        raise FormatVersionError(f"{where}: format_version {version} is not a known version")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _inside(rel: Any) -> bool:
    """A relative path that stays inside the dataset directory."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    norm = posixpath.normpath(rel)
    return not posixpath.isabs(norm) and norm != ".." and not norm.startswith("../")


def _field_problem(m: dict[str, Any]) -> str | None:
    """The first field of ``m`` a reader cannot use, as ``name is X, expected Y``; else None."""
    if m.get("backend") not in fmt.BACKENDS:
        return f"backend is {m.get('backend')!r}, expected one of {', '.join(fmt.BACKENDS)}"
    if m.get("encoding") not in (*ENCODINGS, fmt.NO_IMAGE):
        known = ", ".join((*ENCODINGS, fmt.NO_IMAGE))
        return f"encoding is {m.get('encoding')!r}, expected one of {known}"
    n, names, counts = m.get("num_records"), m.get("class_names"), m.get("class_counts")
    if not _is_int(n) or n < 0:
        return f"num_records is {n!r}, expected a count"
    if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
        return "class_names is not a non-empty list of names"
    if m.get("num_classes", len(names)) != len(names):
        return f"num_classes is {m.get('num_classes')!r} but class_names lists {len(names)}"
    if (
        not isinstance(counts, list)
        or len(counts) != len(names)
        or not all(_is_int(c) and c >= 0 for c in counts)
        or sum(counts) != n
    ):
        return f"class_counts does not give {len(names)} counts that add up to num_records {n}"
    shards = m.get("shards")
    if not isinstance(shards, list):
        return "shards is not a list"
    first = 0
    for k, entry in enumerate(shards):
        if not isinstance(entry, dict) or not _inside(entry.get("file")):
            return f"shards[{k}].file is not a path inside the dataset"
        for key in ("first_id", "num_records", "file_bytes", "records_crc32"):
            if not _is_int(entry.get(key)) or entry[key] < 0:
                return f"shards[{k}].{key} is {entry.get(key)!r}, expected a count"
        crc = entry.get("fields_crc32")
        if crc is not None and (not _is_int(crc) or crc < 0):
            return f"shards[{k}].fields_crc32 is {crc!r}, expected a count"
        if entry["first_id"] != first:
            return f"shards[{k}].first_id is {entry['first_id']}, expected {first}"
        first += entry["num_records"]
    if first != n:
        return f"the shards hold {first} records but num_records is {n}"
    if len({posixpath.normpath(entry["file"]) for entry in shards}) != len(shards):
        return "two shards entries name the same file"
    for key in ("index", "groups", "stats", "ingest", "rejects", "writer"):
        if m.get(key) is not None and not isinstance(m[key], dict):
            return f"{key} is neither null nor an object"
    if not all(_inside(v) for v in (m.get("index") or {}).values()):
        return "index does not map names to paths inside the dataset"
    groups = m.get("groups")
    if groups is not None and (not isinstance(groups.get("names"), list) or not groups["names"]):
        return "groups has no list of names"
    channels = m.get("channels")
    lowest = 0 if m.get("encoding") == fmt.NO_IMAGE else 1  # no image: no channel
    if channels is not None and (not _is_int(channels) or not lowest <= channels <= 4):
        return f"channels is {channels!r}, expected {lowest} to 4"
    for key in ("mean", "std"):
        values = (m.get("stats") or {}).get(key)
        if values is not None and (
            not isinstance(values, list)
            or (channels is not None and len(values) != channels)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        ):
            return f"stats.{key} is not one number per channel"
    options = (m.get("ingest") or {}).get("options") or {}
    if not isinstance(options, dict):
        return "ingest.options is not an object"
    background = options.get("background")
    if background is not None and (
        not isinstance(background, list)
        or len(background) != 3
        or not all(_is_int(v) and 0 <= v <= 255 for v in background)
    ):
        return "ingest.options.background is not three values 0..255"
    return None


def _is_count(value: Any) -> bool:
    return _is_int(value) and value >= 0


def _counts_problem(value: Any, name: str, length: int) -> str | None:
    if not isinstance(value, list) or len(value) != length or not all(map(_is_count, value)):
        return f"{name} is not {length} count(s)"
    return None


def _typed_problem(m: dict[str, Any]) -> str | None:
    """The first field beyond :func:`_field_problem`'s that the typed :class:`Manifest`
    cannot hold (a present, non-null value of another type), else None."""
    for k, entry in enumerate(m["shards"]):
        if entry.get("payload_bytes") is not None and not _is_count(entry["payload_bytes"]):
            return f"shards[{k}].payload_bytes is {entry['payload_bytes']!r}, expected a count"
    if m.get("generation") is not None and not _is_count(m["generation"]):
        return f"generation is {m['generation']!r}, expected a count"
    dataset_id = m.get("dataset_id")
    if dataset_id is not None and not (isinstance(dataset_id, str) and 0 < len(dataset_id) <= 64):
        return f"dataset_id is {dataset_id!r}, expected a short text (the dataset's identity)"
    num_classes = len(m["class_names"])
    if m.get("class_rejected") is not None:
        problem = _counts_problem(m["class_rejected"], "class_rejected", num_classes)
        if problem is not None:
            return problem
    empty = m.get("empty_classes")
    if empty is not None and (
        not isinstance(empty, list)
        or not all(
            isinstance(e, dict)
            and _is_count(e.get("id"))
            and isinstance(e.get("name"), str)
            and isinstance(e.get("why"), str)
            for e in empty
        )
    ):
        return "empty_classes is not a list of {id, name, why}"
    groups = m.get("groups")
    if groups is not None:
        if not all(isinstance(name, str) for name in groups["names"]):
            return "groups.names is not a list of names"
        if groups.get("counts") is not None:
            problem = _counts_problem(groups["counts"], "groups.counts", len(groups["names"]))
            if problem is not None:
                return problem
    stats = m.get("stats") or {}
    if stats.get("pixel_scale") is not None and not isinstance(stats["pixel_scale"], str):
        return "stats.pixel_scale is not a text"
    for key in ("source_size", "stored_size", "source_formats", "files"):
        if stats.get(key) is not None and not isinstance(stats[key], dict):
            return f"stats.{key} is neither null nor an object"
    files = stats.get("files")
    if files is not None and not (
        _inside(files.get("histogram")) and _inside(files.get("source_sizes"))
    ):
        return "stats.files does not name the histogram and source_sizes files inside the dataset"
    rejects = m.get("rejects") or {}
    if rejects.get("count") is not None and not _is_count(rejects["count"]):
        return f"rejects.count is {rejects['count']!r}, expected a count"
    if rejects.get("by_reason") is not None and not isinstance(rejects["by_reason"], dict):
        return "rejects.by_reason is neither null nor an object"
    if rejects.get("file") is not None and not _inside(rejects["file"]):
        return "rejects.file is not a path inside the dataset"
    ingest = m.get("ingest") or {}
    for key in ("source", "input"):
        if ingest.get(key) is not None and not isinstance(ingest[key], str):
            return f"ingest.{key} is not a text"
    if m.get("fields") is not None:
        problem = specs_problem(m["fields"])
        if problem is not None:
            return problem
        if m["fields"] and any(e.get("fields_crc32") is None for e in m["shards"]):
            return "a shard of a dataset with fields has no fields_crc32"
    return None


def check_fields(m: dict[str, Any], where: str) -> None:
    """Raise unless every field readers rely on has the type and range the format gives."""
    problem = _field_problem(m) or _typed_problem(m)
    if problem is not None:
        raise FormatError(
            f"{where}: {problem}; the manifest is damaged (restore it from a copy or re-ingest; "
            "datumio verify lists what else is wrong)"
        )
