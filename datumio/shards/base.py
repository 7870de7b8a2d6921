"""What every shard backend provides: one writer and one reader behind a small interface."""

from __future__ import annotations

import contextlib
import io
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from datumio.errors import DatumioError, FileLimitError, FormatError, out_of_files
from datumio.fields.encoding import fields_crc32
from datumio.shards import format as fmt


@dataclass
class ShardBuffer:
    """Per-record metadata a writer accumulates while records stream in."""

    labels: list[int] = field(default_factory=list)
    crc32: list[int] = field(default_factory=list)
    shapes: list[tuple[int, int, int]] = field(default_factory=list)
    payload_bytes: int = 0
    #: Per-record CRC32 of the fields (:func:`datumio.fields.fields_crc32`); with fields only.
    fields_crc32: list[int] = field(default_factory=list)

    def add(self, label: int, crc: int, shape: tuple[int, int, int], nbytes: int) -> None:
        self.labels.append(label)
        self.crc32.append(crc)
        self.shapes.append(shape)
        self.payload_bytes += nbytes

    def add_fields(self, expected: int, fields: Sequence[bytes | None]) -> None:
        """Check one record's field bytes (``expected`` of them) and keep their CRC32."""
        if len(fields) != expected:
            raise ValueError(f"{len(fields)} field values for {expected} fields")
        self.fields_crc32.append(fields_crc32(fields))

    def __len__(self) -> int:
        return len(self.labels)

    def arrays(self, num_classes: int) -> dict[str, np.ndarray]:
        """The shard's metadata arrays, its own per-class index included."""
        labels = np.asarray(self.labels, dtype=fmt.LABEL_DTYPE)
        offsets, ids = class_index_of(labels, num_classes)
        return {
            "labels": labels,
            "crc32": np.asarray(self.crc32, dtype=fmt.CRC_DTYPE),
            "shapes": np.asarray(self.shapes, dtype=fmt.SHAPE_DTYPE).reshape(-1, 3),
            "class_offsets": offsets,
            "class_ids": ids,
        }

    def fields_crc_array(self) -> np.ndarray:
        return np.asarray(self.fields_crc32, dtype=fmt.CRC_DTYPE)


@dataclass(frozen=True)
class ShardSummary:
    """What a finished shard reports to the manifest."""

    file: str
    num_records: int
    payload_bytes: int
    file_bytes: int
    records_crc32: int
    #: :func:`records_crc32` of the per-record fields CRC32s; None for a shard without fields.
    fields_crc32: int | None = None


