"""A read-only view of a dataset directory: index in memory maps, shards opened lazily."""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np

from datumio.codec import DEFAULT_BACKGROUND, decode_record
from datumio.errors import DecodeError, FormatError, RecordError
from datumio.shards import format as fmt
from datumio.shards.base import ShardReader
from datumio.shards.hdf5_backend import Hdf5ShardReader
from datumio.shards.lmdb_backend import LmdbShardReader
from datumio.shards.manifest import read_manifest


def _stem(name: str) -> str:
    return name.removesuffix(".npy")


def _open_reader(path: str, backend: str) -> ShardReader:
    if backend == "lmdb":
        return LmdbShardReader(path)
    return Hdf5ShardReader(path)


class Dataset:
    """A datumio dataset opened for reading.

    Opening reads ``manifest.json`` and memory-maps the index; it reads no record and
    no shard, so it costs the same at 100 records or 100M. Shards open on first use, in
    the process that uses them.

    Thread/fork/pickle rules: pickling keeps only the path and options, so a Dataset sent
    to a worker process (spawn, forkserver or fork) reopens its shards there. After a
    ``fork`` the child notices the new pid and opens its own handles. One Dataset is not
    meant to be shared by threads that read concurrently; give each thread its own.

    Args:
        path: the dataset directory (``out.lmdb`` / ``out.h5``).
        verify_crc: check each record's CRC32 when it is read (cheap; on by default).
        background: RGB colour under transparent pixels when decoding kept originals
            (default: the one ingest used).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        verify_crc: bool = True,
        background: tuple[int, int, int] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.verify_crc = verify_crc
        self.manifest: dict[str, Any] = read_manifest(self.path)
        if background is None:  # kept originals decode exactly as ingest checked them
            options = self.manifest.get("ingest", {}).get("options", {})
            background = tuple(options.get("background", DEFAULT_BACKGROUND))
        self.background: tuple[int, int, int] = (background[0], background[1], background[2])
        self.backend: str = self.manifest["backend"]
        self.encoding: str = self.manifest["encoding"]
        self.class_names: list[str] = list(self.manifest["class_names"])
        self.labels = self._index(fmt.LABELS)
        self.class_offsets = self._index(fmt.CLASS_OFFSETS)
        self.class_ids = self._index(fmt.CLASS_IDS)
        self.shard_offsets = self._index(fmt.SHARD_OFFSETS)
        self.shapes = self._index(fmt.SHAPES)
        self._source_offsets = self._index(fmt.SOURCE_OFFSETS)
        self._sources = self._index(fmt.SOURCES)
        self.groups: np.ndarray | None = (
            self._index(fmt.GROUPS) if _stem(fmt.GROUPS) in self._index_paths() else None
        )
        if len(self.labels) != self.manifest["num_records"]:
            raise FormatError(
                f"{self.path}: index/labels.npy has {len(self.labels)} records but the manifest "
                f"says {self.manifest['num_records']}; the dataset is damaged (run datumio verify)"
            )
        self._shard_files = [str(entry["file"]) for entry in self.manifest["shards"]]
        self._pid = -1
        self._readers: dict[int, ShardReader] = {}
        self._crcs: dict[int, np.ndarray] = {}

    def _index_paths(self) -> dict[str, str]:
        paths: dict[str, str] = self.manifest.get("index") or {}
        return paths

    def _index(self, name: str) -> np.ndarray:
        # The manifest names the index files: an append writes a new generation of them
        # beside the old one, and the manifest says which one this version uses.
        rel = self._index_paths().get(_stem(name), f"{fmt.INDEX_DIR}/{name}")
        path = os.path.join(self.path, rel)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FormatError(f"{path}: cannot load index array ({exc})") from exc
        return np.asarray(arr) if arr.size == 0 else arr

    # -- what is in it -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def counts(self) -> np.ndarray:
        """Number of records of each class."""
        return np.diff(self.class_offsets)

    @property
    def num_shards(self) -> int:
        return len(self.shard_offsets) - 1

    def class_index(self, c: int) -> np.ndarray:
        """Record ids of class ``c``, ascending."""
        if not 0 <= c < self.num_classes:
            raise IndexError(f"class {c} out of range: the dataset has {self.num_classes} classes")
        return self.class_ids[self.class_offsets[c] : self.class_offsets[c + 1]]

    def source(self, i: int) -> str:
        """The record's original path, relative to the ingest source directory."""
        i = self._check_id(i)
        start, stop = int(self._source_offsets[i]), int(self._source_offsets[i + 1])
        return bytes(self._sources[start:stop]).decode("utf-8", "surrogateescape")

    def shape(self, i: int) -> tuple[int, int, int]:
        """Stored (height, width, channels) of record ``i``."""
        i = self._check_id(i)
        h, w, c = (int(v) for v in self.shapes[i])
        return h, w, c

    def locate(self, i: int) -> tuple[int, int]:
        """(shard number, local id) of record ``i``."""
        i = self._check_id(i)
        shard = int(np.searchsorted(self.shard_offsets, i, side="right")) - 1
        return shard, i - int(self.shard_offsets[shard])

    def shard_crc32(self, shard: int) -> np.ndarray:
        """Per-record CRC32s of one shard (read from the shard's metadata, cached)."""
        crcs = self._crcs.get(shard) if self._pid == os.getpid() else None
        if crcs is None:
            crcs = self._crcs[shard] = self._reader(shard).meta("crc32")
        return crcs

    def shard_path(self, shard: int) -> str:
        """Path of shard number ``shard`` (its position in the manifest's shard list)."""
        return os.path.join(self.path, self._shard_files[shard])

    # -- reading records -----------------------------------------------------------------

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """(image HxWxC uint8, label) of record ``i``."""
        return self.image(i), int(self.labels[self._check_id(i)])

    def image(self, i: int) -> np.ndarray:
        """Decoded pixels of record ``i`` (HxWxC uint8)."""
        payload = self.read(i)
        try:
            return decode_record(payload, self.encoding, self.shape(i), background=self.background)
        except DecodeError as exc:
            shard, local = self.locate(i)
            raise RecordError(
                f"record {i} (shard {self.shard_path(shard)}, local id {local}) does not decode: "
                f"{exc}"
            ) from exc

    def read(self, i: int, *, verify_crc: bool | None = None) -> bytes:
        """The stored payload bytes of record ``i``, CRC-checked unless ``verify_crc`` is False
        (default: the dataset's ``verify_crc``)."""
        shard, local = self.locate(i)
        reader = self._reader(shard)
        payload = reader.get(local)
        check = self.verify_crc if verify_crc is None else verify_crc
        if check and zlib.crc32(payload) != int(self.shard_crc32(shard)[local]):
            raise RecordError(
                f"record {i} (shard {self.shard_path(shard)}, local id {local}) fails its "
                "CRC32 check: the shard is corrupt on disk (run datumio verify)"
            )
        return payload

    def _check_id(self, i: int) -> int:
        n = len(self.labels)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"record {i} out of range: the dataset has {n} records")
        return i

    def _reader(self, shard: int) -> ShardReader:
        if self._pid != os.getpid():
            # Handles inherited through fork belong to the parent: never touch them here.
            self._readers = {}
            self._crcs = {}
            self._pid = os.getpid()
        reader = self._readers.get(shard)
        if reader is None:
            reader = self._readers[shard] = _open_reader(self.shard_path(shard), self.backend)
        return reader

    def close(self) -> None:
        """Close the shard handles this process opened (the dataset stays usable)."""
        if self._pid == os.getpid():
            for reader in self._readers.values():
                reader.close()
        self._readers = {}
        self._crcs = {}

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "verify_crc": self.verify_crc, "background": self.background}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["path"], verify_crc=state["verify_crc"], background=state["background"]
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({self.path!r}: {len(self)} records, {self.num_classes} classes, "
            f"{self.num_shards} {self.backend} shards, encoding={self.encoding})"
        )


def open(path: str | os.PathLike[str], **options: Any) -> Dataset:
    """Open a dataset directory for reading; see :class:`Dataset` for the options."""
    return Dataset(path, **options)
