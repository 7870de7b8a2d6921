"""HDF5 shards: one file per shard, all payloads end to end in one chunked byte dataset.

Thread/fork/pickle rules: an h5py file must not be used across ``fork`` and h5py
serialises calls behind one global lock; readers open their own file in the process
that reads, which :class:`datumio.shards.dataset.Dataset` guarantees.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import h5py
import numpy as np

from datumio.errors import FormatError, RecordError
from datumio.shards import format as fmt
from datumio.shards.base import (
    FieldBytes,
    ShardBuffer,
    ShardSummary,
    damaged_shard,
    records_crc32,
)

_CHUNK_BYTES = 256 << 10
_FLUSH_BYTES = 32 << 20
#: Disk reserved beyond the data given to HDF5, for its metadata (plus 1/64 of the data).
_RESERVE_SLACK_BYTES = 64 << 10
_READ_SLAB_BYTES = 32 << 20
#: Object formats no newer than HDF5 1.10's where the features allow (superblock 3, the
#: new chunk indices): readers with HDF5 1.10 or newer open the shards, whatever HDF5
#: (2.x included) wrote them.
LIBVER = ("v110", "latest")


class Hdf5ShardWriter:
    """Writes one HDF5 shard, appending payload bytes in large slabs.

    With ``field_names``, each record's field bytes are kept in memory (fields are small
    beside images) and written at :meth:`close` as ``fields/NAME``.

    A full disk raises ``OSError`` (ENOSPC) from :meth:`add` or :meth:`close` before HDF5
    writes anything it cannot take back (:meth:`_reserve`); :meth:`abort` then closes the
    file cleanly.
    """

    def __init__(
        self,
        path: str,
        info: dict[str, Any],
        num_classes: int,
        field_names: Sequence[str] = (),
    ) -> None:
        self._path = path
        self._info = info
        self._num_classes = num_classes
        self._field_names = tuple(field_names)
        self._field_bytes: list[list[bytes | None]] = [[] for _ in self._field_names]
        self._file = h5py.File(path, "w", libver=LIBVER)
        self._fd = os.open(path, os.O_WRONLY)  # reserves disk space (_reserve)
        self._given = self._reserved = 0
        # Created on the first flush: a shard that fits one flush is written contiguous and
        # exact-sized; a larger one grows in chunks.
        self._payload: h5py.Dataset | None = None
        self._offsets = [0]
        self._buffer = ShardBuffer()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._written = 0

    @property
    def num_records(self) -> int:
        return len(self._buffer)

    @property
    def payload_bytes(self) -> int:
        return self._buffer.payload_bytes

    def add(
        self,
        payload: bytes,
        label: int,
        crc: int,
        shape: tuple[int, int, int],
        fields: FieldBytes = (),
    ) -> None:
        if self._field_names:
            self._buffer.add_fields(len(self._field_names), fields)
            for column, data in zip(self._field_bytes, fields, strict=True):
                column.append(data)
        self._pending.append(payload)
        self._pending_bytes += len(payload)
        self._offsets.append(self._offsets[-1] + len(payload))
        self._buffer.add(label, crc, shape, len(payload))
        if self._pending_bytes >= _FLUSH_BYTES:
            self._flush()

    def _reserve(self, more: int) -> None:
        """Allocate the disk blocks for the next ``more`` bytes given to HDF5, and room for
        its metadata, before HDF5 writes them: a full disk fails here, with ENOSPC. HDF5
        cannot recover from a failed write (the file can no longer be closed and the process
        crashes at exit). :meth:`close` trims the file to what HDF5 wrote."""
        self._given += more
        end = self._given + _RESERVE_SLACK_BYTES + self._given // 64
        if end <= self._reserved or not hasattr(os, "posix_fallocate"):
            return
        try:
            os.posix_fallocate(self._fd, 0, end)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            return  # a filesystem that cannot reserve: HDF5 meets a full disk itself
        self._reserved = end

    def _flush(self, last: bool = False) -> None:
        self._reserve(self._pending_bytes)
        if self._payload is None and last:
            slab = np.frombuffer(b"".join(self._pending), dtype=np.uint8)
            self._payload = self._file.create_dataset("payload", data=slab, dtype="u1")
            self._written = slab.size
            self._pending = []
            return
        if not self._pending:
            return
        if self._payload is None:
            self._payload = self._file.create_dataset(
                "payload", shape=(0,), maxshape=(None,), dtype="u1", chunks=(_CHUNK_BYTES,)
            )
        slab = np.frombuffer(b"".join(self._pending), dtype=np.uint8)
        self._payload.resize((self._written + slab.size,))
        self._payload[self._written :] = slab
        self._written += slab.size
        self._pending = []
        self._pending_bytes = 0

    def close(self) -> ShardSummary:
        self._flush(last=True)
        arrays = self._buffer.arrays(self._num_classes)
        fields = sum(len(b or b"") + 16 for column in self._field_bytes for b in column)
        self._reserve(8 * len(self._offsets) + sum(a.nbytes for a in arrays.values()) + fields)
        self._file.create_dataset(
            "payload_offsets", data=np.asarray(self._offsets, dtype=fmt.ID_DTYPE)
        )
        for name, arr in arrays.items():
            self._file.create_dataset(name, data=arr)
        fields_crc = self._write_fields() if self._field_names else None
        info = {**self._info, "num_records": len(self._buffer)}
        self._file.attrs["info"] = json.dumps(info, sort_keys=True)
        self._file.flush()
        end = self._file.id.get_filesize()  # where HDF5's file ends, short of the reserve
        self._file.close()
        if self._reserved:
            os.ftruncate(self._fd, end)
        os.close(self._fd)
        return ShardSummary(
            file=os.path.basename(self._path),
            num_records=len(self._buffer),
            payload_bytes=self._buffer.payload_bytes,
            file_bytes=os.path.getsize(self._path),
            records_crc32=records_crc32(arrays["crc32"]),
            fields_crc32=None if fields_crc is None else records_crc32(fields_crc),
        )

    def _write_fields(self) -> np.ndarray:
        """``fields/NAME/{payload, payload_offsets, present}`` and ``fields_crc32``."""
        group = self._file.create_group(fmt.HDF5_FIELDS_GROUP)
        for name, column in zip(self._field_names, self._field_bytes, strict=True):
            sub = group.create_group(name)
            blob = b"".join(b for b in column if b is not None)
            offsets = np.zeros(len(column) + 1, dtype=fmt.ID_DTYPE)
            np.cumsum([0 if b is None else len(b) for b in column], out=offsets[1:])
            sub.create_dataset("payload", data=np.frombuffer(blob, dtype=np.uint8), dtype="u1")
            sub.create_dataset("payload_offsets", data=offsets)
            present = np.asarray([b is not None for b in column], dtype=np.uint8)
            sub.create_dataset("present", data=present)
        crcs = self._buffer.fields_crc_array()
        self._file.create_dataset(fmt.FIELDS_CRC, data=crcs)
        return crcs

    def abort(self) -> None:
        try:
            self._file.close()
        finally:
            os.close(self._fd)


class Hdf5ShardReader:
    """Read-only access to one HDF5 shard. Open one per process; do not pickle.

    Whatever HDF5 raises on damaged bytes reaches the caller as a
    :class:`~datumio.errors.FormatError` (a record: :class:`~datumio.errors.RecordError`)
    naming the shard.
    """

    def __init__(self, path: str) -> None:
        if not os.path.isfile(path):
            raise FormatError(f"shard {path} is missing; the dataset is incomplete (run verify)")
        self._path = path
        self._field_columns: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
        with damaged_shard(path, "its HDF5 structure (not a datumio HDF5 shard?)"):
            self._file = h5py.File(path, "r")
        try:
            with damaged_shard(path, "its payload (not a datumio HDF5 shard?)"):
                self._payload = self._file["payload"]
                self._offsets = np.asarray(self._file["payload_offsets"][()])
            if (
                self._offsets.ndim != 1
                or self._offsets.dtype.kind not in "iu"
                or not len(self._offsets)
            ):
                raise FormatError(f"shard {path}: payload_offsets is not a list of offsets")
        except BaseException:
            self._file.close()
            raise

    def byte_ranges(self, local_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(file offset, length) of the bytes holding each record's payload: its slice of a
        contiguous payload, or the whole chunks it lies in (HDF5 reads whole chunks)."""
        payload = self._payload
        out: list[tuple[int, int]] = []
        contiguous = payload.chunks is None
        base = payload.id.get_offset() if contiguous else None
        chunk = payload.chunks[0] if not contiguous else 0
        for local in local_ids:
            if not 0 <= local < len(self._offsets) - 1:
                continue
            start, stop = int(self._offsets[local]), int(self._offsets[local + 1])
            if stop <= start:
                continue
            if contiguous:
                if base is not None:
                    out.append((int(base) + start, stop - start))
                continue
            for first in range(start - start % chunk, stop, chunk):
                info = payload.id.get_chunk_info_by_coord((first,))
                if info.byte_offset is not None:
                    out.append((int(info.byte_offset), int(info.size)))
        return out

    def get(self, local_id: int) -> bytes:
        if not 0 <= local_id < len(self._offsets) - 1:
            raise RecordError(f"record {local_id} is missing from shard {self._path}")
        start, stop = int(self._offsets[local_id]), int(self._offsets[local_id + 1])
        if not 0 <= start <= stop <= self._payload.shape[0]:
            raise RecordError(
                f"record {local_id} of shard {self._path} has payload offsets {start}..{stop} "
                f"outside its {self._payload.shape[0]} bytes: the shard is damaged"
            )
        with damaged_shard(self._path, f"record {local_id}", RecordError):
            return bytes(self._payload[start:stop].tobytes())

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        """(local id, payload) of every record, read in large sequential slabs."""
        offsets = self._offsets
        n = len(offsets) - 1
        start = 0
        while start < n:
            stop = start + 1
            while stop < n and offsets[stop + 1] - offsets[start] <= _READ_SLAB_BYTES:
                stop += 1
            with damaged_shard(self._path, f"records {start}..{stop - 1}"):
                slab = self._payload[int(offsets[start]) : int(offsets[stop])].tobytes()
            base = int(offsets[start])
            for i in range(start, stop):
                yield i, slab[int(offsets[i]) - base : int(offsets[i + 1]) - base]
            start = stop

    def get_fields(self, local_id: int, names: Sequence[str]) -> list[bytes | None]:
        """The bytes of fields ``names`` of a record; None where the record lacks one."""
        out: list[bytes | None] = []
        with damaged_shard(self._path, f"the fields of record {local_id}", RecordError):
            for name in names:
                payload, offsets, present = self._field_column(name)
                if not 0 <= local_id < len(present):
                    raise RecordError(f"record {local_id} is missing from shard {self._path}")
                if not present[local_id]:
                    out.append(None)
                    continue
                start, stop = int(offsets[local_id]), int(offsets[local_id + 1])
                if not 0 <= start <= stop <= payload.shape[0]:
                    raise RecordError(
                        f"field {name} of record {local_id} has offsets {start}..{stop} outside "
                        f"its {payload.shape[0]} bytes: the shard is damaged"
                    )
                out.append(bytes(payload[start:stop].tobytes()))
        return out

    def _field_column(self, name: str) -> tuple[Any, np.ndarray, np.ndarray]:
        """(payload dataset, offsets, present) of one field, the small lists cached."""
        cached = self._field_columns.get(name)
        if cached is None:
            path = f"{fmt.HDF5_FIELDS_GROUP}/{name}"
            if path not in self._file:
                raise RecordError(f"shard {self._path} has no {path!r} group")
            group = self._file[path]
            offsets = np.asarray(group["payload_offsets"][()], dtype=np.int64)
            present = np.asarray(group["present"][()])
            if offsets.shape != (len(present) + 1,):
                raise RecordError(f"shard {self._path}: {path} offsets and present disagree")
            cached = self._field_columns[name] = (group["payload"], offsets, present)
        return cached

    def meta(self, name: str) -> np.ndarray:
        with damaged_shard(self._path, f"its {name!r} list"):
            if name not in self._file:
                raise FormatError(f"shard {self._path} has no {name!r} dataset")
            return np.asarray(self._file[name][()])

    def info(self) -> dict[str, Any]:
        with damaged_shard(self._path, "its info"):
            raw = self._file.attrs.get("info")
            if raw is None:
                raise FormatError(f"shard {self._path} has no 'info' attribute")
            info = json.loads(raw)
            if not isinstance(info, dict):
                raise FormatError(f"shard {self._path}: its info is not a JSON object")
            return info

    def close(self) -> None:
        self._file.close()
