"""Integrity check of a dataset on disk: manifest, index and shards agree, CRC32 of every record.

Verification only reads: shards open read-only (LMDB without a lock file), so it works on
a read-only copy and leaves every file byte- and mtime-identical. A missing, truncated or
unreadable shard is reported by name and the check goes on with the other shards.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datumio.codec import decode_record
from datumio.errors import DatumioError, FormatError
from datumio.fields.encoding import decode as decode_field
from datumio.fields.encoding import fields_crc32
from datumio.fields.spec import FieldValueError
from datumio.shards import format as fmt
from datumio.shards.access import open_reader
from datumio.shards.base import ShardReader, records_crc32
from datumio.shards.field_index import FieldIndex, load_field_index
from datumio.shards.index import load_index_array
from datumio.shards.manifest import ListedShard, Manifest, read_manifest

Progress = Callable[[int, int], None]
#: The index arrays by name (``fields``: each field's global index, by field name).
Index = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong: what, and where (shard file, global record id, key in the shard)."""

    what: str
    shard: str | None = None
    record: int | None = None
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def __str__(self) -> str:
        where = [self.shard or "", f"record {self.record}" if self.record is not None else ""]
        where += [f"key {self.key}" if self.key else ""]
        prefix = ", ".join(w for w in where if w)
        return f"{prefix}: {self.what}" if prefix else self.what


@dataclass
class VerifyReport:
    """Outcome of :func:`verify`."""

    path: str
    decoded: bool
    #: False for the quick check (``records=False``): shard metadata, no payload read.
    records_read: bool = True
    records_checked: int = 0
    shards_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "datumio.verify/1",
            "path": self.path,
            "ok": self.ok,
            "decoded": self.decoded,
            "records_read": self.records_read,
            "records_checked": self.records_checked,
            "shards_checked": self.shards_checked,
            "problems": [p.to_dict() for p in self.problems],
            "seconds": round(self.seconds, 3),
        }


class _Check:
    def __init__(self, root: str, decode: bool, records: bool, progress: Progress | None) -> None:
        self.root = root
        self.report = VerifyReport(path=root, decoded=decode, records_read=records)
        self.decode = decode
        self.records = records
        self.progress = progress
        self.done = 0
        self.total = 0
        self.backend = ""
        self.encoding = ""
        self.manifest: Manifest | None = None

    def problem(self, what: str, **where: Any) -> None:
        self.report.problems.append(Problem(what, **where))

    def index(self, name: str, rows: int) -> np.ndarray | None:
        if self.manifest is None:
            raise ValueError("the index is checked once the manifest has been read")
        try:
            return load_index_array(self.root, self.manifest, name, rows)
        except FormatError as exc:
            self.problem(str(exc))
            return None


def _check_index(check: _Check, manifest: Manifest) -> Index | None:
    """The index files against the manifest and each other; the arrays, or None where one
    is missing or damaged (the shards are then not checked)."""
    n = manifest.num_records
    arrays = {
        "labels": check.index(fmt.LABELS, n),
        "class_offsets": check.index(fmt.CLASS_OFFSETS, manifest.num_classes + 1),
        "class_ids": check.index(fmt.CLASS_IDS, n),
        "shard_offsets": check.index(fmt.SHARD_OFFSETS, len(manifest.shards) + 1),
        "shapes": check.index(fmt.SHAPES, n),
        "source_offsets": check.index(fmt.SOURCE_OFFSETS, n + 1),
    }
    if any(a is None for a in arrays.values()):
        return None
    index: Index = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    if not _check_classes(check, manifest, index):
        return None
    _check_groups(check, manifest)
    index["fields"] = _field_indexes(check, manifest)
    _check_offsets(check, manifest, index)
    return index


def _check_classes(check: _Check, manifest: Manifest, index: Index) -> bool:
    """Labels in range (else False: nothing else can be compared), the class offsets and
    the manifest's class counts, and the class ids grouping the records by class."""
    n, num_classes = manifest.num_records, manifest.num_classes
    labels, offsets, ids = index["labels"], index["class_offsets"], index["class_ids"]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        check.problem(f"index/labels.npy holds labels outside 0..{num_classes - 1}")
        return False
    counts = np.bincount(labels, minlength=num_classes)
    if not np.array_equal(np.diff(offsets), counts):
        check.problem("index/class_offsets.npy disagrees with the labels' class counts")
    elif list(counts) != list(manifest.class_counts):
        check.problem("manifest class_counts disagree with index/labels.npy")
    grouped = ids.size == 0 or (
        ids.min() >= 0 and ids.max() < n and bool(np.all(np.diff(labels[ids]) >= 0))
    )
    if not grouped or np.bincount(ids, minlength=n).max(initial=1) != 1:
        check.problem("index/class_ids.npy does not group record ids by class")
    return True


