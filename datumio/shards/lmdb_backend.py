"""LMDB shards: one environment per shard file (``subdir=False``), two named databases.

Thread/fork/pickle rules (from py-lmdb): an environment must not be used across
``fork``; readers open their own environment in the process that reads, which
:class:`datumio.shards.dataset.Dataset` guarantees. The dataset is immutable once
written, so readers open with ``lock=False`` and need no lock file.

The writer takes no lock either (``lock=False``): one thread writes a shard under a
private name, and only that thread reads it (between writes) until it is finished. With a
lock, LMDB would create ``PATH-lock``, extend it with ``ftruncate`` (a hole) and write its
header through a shared memory map; on a full disk (a tmpfs above all) that page cannot be
backed and the kernel kills the process with SIGBUS instead of returning an error, leaving
the lock file behind. Without it every write LMDB makes is a ``pwrite`` (no ``writemap``),
so a full disk is an error (``lmdb.DiskError``, or "Input/output error" after a short
write) that :mod:`datumio.ingest.disk` recognises.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import lmdb
import numpy as np

from datumio.errors import FileLimitError, FormatError, RecordError, out_of_files
from datumio.shards import format as fmt
from datumio.shards.advice import map_base
from datumio.shards.base import (
    FieldBytes,
    ShardBuffer,
    ShardSummary,
    damaged_shard,
    info_json,
    npy_bytes,
    npy_load,
    records_crc32,
)

_INITIAL_MAP_BYTES = 64 << 20
_FLUSH_BYTES = 32 << 20
_FLUSH_RECORDS = 2048


class LmdbShardWriter:
    """Writes one LMDB shard; the map grows by doubling whenever it fills.

    With ``field_names``, each record's field bytes go to the ``fields`` database.
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
        self._map_size = _INITIAL_MAP_BYTES
        self._env = lmdb.open(
            path,
            subdir=False,
            map_size=self._map_size,
            max_dbs=3,
            lock=False,  # no lock file: its page is written through a map (see above)
            sync=False,
            metasync=False,
            meminit=False,
            readahead=False,
        )
        try:  # each open_db commits: a full disk may fail it
            self._records = self._env.open_db(fmt.LMDB_RECORDS_DB)
            self._meta = self._env.open_db(fmt.LMDB_META_DB)
            self._fields = self._env.open_db(fmt.LMDB_FIELDS_DB) if self._field_names else None
        except BaseException:
            self._env.close()  # no writer to abort: release the file here
            raise
        self._buffer = ShardBuffer()
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_fields: list[tuple[bytes, bytes]] = []
        self._pending_bytes = 0

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
        local = len(self._buffer)
        self._pending.append((fmt.record_key(local), payload))
        self._pending_bytes += len(payload)
        if self._field_names:
            self._buffer.add_fields(len(self._field_names), fields)
            for name, data in zip(self._field_names, fields, strict=True):
                if data is not None:
                    self._pending_fields.append((fmt.field_key(name, local), data))
                    self._pending_bytes += len(data)
        self._buffer.add(label, crc, shape, len(payload))
        if self._pending_bytes >= _FLUSH_BYTES or len(self._pending) >= _FLUSH_RECORDS:
            self._flush()

    def _write(self, items: list[tuple[bytes, bytes]], db: Any) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    cursor = txn.cursor(db)
                    cursor.putmulti(items, append=db is self._records)
                return
            except lmdb.MapFullError:
                self._map_size *= 2
                self._env.set_mapsize(self._map_size)

    def _flush(self) -> None:
        if self._pending:
            self._write(self._pending, self._records)
        if self._pending_fields and self._fields is not None:
            self._write(sorted(self._pending_fields), self._fields)
        self._pending = []
        self._pending_fields = []
        self._pending_bytes = 0

    def close(self) -> ShardSummary:
        self._flush()
        arrays = self._buffer.arrays(self._num_classes)
        info = {**self._info, "num_records": len(self._buffer)}
        meta = [(b"info", info_json(info))]
        meta += [(name.encode(), npy_bytes(arrays[name])) for name in fmt.LMDB_META_KEYS]
        fields_crc = self._buffer.fields_crc_array() if self._field_names else None
        if fields_crc is not None:
            meta.append((fmt.FIELDS_CRC.encode(), npy_bytes(fields_crc)))
        places = self._places(len(self._buffer))
        if places is not None:
            meta.append((fmt.LMDB_PLACES_KEY.encode(), npy_bytes(places)))
        self._write(sorted(meta), self._meta)
        self._env.sync(True)
        self._env.close()
        return ShardSummary(
            file=os.path.basename(self._path),
            num_records=len(self._buffer),
            payload_bytes=self._buffer.payload_bytes,
            file_bytes=os.path.getsize(self._path),
            records_crc32=records_crc32(arrays["crc32"]),
            fields_crc32=None if fields_crc is None else records_crc32(fields_crc),
        )

    def _places(self, n: int) -> np.ndarray | None:
        """(n, 2) file offset and length of each record's value, for read-ahead hints that
        need not look a record up (a lookup reads the value's pages). Found through the map
        while the pages are fresh; None where the map's base is unknown (not Linux)."""
        base = map_base(self._path)
        if base is None or n == 0:
            return None
        places = np.zeros((n, 2), dtype=np.int64)
        with self._env.begin(db=self._records, buffers=True) as txn:
            for k in range(n):
                value = txn.get(fmt.record_key(k))
                if value is None or not len(value):
                    return None
                places[k] = (np.frombuffer(value, np.uint8).ctypes.data - base, len(value))
        return places

    def abort(self) -> None:
        self._env.close()


