"""One record's metadata, for ``datumio inspect --record N``: where it lives, what it is,
whether its CRC32 matches, and its fields."""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from datumio.errors import DatumioError
from datumio.inspect._json import dataclass_json, omitted_when, renamed
from datumio.inspect.fields import field_json
from datumio.shards.dataset import Dataset


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordInfo:
    """What :func:`describe_record` tells of one record.

    Attributes:
        id, label: the record's global id and class id.
        class_name: its class (JSON ``class``).
        source: its path relative to the ingest source directory.
        shard, shard_file, local_id: the shard that holds it (number, file relative to the
            dataset) and its id there.
        shape: stored ``(height, width, channels)``.
        payload_bytes, payload_format: the stored payload's size and image format (``raw``,
            ``unknown`` when Pillow does not recognise it).
        crc32: the stored CRC32 (8 hex digits); ``crc32_ok`` whether the payload matches it.
        group: the record's group name (its id when unnamed); None without groups.
        fields: field name -> value as JSON (:func:`datumio.inspect.fields.field_json`, None
            where the record lacks it); None without fields or when they cannot be read.
        fields_error: why the fields cannot be read (a CRC32 mismatch, a bad value).
    """

    id: int
    label: int
    class_name: str = field(metadata=renamed("class"))
    source: str
    shard: int
    shard_file: str
    local_id: int
    shape: tuple[int, int, int]
    payload_bytes: int
    payload_format: str
    crc32: str
    crc32_ok: bool
    group: str | int | None = field(default=None, metadata=omitted_when(None))
    fields: Mapping[str, object] | None = field(default=None, metadata=omitted_when(None))
    fields_error: str | None = field(default=None, metadata=omitted_when(None))

    def to_json(self) -> dict[str, Any]:
        """The object of ``datumio inspect --record N --json``."""
        out = dataclass_json(self)
        if self.fields_error is not None:  # fields: null, then why
            del out["fields_error"]
            out.update(fields=None, fields_error=self.fields_error)
        return out


def describe_record(ds: Dataset, i: int) -> RecordInfo:
    """One record's metadata: where it lives, what it is, and whether its CRC32 matches; its
    fields as JSON (:func:`datumio.inspect.fields.field_json`) in a dataset with fields.

    Reads the record's payload once (without raising on a CRC mismatch: ``crc32_ok`` says);
    fields that fail their CRC32 or do not decode give ``fields`` None and ``fields_error``.

    Raises:
        IndexError: ``i`` is not a record id of ``ds``.
    """
    if not -len(ds) <= i < len(ds):
        raise IndexError(
            f"record {i} out of range: the dataset has {len(ds)} records (0-{len(ds) - 1})"
        )
    i = i % len(ds)
    shard, local = ds.locate(i)
    payload = ds.read(i, verify_crc=False)
    stored = int(ds.shard_crc32(shard)[local])
    label = int(ds.labels[i])
    fields, error = _fields(ds, i)
    return RecordInfo(
        id=i,
        label=label,
        class_name=ds.class_names[label],
        source=ds.source(i),
        shard=shard,
        shard_file=os.path.relpath(ds.shard_path(shard), ds.path),
        local_id=local,
        shape=ds.shape(i),
        payload_bytes=len(payload),
        payload_format=_payload_format(payload, ds.encoding),
        crc32=f"{stored:08x}",
        crc32_ok=zlib.crc32(payload) == stored,
        group=_group(ds, i),
        fields=fields,
        fields_error=error,
    )


def _group(ds: Dataset, i: int) -> str | int | None:
    """Record ``i``'s group name (its id when the manifest names none); None: no groups."""
    if ds.groups is None:
        return None
    group = int(ds.groups[i])
    groups = ds.manifest.groups
    names = () if groups is None else groups.names
    return names[group] if 0 <= group < len(names) else group


def _fields(ds: Dataset, i: int) -> tuple[dict[str, object] | None, str | None]:
    """Record ``i``'s fields as JSON, or None and why they cannot be read."""
    if not ds.fields:
        return None, None
    try:
        return {name: field_json(spec, ds.field(i, name)) for name, spec in ds.fields.items()}, None
    except DatumioError as exc:  # a CRC mismatch or a value that does not decode
        return None, str(exc)


def _payload_format(payload: bytes, encoding: str) -> str:
    if encoding == "raw":
        return "raw"
    try:
        with Image.open(io.BytesIO(payload)) as img:
            return str(img.format or "unknown")
    except (OSError, ValueError):
        return "unknown"
