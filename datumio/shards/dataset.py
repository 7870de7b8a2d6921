"""A read-only view of a dataset directory: index in memory maps, shards opened lazily."""

from __future__ import annotations

import operator
import os
import types
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from datumio.codec import DEFAULT_BACKGROUND, decode_record
from datumio.errors import (
    DecodeError,
    FileLimitError,
    NoImageError,
    RecordError,
)
from datumio.fields.encoding import decode as decode_field
from datumio.fields.encoding import fields_crc32
from datumio.fields.spec import FieldSpec, FieldValueError
from datumio.shards import format as fmt
from datumio.shards.access import ShardAccess, ShardStore
from datumio.shards.base import ShardMeta, ShardReader, listed_meta
from datumio.shards.class_names import ClassNames
from datumio.shards.field_index import FieldIndex, load_field_index, select_field_index
from datumio.shards.handles import check_max_open_shards
from datumio.shards.identity import check_same_dataset, check_shard_identity
from datumio.shards.index import check_whole_index, load_index_array
from datumio.shards.manifest import Manifest, read_manifest
from datumio.shards.splits import open_split

__all__ = ["Dataset", "ShardStore"]


class Dataset:
    """A datumio dataset opened for reading.

    Opening reads ``manifest.json``, memory-maps the index and checks it against the
    manifest (dtypes, shapes, offsets, and every label and group in range: one pass over
    the labels); it reads no record and no shard. Shards open on first use, in the process
    that uses them, and every record read is checked against its shard (:meth:`record`).

    At most ``max_open_shards`` shards are open at once in a process (the least recently
    used is closed to open another; :mod:`datumio.shards.handles`), so any number of shards
    fits the process's file limit.

    Thread/fork/pickle rules: pickling keeps the path, the options and the manifest this
    Dataset opened, so a Dataset sent to a worker process (spawn, forkserver or fork)
    reopens its shards there and reads the very version it was opened at: after an
    ``--append`` the new records stay out of it; when the path has been replaced by another
    dataset (``--overwrite``) unpickling, or opening a shard of the new one, raises
    :class:`~datumio.errors.DatasetReplacedError`, never mixing the two. After a ``fork``
    the child notices the new pid and opens its own handles. One Dataset is not meant to
    be shared by threads that read concurrently; give each thread its own.

    **A split view** (``split="val"``) holds the records of one stored split
    (``datumio.shards.splits``) at positions ``0 .. m-1``, in id order: ``len``, ``ds[i]``,
    every method that takes a record id, ``labels``, ``class_offsets``, ``class_ids``,
    ``groups``, ``shapes`` and ``shard_offsets`` are the split's, so a sampler over the view
    balances the split exactly. ``ids`` maps its positions to the dataset's record ids and
    :meth:`whole` reads by those. A view pickles with its split: a worker reads the same one.

    Args:
        path: the dataset directory (``out.lmdb`` / ``out.h5``).
        verify_crc: check each record's CRC32 when it is read (cheap; on by default).
        background: RGB colour under transparent pixels when decoding kept originals
            (default: the one ingest used).
        store: fetches shards into ``path`` before they are opened (``datumio.remote``).
        max_open_shards: shards kept open at once in each process that reads (None: a
            quarter of the soft ``RLIMIT_NOFILE``, :func:`~datumio.shards.handles.
            default_max_open_shards`; every shard when the limit allows).
        split: the stored split to read (``"train"``, ``"val"`` ...); None: every record.

    Raises:
        FormatError: a damaged manifest, index or split file (the file named).
        OptionError: ``split`` names no stored split (the message lists them), or the
            dataset has none (``datumio split PATH --val 0.1`` makes them).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        verify_crc: bool = True,
        background: tuple[int, int, int] | None = None,
        store: ShardStore | None = None,
        max_open_shards: int | None = None,
        split: str | None = None,
    ) -> None:
        path = os.fspath(path)
        manifest = read_manifest(path)
        self._setup(path, manifest, verify_crc, background, store, max_open_shards, split)

    def _setup(
        self,
        path: str,
        manifest: Manifest,
        verify_crc: bool,
        background: tuple[int, int, int] | None,
        store: ShardStore | None,
        max_open_shards: int | None,
        split: str | None = None,
    ) -> None:
        self.path = path
        self.verify_crc = verify_crc
        #: Where missing shards come from (a remote dataset's cache); None: all are here.
        self.store = store
        #: Shards kept open at once in a process (None: the default of the file limit).
        self.max_open_shards = check_max_open_shards(max_open_shards)
        #: The dataset's ``manifest.json``, typed (``manifest.to_json()`` gives the JSON object).
        self.manifest: Manifest = manifest
        if background is None:  # kept originals decode exactly as ingest checked them
            ingest = self.manifest.ingest
            background = (ingest and ingest.background) or DEFAULT_BACKGROUND
        self.background: tuple[int, int, int] = (background[0], background[1], background[2])
        self.backend: str = self.manifest.backend
        self.encoding: str = self.manifest.encoding
        #: False when the records have no image (label and fields only, ``encoding``
        #: ``"none"``): :meth:`image` and ``ds[i]`` refuse, :meth:`record` has no "image".
        self.has_images: bool = self.manifest.has_images
        self.class_names: list[str] = list(self.manifest.class_names)
        n = self.manifest.num_records
        # The whole dataset's index, by record id (a split view's public arrays are its own).
        self._labels = self._index(fmt.LABELS, n)
        self._class_offsets = self._index(fmt.CLASS_OFFSETS, len(self.class_names) + 1)
        self._shard_offsets = self._index(fmt.SHARD_OFFSETS, len(self.manifest.shards) + 1)
        self._shapes = self._index(fmt.SHAPES, n)
        self._source_offsets = self._index(fmt.SOURCE_OFFSETS, n + 1)
        self._sources = self._index(fmt.SOURCES, self._source_offsets[-1])
        has_groups = self.manifest.groups is not None
        self._groups: np.ndarray | None = self._index(fmt.GROUPS, n) if has_groups else None
        check_whole_index(
            path, manifest, self._labels, self._class_offsets, self._shard_offsets, self._groups
        )
        self._choose(split)
        self._field_specs = self.manifest.fields
        #: The records' typed fields by name, in storage order (empty: image and label only).
        self.fields: Mapping[str, FieldSpec] = types.MappingProxyType(
            {spec.name: spec for spec in self._field_specs}
        )
        self._field_index = {
            spec.name: index
            for spec in self._field_specs
            if (index := load_field_index(self.path, self.manifest, spec)) is not None
        }
        self._shard_files = [entry.file for entry in self.manifest.shards]
        self._classes = ClassNames(self.class_names, path)  # name -> class id
        self._pid = -1
        self._shards: ShardAccess | None = None  # this process's, made on first read
        self._shard_meta: dict[int, ShardMeta] = {}

    def _choose(self, split: str | None) -> None:
        """Set the view's arrays: the whole dataset's, or split ``split``'s (its files
        memory-mapped and checked: O(classes + shards) and a min/max pass each)."""
        #: The stored split this view holds (None: the whole dataset).
        self.split: str | None = split
        self._split_shapes: np.ndarray | None = None  # gathered on first use
        if split is None:
            #: Dataset record id of each position of the view; None for the whole dataset.
            self.ids: np.ndarray | None = None
            self.labels = self._labels
            self.class_offsets = self._class_offsets
            self.class_ids = self._index(fmt.CLASS_IDS, len(self._labels))
            self.groups = self._groups
            self.shard_offsets = self._shard_offsets
            return
        view = open_split(self.path, self.manifest, split, self.store)
        self.ids, self.labels, self.groups = view.ids, view.labels, view.groups
        self.class_offsets, self.class_ids = view.class_offsets, view.class_ids
        self.shard_offsets = view.shard_offsets(self._shard_offsets)

    @property
    def shapes(self) -> np.ndarray:
        """``[N, 3]`` stored (height, width, channels) of each record (of the split, in a
        split view: gathered on first use)."""
        if self.ids is None:
            return self._shapes
        if self._split_shapes is None:
            self._split_shapes = np.asarray(self._shapes[self.ids])
        return self._split_shapes

    @property
    def split_names(self) -> tuple[str, ...]:
        """The names of the dataset's stored splits, in order (empty: none), on any view."""
        splits = self.manifest.splits
        return () if splits is None else splits.names

    def whole(self) -> Dataset:
        """The whole dataset this view is a split of (itself when it is the whole):
        ``ds.whole()[ds.ids[i]]`` is ``ds[i]``."""
        return self if self.split is None else self.with_split(None)

    def with_split(self, split: str | None) -> Dataset:
        """This dataset at split ``split`` (None: the whole dataset): the same version,
        options and store, its own shard handles.

        Raises:
            OptionError: no stored split of that name (the message lists them).
        """
        view = Dataset.__new__(Dataset)
        view.__setstate__({**self.__getstate__(), "split": split})
        return view

    def _index(self, name: str, rows: int) -> np.ndarray:
        # The manifest names the index files: an append writes a new generation of them
        # beside the old one, and the manifest says which one this version uses.
        return load_index_array(self.path, self.manifest, name, int(rows))

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

    def class_index(self, c: int | str) -> np.ndarray:
        """Record ids of class ``c``, ascending: ``c`` is a class id (an int, the label) or a
        class name (a str, always looked up as a name: class ``"3"`` is the one named "3").

        Raises:
            IndexError: a class id outside ``0 .. num_classes - 1``.
            UnknownClassError: (a ``KeyError``) a name that is not a class; the message lists
                the closest names.
        """
        c = self.class_number(c) if isinstance(c, str) else operator.index(c)
        if not 0 <= c < self.num_classes:
            raise IndexError(f"class {c} out of range: the dataset has {self.num_classes} classes")
        return self.class_ids[self.class_offsets[c] : self.class_offsets[c + 1]]

    def class_number(self, name: str) -> int:
        """The class id (label) of the class called ``name``.

        Raises:
            UnknownClassError: (a ``KeyError``) no class has that name; the message lists the
                closest names and the number of classes.
        """
        return self._classes.number(name)

    def source(self, i: int) -> str:
        """The record's original path, relative to the ingest source directory."""
        i = self._check_id(i)
        start, stop = int(self._source_offsets[i]), int(self._source_offsets[i + 1])
        return bytes(self._sources[start:stop]).decode("utf-8", "surrogateescape")

    def shape(self, i: int) -> tuple[int, int, int]:
        """Stored (height, width, channels) of record ``i``."""
        i = self._check_id(i)
        h, w, c = (int(v) for v in self._shapes[i])
        return h, w, c

    def locate(self, i: int) -> tuple[int, int]:
        """(shard number, local id) of record ``i``."""
        return self._shard_of(self._check_id(i))

    def _shard_of(self, i: int) -> tuple[int, int]:
        """(shard number, local id) of dataset record id ``i``."""
        shard = int(np.searchsorted(self._shard_offsets, i, side="right")) - 1
        return shard, i - int(self._shard_offsets[shard])

    def shard_crc32(self, shard: int) -> np.ndarray:
        """Per-record CRC32s of one shard (read from the shard's metadata, cached)."""
        return self._meta(shard).crc32

    def _meta(self, shard: int) -> ShardMeta:
        """The shard's own per-record lists, checked against the manifest once per process."""
        meta = self._shard_meta.get(shard) if self._pid == os.getpid() else None
        if meta is None:
            rows = int(self._shard_offsets[shard + 1] - self._shard_offsets[shard])
            entry = self.manifest.shards[shard]
            fields_crc = entry.fields_crc32 if self._field_specs else None
            path = self.shard_path(shard)
            meta = listed_meta(self._reader(shard), path, rows, entry.records_crc32, fields_crc)
            self._shard_meta[shard] = meta
        return meta

    def shard_path(self, shard: int) -> str:
        """Path of shard number ``shard`` (its position in the manifest's shard list)."""
        return os.path.join(self.path, self._shard_files[shard])

    # -- reading records -----------------------------------------------------------------

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """(image HxWxC uint8, label) of record ``i``, checked as :meth:`stored` checks.

        Raises:
            IndexError: ``i`` outside the dataset (negative ids count from the end).
            TypeError: ``i`` is not an integer (a class name: use :meth:`class_index`).
        """
        if isinstance(i, str | bytes):
            raise TypeError(
                f"ds[{i!r}]: a Dataset is indexed by record id (an int); for the records of a "
                f"class use ds.class_index({i!r}), which gives their ids"
            )
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(
                f"ds[{i!r}]: give one record id, an int (not a {type(i).__name__}); "
                "ds.class_index(c) gives the ids of a class"
            ) from None
        self._refuse_image(f"ds[{i}]")
        g = self._check_id(i)
        payload, label, shape = self._stored(g)
        return self._decode(g, payload, shape), label

    def image(self, i: int) -> np.ndarray:
        """Decoded pixels of record ``i`` (HxWxC uint8).

        Raises:
            NoImageError: (a ``TypeError``) the dataset's records have no image.
        """
        self._refuse_image(f"ds.image({i})")
        g = self._check_id(i)
        payload, _, shape = self._stored(g)
        return self._decode(g, payload, shape)

    def _refuse_image(self, call: str) -> None:
        if not self.has_images:
            raise NoImageError(
                f"{call}: {self.path} has no images (its records are a label and fields, "
                "from a labels file without a path column); read a record with "
                "ds.record(i) or one field with ds.field(i, name)"
            )

    def record(self, i: int) -> dict[str, Any]:
        """Everything record ``i`` holds: ``{"image": HxWxC uint8, "label": int, "group": int
        (with groups), FIELD: value ...}``; a field the record lacks is None. Each part is
        checked as :meth:`stored` and :meth:`field` check it. A dataset without images
        (:attr:`has_images` False) gives no ``"image"``.
        """
        g = self._check_id(i)
        payload, label, shape = self._stored(g)
        out: dict[str, Any] = {"label": label}
        if self.has_images:
            out = {"image": self._decode(g, payload, shape), **out}
        if self._groups is not None:
            out["group"] = int(self._groups[g])
        if self._field_specs:
            encoded = self._field_bytes(g)
            for spec, data in zip(self._field_specs, encoded, strict=True):
                out[spec.name] = None if data is None else self._decode_field(g, spec, data)
        return out

    def field(self, i: int, name: str) -> Any:
        """The value of field ``name`` of record ``i`` (int, float, str, bytes, a numpy array
        or :class:`datumio.fields.Boxes`), None when the record lacks it. The record's
        fields are checked against their CRC32 first (unless ``verify_crc`` is off).

        Raises:
            KeyError: the dataset has no field ``name`` (the message lists them).
            RecordError: the fields fail their CRC32 or do not decode.
        """
        spec = self.fields.get(name)
        if spec is None:
            raise KeyError(
                f"no field {name!r} in {self.path}; its fields: "
                + (", ".join(self.fields) or "none (image and label only)")
            )
        g = self._check_id(i)
        data = self._field_bytes(g)[self._field_specs.index(spec)]
        return None if data is None else self._decode_field(g, spec, data)

    def field_index(self, name: str) -> FieldIndex:
        """The global index of an int field (``int64 [N]``, ``format.INT_ABSENT`` for a
        record without it) or a multilabel one (``(offsets, ids)``: record i's ids are
        ``ids[offsets[i]:offsets[i+1]]``), memory-mapped; for sampling. A split view gives
        its records' values (gathered on each call: O(records of the split)).

        Raises:
            KeyError: ``name`` is not an int or multilabel field.
        """
        index = self._field_index.get(name)
        if index is None:
            raise KeyError(f"{name!r} is not an int or multilabel field of {self.path}")
        return index if self.ids is None else select_field_index(index, self.ids)

    def _field_bytes(self, i: int) -> list[bytes | None]:
        """The stored bytes of the fields of dataset record id ``i``, CRC-checked."""
        shard, local = self._shard_of(i)
        names = [spec.name for spec in self._field_specs]
        encoded = self._reader(shard).get_fields(local, names)
        if self.verify_crc:
            listed = self._meta(shard).fields_crc32
            if listed is None or fields_crc32(encoded) != int(listed[local]):
                raise RecordError(
                    f"{self._where(i)}: its fields fail their CRC32 check: the shard is corrupt "
                    "on disk (run datumio verify)"
                )
        return encoded

    def _decode_field(self, i: int, spec: FieldSpec, data: bytes) -> Any:
        try:
            return decode_field(spec, data)
        except FieldValueError as exc:
            raise RecordError(f"{self._where(i)}: {exc}") from exc

    def _decode(self, i: int, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        try:
            return decode_record(payload, self.encoding, shape, background=self.background)
        except DecodeError as exc:
            raise RecordError(f"{self._where(i)} does not decode: {exc}") from exc
        except FileLimitError as exc:
            raise self._access().limit_error(exc, f"{self._where(i)}: ") from None

    def stored(self, i: int) -> tuple[bytes, int, tuple[int, int, int]]:
        """(payload, label, stored shape) of record ``i``, each confirmed by its shard.

        The payload must match its CRC32 (unless ``verify_crc`` is off), and the label and
        shape the index gives must be the ones the shard itself lists for the record, so a
        damaged index or shard never passes a wrong label or pixel on silently.

        Raises:
            RecordError: the record fails one of those checks (names record, shard, local id).
            FormatError: its shard is missing or cannot be opened.
        """
        return self._stored(self._check_id(i))

    def _stored(self, i: int) -> tuple[bytes, int, tuple[int, int, int]]:
        """:meth:`stored` of dataset record id ``i``."""
        shard, local = self._shard_of(i)
        meta = self._meta(shard)
        payload = self._payload(i, shard, local, self.verify_crc, meta)
        label = int(self._labels[i])
        h, w, c = self._shapes[i].tolist()
        shape = (h, w, c)
        listed_label = int(meta.labels[local])
        listed_shape = tuple(meta.shapes[local].tolist())
        if listed_label != label or listed_shape != shape:
            raise RecordError(
                f"{self._where(i)}: the index gives label {label} and shape {shape}, the shard "
                f"lists label {listed_label} and shape {listed_shape}; the dataset is damaged "
                "(run datumio verify)"
            )
        return payload, label, shape

    def read(self, i: int, *, verify_crc: bool | None = None) -> bytes:
        """The stored payload bytes of record ``i``, CRC-checked unless ``verify_crc`` is False
        (default: the dataset's ``verify_crc``)."""
        i = self._check_id(i)
        shard, local = self._shard_of(i)
        return self._payload(i, shard, local, self.verify_crc if verify_crc is None else verify_crc)

    def _payload(
        self, i: int, shard: int, local: int, check_crc: bool, meta: ShardMeta | None = None
    ) -> bytes:
        payload = self._reader(shard).get(local)
        if check_crc and zlib.crc32(payload) != int((meta or self._meta(shard)).crc32[local]):
            raise RecordError(
                f"{self._where(i)} fails its CRC32 check: the shard is corrupt on disk "
                "(run datumio verify)"
            )
        return payload

    def _where(self, i: int) -> str:
        """Names dataset record id ``i``: its shard, local id and, in a split view, position."""
        shard, local = self._shard_of(i)
        view = ""
        if self.ids is not None:
            view = f"{self.split} record {int(np.searchsorted(self.ids, i))}, "
        return f"record {i} ({view}shard {self.shard_path(shard)}, local id {local})"

    def _check_id(self, i: int) -> int:
        """The dataset record id of record ``i`` of this view (negative: from the end)."""
        n = len(self.labels)
        if isinstance(i, str | bytes):
            raise TypeError(f"record id {i!r}: give an int (class names go to class_index)")
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            held = "the dataset has" if self.ids is None else f"split {self.split!r} has"
            raise IndexError(f"record {i} out of range: {held} {n} records")
        return i if self.ids is None else int(self.ids[i])

    def byte_ranges(self, ids: Iterable[int]) -> dict[int, list[tuple[int, int]]]:
        """shard -> the (file offset, length) ranges holding the payloads of ``ids``.

        Raises:
            IndexError: an id outside the dataset.
        """
        return {
            shard: self._reader(shard).byte_ranges(sorted(locals_))
            for shard, locals_ in sorted(self._by_shard(ids).items())
        }

    def _by_shard(self, ids: Iterable[int]) -> dict[int, list[int]]:
        """shard -> the local ids of records ``ids`` (of this view) that it holds."""
        by_shard: dict[int, list[int]] = {}
        for i in ids:
            shard, local = self._shard_of(self._check_id(i))
            by_shard.setdefault(shard, []).append(local)
        return by_shard

    def advise(self, ids: Iterable[int]) -> int:
        """Ask the kernel to read the payloads of ``ids`` ahead (``POSIX_FADV_WILLNEED``):
        their reads queue up at once and come in while other records decode. Records in
        memory cost nothing. Best effort: a shard that cannot say where its records lie gets
        no hint (its read reports why), and no open shard is closed to make room for a
        hint. Returns the number of byte ranges hinted."""
        return self._access().advise(self._by_shard(ids))

    def _access(self) -> ShardAccess:
        """This process's shard access (handles inherited through fork are dropped)."""
        if self._shards is None or self._pid != os.getpid():
            if self._shards is not None:
                self._shards.forget()  # the parent's: never touch them here
            self._shard_meta = {}
            self._shards = ShardAccess(
                self.shard_path,
                self.backend,
                self.store,
                self.max_open_shards,
                lambda shard, reader: check_shard_identity(self, shard, reader),
            )
            self._pid = os.getpid()
        return self._shards

    def _reader(self, shard: int) -> ShardReader:
        shards = self._shards
        if shards is None or self._pid != os.getpid():
            shards = self._access()
        return shards.reader(shard)

    def retain(self, ids: Iterable[int]) -> None:
        """Close the shards this process has open that hold none of ``ids`` (the records it
        reads next): a size-limited cache may then evict them."""
        keep = {self._shard_of(self._check_id(i))[0] for i in ids}
        if self._shards is None or self._pid != os.getpid():
            return
        for shard in self._shards.retain(keep):
            self._shard_meta.pop(shard, None)

    def close(self) -> None:
        """Close the shard handles this process opened (the dataset stays usable)."""
        shards, self._shards = self._shards, None
        self._shard_meta = {}
        if shards is not None and self._pid == os.getpid():
            shards.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verify_crc": self.verify_crc,
            "background": self.background,
            "store": self.store,
            "max_open_shards": self.max_open_shards,
            # The version this reader opened: the receiver reads exactly it (JSON values
            # through the process pipe; nothing from a file is ever unpickled).
            "manifest": self.manifest.to_json(),
            "split": self.split,  # a worker reads the split this view holds
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        path = state["path"]
        opened = Manifest.from_json(state["manifest"], os.path.join(path, fmt.MANIFEST))
        check_same_dataset(path, opened, read_manifest(path))
        self._setup(
            path,
            opened,
            state["verify_crc"],
            state["background"],
            state.get("store"),
            state.get("max_open_shards"),
            state.get("split"),
        )

    def __repr__(self) -> str:
        split = "" if self.split is None else f", split {self.split!r}"
        return (
            f"Dataset({self.path!r}{split}: {len(self)} records, {self.num_classes} classes, "
            f"{self.num_shards} {self.backend} shards, encoding={self.encoding})"
        )