# py-lmdb refuses to open one environment twice in a process, but two Datasets on the
# same path (a loader and a preview, say) are normal: share environments, ref-counted.
_SHARED_ENVS: dict[str, tuple[Any, int]] = {}
_SHARED_PID = os.getpid()
_SHARED_LOCK = threading.Lock()


def _acquire_env(path: str) -> Any:
    global _SHARED_PID
    key = os.path.realpath(path)
    with _SHARED_LOCK:
        if os.getpid() != _SHARED_PID:  # inherited through fork: the parent's, not ours
            # py-lmdb refuses to open a file an inherited environment holds until it is
            # closed in this process; read-only and lock-free, closing it here (unmap, close
            # this process's descriptor) leaves the parent's untouched.
            for env, _ in _SHARED_ENVS.values():
                env.close()
            _SHARED_ENVS.clear()
            _SHARED_PID = os.getpid()
        env, count = _SHARED_ENVS.get(key, (None, 0))
        if env is None:
            env = lmdb.open(
                path,
                subdir=False,
                readonly=True,
                lock=False,
                readahead=False,
                max_dbs=3,
                max_readers=512,
            )
        _SHARED_ENVS[key] = (env, count + 1)
        return env


def _release_env(path: str) -> None:
    key = os.path.realpath(path)
    with _SHARED_LOCK:
        env, count = _SHARED_ENVS.get(key, (None, 0))
        if env is None:
            return
        if count <= 1:
            del _SHARED_ENVS[key]
            env.close()
        else:
            _SHARED_ENVS[key] = (env, count - 1)


def _load_places(reader: LmdbShardReader, file_bytes: int) -> np.ndarray:
    """The shard's ``places`` list, or an empty one when it is missing or does not fit."""
    try:
        places = reader.meta(fmt.LMDB_PLACES_KEY)
    except (FormatError, RecordError, ValueError):
        return np.zeros((0, 2), dtype=np.int64)
    fits = (
        places.ndim == 2
        and places.shape[1] == 2
        and places.dtype.kind in "iu"
        and (not len(places) or (places.min() >= 0 and (places.sum(axis=1) <= file_bytes).all()))
    )
    return places.astype(np.int64) if fits else np.zeros((0, 2), dtype=np.int64)