def _check_groups(check: _Check, manifest: Manifest) -> None:
    """Group ids in range, when the dataset has groups."""
    if manifest.groups is None:
        return
    groups = check.index(fmt.GROUPS, manifest.num_records)
    num_groups = len(manifest.groups.names)
    if groups is not None and groups.size and (groups.min() < 0 or groups.max() >= num_groups):
        check.problem(f"index/groups.npy holds groups outside 0..{num_groups - 1}")


def _field_indexes(check: _Check, manifest: Manifest) -> dict[str, FieldIndex]:
    """The global index of each int and multilabel field, by name (damaged ones reported)."""
    fields: dict[str, FieldIndex] = {}
    for spec in manifest.fields:
        try:
            found = load_field_index(check.root, manifest, spec)
        except FormatError as exc:
            check.problem(str(exc))
            continue
        if found is not None:
            fields[spec.name] = found
    return fields


def _check_offsets(check: _Check, manifest: Manifest, index: Index) -> None:
    """Shard offsets as the manifest lists the shards; source offsets running from 0 up to
    the length of ``sources.npy``."""
    firsts = [s.first_id for s in manifest.shards] + [manifest.num_records]
    if index["shard_offsets"].tolist() != firsts:
        check.problem("index/shard_offsets.npy disagrees with the manifest's shard list")
    sources = index["source_offsets"]
    if int(sources[0]) != 0 or bool(np.any(np.diff(sources) < 0)):
        check.problem("index/source_offsets.npy does not run from 0 without decreasing")
    else:
        check.index(fmt.SOURCES, int(sources[-1]))  # reports a damaged or short sources.npy


def _check_shard(check: _Check, entry: ListedShard, index: Index) -> None:
    path = os.path.join(check.root, entry.file)
    name, n = entry.file, entry.num_records
    if not os.path.isfile(path):
        check.problem("shard file is missing", shard=name)
        check.done += n
        return
    size = os.path.getsize(path)
    if size != entry.file_bytes:
        check.problem(
            f"shard is {size} bytes on disk, the manifest says {entry.file_bytes} "
            "(truncated or replaced)",
            shard=name,
        )
    try:
        reader: ShardReader = open_reader(path, check.backend)
    except (DatumioError, OSError) as exc:
        check.problem(f"shard cannot be opened: {exc}", shard=name)
        check.done += n
        return
    try:
        _check_records(check, reader, entry, index)
    except (DatumioError, OSError, KeyError, ValueError) as exc:
        check.problem(f"shard cannot be read: {exc}", shard=name)
    finally:
        reader.close()
    check.report.shards_checked += 1


def _check_records(check: _Check, reader: ShardReader, entry: ListedShard, index: Index) -> None:
    """A shard's metadata against the manifest and the index; with ``records``, every
    record's fields and payload too."""
    meta = _check_meta(check, reader, entry, index)
    if meta is None:
        return
    fields_crc = _fields_crc(check, reader, entry)
    if not check.records:
        check.done += entry.num_records
        return
    if fields_crc is not None:
        _check_fields(check, reader, entry.file, entry.first_id, fields_crc, index)
    crcs, shapes = meta
    _check_payloads(check, reader, entry, crcs, shapes)


def _check_meta(
    check: _Check, reader: ShardReader, entry: ListedShard, index: Index
) -> tuple[np.ndarray, np.ndarray] | None:
    """The shard's record list (CRC32s, labels, shapes) against the manifest and the index,
    and the dataset it was written for; its CRC32s and shapes, or None when their length
    is not the manifest's (nothing more of the shard can be compared)."""
    name, first, n = entry.file, entry.first_id, entry.num_records
    crcs, labels, shapes = (reader.meta(key) for key in ("crc32", "labels", "shapes"))
    if len(crcs) != n or len(labels) != n or len(shapes) != n:
        check.problem(
            f"shard metadata holds {len(crcs)} records, the manifest says {n}", shard=name
        )
        return None
    if not np.array_equal(labels, index["labels"][first : first + n]):
        check.problem("shard labels disagree with index/labels.npy", shard=name)
    if not np.array_equal(shapes, index["shapes"][first : first + n]):
        check.problem("shard shapes disagree with index/shapes.npy", shard=name)
    if records_crc32(crcs) != entry.records_crc32:
        check.problem("shard's CRC32 list disagrees with the manifest's records_crc32", shard=name)
    expected = None if check.manifest is None else check.manifest.dataset_id
    found = reader.info().get("dataset_id") if expected is not None else None
    if found is not None and found != expected:
        check.problem(
            f"shard was written for another dataset ({found}, this one is {expected})",
            shard=name,
        )
    return crcs, shapes


def _fields_crc(check: _Check, reader: ShardReader, entry: ListedShard) -> np.ndarray | None:
    """The shard's per-record fields CRC32s when the records have fields and the list
    matches the manifest's ``fields_crc32``; else None (a mismatch is reported)."""
    if check.manifest is None or not check.manifest.fields:
        return None
    fields_crc = reader.meta(fmt.FIELDS_CRC)
    if len(fields_crc) == entry.num_records and records_crc32(fields_crc) == entry.fields_crc32:
        return fields_crc
    check.problem(
        "shard's fields CRC32 list disagrees with the manifest's fields_crc32", shard=entry.file
    )
    return None