def class_index_of(labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(class_offsets, class_ids) of a labels array in O(N): ids grouped by class, ascending."""
    counts = np.bincount(labels, minlength=num_classes) if labels.size else np.zeros(num_classes)
    offsets = np.zeros(num_classes + 1, dtype=fmt.ID_DTYPE)
    np.cumsum(counts, out=offsets[1:])
    # A stable sort on a narrow unsigned key is numpy's radix sort: linear, not n log n.
    key = labels.astype(np.uint16 if num_classes < 2**16 else np.uint32, copy=False)
    ids = np.argsort(key, kind="stable").astype(fmt.ID_DTYPE, copy=False)
    return offsets, ids


def npy_bytes(arr: np.ndarray) -> bytes:
    """``arr`` serialised as a .npy file (no pickling)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_load(data: bytes | memoryview) -> np.ndarray:
    """Inverse of :func:`npy_bytes`; refuses pickled object arrays.

    Raises:
        FormatError: the bytes are not a plain .npy array (damaged, or pickled objects).
    """
    try:
        arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except Exception as exc:  # numpy's header parser raises several types on damaged bytes
        raise FormatError(describe_failure(exc)) from None
    if not isinstance(arr, np.ndarray):
        raise FormatError("not a plain .npy array")
    return arr


def describe_failure(exc: BaseException) -> str:
    """What a reading library said, without numpy's advice to load pickled data "unsafely"."""
    text = str(exc)
    if "pickle" in text.lower():  # numpy takes anything without the .npy magic for a pickle
        return (
            "not a plain .npy array of numbers (it holds Python objects, or its header is "
            "damaged); datumio loads only plain arrays"
        )
    return f"{type(exc).__name__}: {text[:300]}"


@contextlib.contextmanager
def damaged_shard(path: str, what: str, error: type[DatumioError] = FormatError) -> Iterator[None]:
    """Turn whatever a backend library raises on damaged bytes into ``error`` naming the shard.

    LMDB, HDF5 and numpy's header parser each raise their own exception types (and several of
    them) on damaged bytes; callers of a reader see only datumio's.
    """
    try:
        yield
    except DatumioError as exc:
        if isinstance(exc, error):
            raise
        raise error(f"shard {path}: {what}: {exc}") from exc
    except Exception as exc:
        if out_of_files(exc):
            raise FileLimitError(f"shard {path}: cannot open it: {describe_failure(exc)}") from None
        raise error(
            f"shard {path}: cannot read {what} ({describe_failure(exc)}); the shard is damaged: "
            "run datumio verify, then restore it from a copy or re-ingest"
        ) from None


def records_crc32(crcs: np.ndarray) -> int:
    """Checksum of a shard's records: CRC32 of its little-endian per-record CRC32 array."""
    return zlib.crc32(np.ascontiguousarray(crcs, dtype=fmt.CRC_DTYPE).tobytes())


def info_json(info: dict[str, Any]) -> bytes:
    return json.dumps(info, sort_keys=True).encode("utf-8")


#: One record's field bytes, in the writer's field order; None where the record lacks one.
FieldBytes = Sequence[bytes | None]


class ShardWriter(Protocol):
    """Appends records to one shard; ``close`` writes the shard's metadata and index.

    A writer made with field names takes each record's field bytes in that order.
    """

    def add(
        self,
        payload: bytes,
        label: int,
        crc: int,
        shape: tuple[int, int, int],
        fields: FieldBytes = (),
    ) -> None: ...

    @property
    def num_records(self) -> int: ...

    @property
    def payload_bytes(self) -> int: ...

    def close(self) -> ShardSummary: ...

    def abort(self) -> None: ...


class ShardReader(Protocol):
    """Reads records of one shard by local id. Not shared across processes: open one per process."""

    def get(self, local_id: int) -> bytes: ...

    def byte_ranges(self, local_ids: Sequence[int]) -> list[tuple[int, int]]: ...

    def iter_records(self) -> Iterator[tuple[int, bytes]]: ...

    def meta(self, name: str) -> np.ndarray: ...

    def get_fields(self, local_id: int, names: Sequence[str]) -> list[bytes | None]:
        """The bytes of fields ``names`` of a record (None where it lacks one)."""
        ...

    def info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ShardMeta(NamedTuple):
    """A shard's own per-record lists (its self-description)."""

    crc32: np.ndarray
    labels: np.ndarray
    shapes: np.ndarray
    #: Per-record CRC32 of the fields; None in a dataset without fields.
    fields_crc32: np.ndarray | None = None


def listed_meta(
    reader: ShardReader, path: str, rows: int, listed_crc32: int, fields_crc32: int | None
) -> ShardMeta:
    """The shard's own per-record lists, which must be the ``rows`` records the manifest
    lists for it (their CRC32s: ``listed_crc32``; with fields, ``fields_crc32``).

    Raises:
        FormatError: the lists have other lengths or checksums (the shard ``path`` named).
    """
    fields = reader.meta(fmt.FIELDS_CRC) if fields_crc32 is not None else None
    meta = ShardMeta(reader.meta("crc32"), reader.meta("labels"), reader.meta("shapes"), fields)
    if (
        meta.crc32.shape != (rows,)
        or meta.labels.shape != (rows,)
        or meta.shapes.shape != (rows, 3)
        or records_crc32(meta.crc32) != listed_crc32
        or (fields is not None and fields.shape != (rows,))
        or (fields is not None and records_crc32(fields) != fields_crc32)
    ):
        raise FormatError(
            f"shard {path} does not hold the {rows} records the manifest lists for it (its "
            "record list or checksum differs): it is damaged or was replaced; run datumio "
            "verify, then restore it or re-ingest"
        )
    return meta