class LmdbShardReader:
    """Read-only access to one LMDB shard. Open one per process; do not pickle.

    Whatever LMDB or numpy raises on damaged bytes reaches the caller as a
    :class:`~datumio.errors.FormatError` (a record: :class:`~datumio.errors.RecordError`)
    naming the shard.
    """

    def __init__(self, path: str) -> None:
        if not os.path.isfile(path):
            raise FormatError(f"shard {path} is missing; the dataset is incomplete (run verify)")
        try:
            self._env = _acquire_env(path)
        except lmdb.Error as exc:
            if out_of_files(exc):
                raise FileLimitError(f"shard {path}: cannot open it: {exc}") from None
            raise FormatError(f"shard {path} is not a readable LMDB environment: {exc}") from exc
        self._path = path
        self._place_table: np.ndarray | None = None  # read-ahead: (n, 2) offset, length
        self._fields: Any = None  # the fields database, opened on first use
        try:
            with damaged_shard(path, "its LMDB header"):
                # LMDB maps the file: reading a page past a truncated end would be a SIGBUS,
                # not an exception. The environment knows its last page: check the size first.
                needed = (self._env.info()["last_pgno"] + 1) * self._env.stat()["psize"]
            actual = os.path.getsize(path)
            if actual < needed:
                raise FormatError(
                    f"shard {path} is truncated: {actual} bytes on disk, LMDB needs {needed}; "
                    "restore it from a copy or re-ingest"
                )
            with damaged_shard(path, "its databases (not a datumio LMDB shard?)"):
                self._records = self._env.open_db(fmt.LMDB_RECORDS_DB, create=False)
                self._meta = self._env.open_db(fmt.LMDB_META_DB, create=False)
        except BaseException:
            _release_env(path)
            raise
        self._closed = False

    def get(self, local_id: int) -> bytes:
        with damaged_shard(self._path, f"record {local_id}", RecordError):
            with self._env.begin(db=self._records) as txn:
                value = txn.get(fmt.record_key(local_id))
            if value is None:
                raise RecordError(f"record {local_id} is missing from shard {self._path}")
            return bytes(value)

    def byte_ranges(self, local_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(file offset, length) of each record's value, for read-ahead hints.

        From the shard's ``places`` list, written at ingest (looking a record up would read
        its pages, the very read a hint is meant to start early). Empty for a shard without
        it (written by an older datumio, or not on Linux) or whose list does not fit the file.
        """
        places = self._places()
        if places is None:
            return []
        n = len(places)
        return [
            (int(places[k, 0]), int(places[k, 1]))
            for k in (int(v) for v in local_ids)
            if 0 <= k < n
        ]

    def index_ranges(self) -> list[tuple[int, int]]:
        """(file offset, length) of the whole pages between the records' values: LMDB's meta
        and tree pages, which every lookup reads first. Hinted once per shard, they keep a
        cold lookup from waiting on the disk before the record's own (hinted) bytes; about
        0.1% of a shard (the partial pages a value shares are left to its own hint)."""
        places = self._places()
        if places is None:
            return []
        page = int(self._env.stat()["psize"])
        order = np.argsort(places[:, 0])
        starts, ends = places[order, 0], places[order, 0] + places[order, 1]
        lo = -(-np.concatenate([[0], ends]) // page) * page  # whole pages between values
        hi = np.concatenate([starts, [os.path.getsize(self._path)]]) // page * page
        return [(int(a), int(b - a)) for a, b in zip(lo, hi, strict=True) if b > a]

    def _places(self) -> np.ndarray | None:
        if self._place_table is None:
            self._place_table = _load_places(self, os.path.getsize(self._path))
        return self._place_table if len(self._place_table) else None

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        """(local id, payload) of every record the database holds, found by key as
        :meth:`get` finds them (a cursor can walk leaves a damaged tree no longer reaches by
        key); a key that is not found is skipped, so the caller sees it missing."""
        with damaged_shard(self._path, "its records"), self._env.begin(db=self._records) as txn:
            for local in range(txn.stat(self._records)["entries"]):
                value = txn.get(fmt.record_key(local))
                if value is not None:
                    yield local, bytes(value)

    def get_fields(self, local_id: int, names: Sequence[str]) -> list[bytes | None]:
        """The bytes of fields ``names`` of a record; None where the record lacks one."""
        with damaged_shard(self._path, f"the fields of record {local_id}", RecordError):
            if self._fields is None:
                try:
                    self._fields = self._env.open_db(fmt.LMDB_FIELDS_DB, create=False)
                except lmdb.NotFoundError:
                    raise RecordError(f"shard {self._path} has no fields database") from None
            with self._env.begin(db=self._fields) as txn:
                values = [txn.get(fmt.field_key(name, local_id)) for name in names]
            return [None if v is None else bytes(v) for v in values]

    def meta(self, name: str) -> np.ndarray:
        with damaged_shard(self._path, f"its {name!r} list"):
            with self._env.begin(db=self._meta) as txn:
                value = txn.get(name.encode())
            if value is None:
                raise FormatError(f"shard {self._path} has no {name!r} entry in its meta database")
            return npy_load(value)

    def info(self) -> dict[str, Any]:
        with damaged_shard(self._path, "its info"):
            with self._env.begin(db=self._meta) as txn:
                value = txn.get(b"info")
            if value is None:
                raise FormatError(f"shard {self._path} has no 'info' entry in its meta database")
            info = json.loads(bytes(value))
            if not isinstance(info, dict):
                raise FormatError(f"shard {self._path}: its info is not a JSON object")
            return info

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release_env(self._path)