def _check_payloads(
    check: _Check, reader: ShardReader, entry: ListedShard, crcs: np.ndarray, shapes: np.ndarray
) -> None:
    """Every payload of the shard against its CRC32 (then decoded, with ``decode``); keys
    outside the shard's ids and missing records are reported."""
    name, first, n = entry.file, entry.first_id, entry.num_records
    seen = np.zeros(n, dtype=bool)
    for local, payload in reader.iter_records():
        if not 0 <= local < n:
            check.problem("unexpected record key", shard=name, key=str(local))
            continue
        seen[local] = True
        record = first + local
        key = fmt.record_key(local).hex() if check.backend == "lmdb" else str(local)
        if zlib.crc32(payload) != int(crcs[local]):
            check.problem("CRC32 mismatch (bit rot)", shard=name, record=record, key=key)
        else:
            _check_payload(check, payload, shapes[local], shard=name, record=record, key=key)
        check.report.records_checked += 1
        check.done += 1
        if check.progress is not None and check.done % 256 == 0:
            check.progress(check.done, check.total)
    for local in np.flatnonzero(~seen)[:100]:
        check.problem("record is missing", shard=name, record=first + int(local), key=str(local))


def _check_payload(check: _Check, payload: bytes, shape: np.ndarray, **where: Any) -> None:
    """A payload whose CRC32 matched: empty in a dataset without images; with ``decode``,
    an image of the listed shape."""
    if check.encoding == fmt.NO_IMAGE:
        if payload:  # records without an image store nothing
            check.problem(
                f"holds a {len(payload)}-byte payload in a dataset without images", **where
            )
    elif check.decode:
        height, width, channels = (int(v) for v in shape)
        try:
            decode_record(payload, check.encoding, (height, width, channels))
        except DatumioError as exc:
            check.problem(f"does not decode: {exc}", **where)


def _check_fields(
    check: _Check, reader: ShardReader, name: str, first: int, crcs: np.ndarray, index: Index
) -> None:
    """Every record's fields against their CRC32; with ``decode``, decoded (masks too) and
    the int and multilabel values against the global index."""
    specs = check.manifest.fields if check.manifest is not None else ()
    names = [spec.name for spec in specs]
    for local in range(len(crcs)):
        record = first + local
        try:
            encoded = reader.get_fields(local, names)
        except DatumioError as exc:
            check.problem(f"fields cannot be read: {exc}", shard=name, record=record)
            continue
        if fields_crc32(encoded) != int(crcs[local]):
            check.problem("fields CRC32 mismatch (bit rot)", shard=name, record=record)
            continue
        if not check.decode:
            continue
        for spec, data in zip(specs, encoded, strict=True):
            try:
                value = None if data is None else decode_field(spec, data)
            except FieldValueError as exc:
                check.problem(f"field does not decode: {exc}", shard=name, record=record)
                continue
            if not _index_agrees(index["fields"].get(spec.name), spec.type, record, value):
                what = f"index of field {spec.name} disagrees with the shard"
                check.problem(what, shard=name, record=record)


def _index_agrees(found: FieldIndex | None, kind: str, record: int, value: Any) -> bool:
    if found is None:
        return True
    if not isinstance(found, tuple):  # an int field
        return int(found[record]) == (fmt.INT_ABSENT if value is None else value)
    offsets, ids = found
    listed = np.asarray(ids[int(offsets[record]) : int(offsets[record + 1])])
    return np.array_equal(listed, np.zeros(0) if value is None else value)


def verify(
    path: str | os.PathLike[str],
    *,
    decode: bool = False,
    records: bool = True,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check a dataset's manifest, index and every record (CRC32; pixels with ``decode``).

    With ``records=False`` the check stops at each shard's metadata (present, the recorded
    size, readable, its record list matching the manifest) and reads no payload: the quick
    check ``datumio inspect`` runs every time.
    """
    root = os.fspath(path)
    started = time.perf_counter()
    check = _Check(root, decode and records, records, progress)
    try:
        manifest = read_manifest(root)
    except FormatError as exc:
        check.problem(str(exc))
        return check.report
    check.backend = manifest.backend
    check.encoding = manifest.encoding
    check.manifest = manifest
    check.total = manifest.num_records
    index = _check_index(check, manifest)
    if index is not None:
        listed = {os.path.basename(s.file) for s in manifest.shards}
        shard_dir = os.path.join(root, fmt.SHARDS_DIR)
        extra = sorted(set(os.listdir(shard_dir)) - listed) if os.path.isdir(shard_dir) else []
        for name in extra:
            check.problem(
                "file in shards/ is not in the manifest (left by an --append killed before its "
                "commit? rerunning that append replaces it)",
                shard=f"shards/{name}",
            )
        for entry in manifest.shards:
            _check_shard(check, entry, index)
    if progress is not None:
        progress(check.total, check.total)
    check.report.seconds = time.perf_counter() - started
    return check.report
