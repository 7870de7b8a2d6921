"""Reading and writing ``manifest.json``, with the format version check."""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any, TypeGuard

from datumio.codec import ENCODINGS
from datumio.errors import FormatError, FormatVersionError
from datumio.shards import format as fmt


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(root: str) -> dict[str, Any]:
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
            manifest: dict[str, Any] = json.load(fh)
    except (OSError, ValueError) as exc:
        raise FormatError(
            f"{path} is not valid JSON ({exc}): the manifest is damaged; restore it from a copy "
            "or re-ingest"
        ) from exc
    if not isinstance(manifest, dict):
        raise FormatError(f"{path} holds a JSON {type(manifest).__name__}, not an object")
    check_version(manifest, path)
    check_fields(manifest, path)
    return manifest


def check_version(manifest: dict[str, Any], where: str) -> None:
    """Raise unless ``manifest`` names this format at a version this reader knows."""
    if manifest.get("format") != fmt.FORMAT_NAME:
        raise FormatError(
            f"{where}: format is {manifest.get('format')!r}, expected {fmt.FORMAT_NAME!r}"
        )
    version = manifest.get("format_version")
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
    if m.get("encoding") not in ENCODINGS:
        return f"encoding is {m.get('encoding')!r}, expected one of {', '.join(ENCODINGS)}"
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
    if channels is not None and (not _is_int(channels) or not 1 <= channels <= 4):
        return f"channels is {channels!r}, expected 1 to 4"
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


def check_fields(manifest: dict[str, Any], where: str) -> None:
    """Raise unless every field readers rely on has the type and range the format gives."""
    problem = _field_problem(manifest)
    if problem is not None:
        raise FormatError(
            f"{where}: {problem}; the manifest is damaged (restore it from a copy or re-ingest; "
            "datumio verify lists what else is wrong)"
        )
