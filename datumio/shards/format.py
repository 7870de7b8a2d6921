"""The datumio dataset layout, version and constants, in one place.

A dataset is a directory::

    out.lmdb/                       (or out.h5/)
      manifest.json                 format name + version, classes, counts, shards, stats, options
      rejects.jsonl                 one JSON object per input file that ingest skipped
      index/                        the global index, .npy files (allow_pickle=False, mmap-able)
        labels.npy                  <i4 [N]       label of record id i
        class_offsets.npy           <i8 [C+1]     class c owns class_ids[off[c]:off[c+1]]
        class_ids.npy               <i8 [N]       ids grouped by class, ascending in a class
        shard_offsets.npy           <i8 [S+1]     shard s holds ids [off[s], off[s+1])
        shapes.npy                  <u4 [N, 3]    stored (height, width, channels)
        source_offsets.npy          <i8 [N+1]     record i's source path is
        sources.npy                 u1  [B]         sources[so[i]:so[i+1]].tobytes().decode("utf-8")
        groups.npy                  <i4 [N]       optional external group of each record
        field_NAME.npy              <i8 [N]       an int field's value (INT_ABSENT: none)
        field_NAME_offsets.npy      <i8 [N+1]     a multilabel field: record i's ids are
        field_NAME_values.npy       <i4 [M]         values[off[i]:off[i+1]]
      shards/
        shard-00000.mdb             one LMDB environment per shard (subdir=False), or
        shard-00000.h5              one HDF5 file per shard

Every shard is self-describing: its records, their labels, CRC32s and shapes, and its own
per-class index of local ids. Record ids are global and dense: shard s holds ids
``shard_offsets[s] .. shard_offsets[s+1]-1`` as local ids ``0 .. n-1``.

LMDB shard: database ``records`` maps an 8-byte big-endian local id to the payload bytes;
database ``meta`` maps ``info`` to UTF-8 JSON and ``labels``, ``crc32``, ``shapes``,
``class_offsets``, ``class_ids`` to ``.npy`` file bytes (``np.load(io.BytesIO(v))``).
With fields (format version 2): database ``fields`` maps ``name + b"\\0" + 8-byte
big-endian local id`` to the field's bytes (no key: the record lacks it) and ``meta``
holds ``fields_crc32`` (<u4 [n]).

HDF5 shard: datasets ``payload`` (u1, all records end to end), ``payload_offsets``
(<i8 [n+1]), ``labels``, ``crc32``, ``shapes``, ``class_offsets``, ``class_ids``; the
``info`` JSON as a root attribute. With fields: group ``fields/NAME`` holding ``payload``,
``payload_offsets`` and ``present`` (u1 [n]) per field, and ``fields_crc32`` at the root.

Payload: the original file bytes (encoding ``keep``), JPEG/PNG/WebP bytes, or raw row-major
uint8 pixels of the stored shape (``raw``); empty in a dataset without images (``none``).
``crc32`` is ``zlib.crc32(payload)``.
Field bytes: ``datumio.fields.encoding``; ``fields_crc32`` is its ``fields_crc32``.
Nothing is pickled anywhere.
"""

from __future__ import annotations

import struct

FORMAT_NAME = "datumio"
#: Bump on any change a reader of the previous version would misread. 2: record fields.
FORMAT_VERSION = 2

MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
INDEX_DIR = "index"
SHARDS_DIR = "shards"

LABELS = "labels.npy"
CLASS_OFFSETS = "class_offsets.npy"
CLASS_IDS = "class_ids.npy"
SHARD_OFFSETS = "shard_offsets.npy"
SHAPES = "shapes.npy"
SOURCE_OFFSETS = "source_offsets.npy"
SOURCES = "sources.npy"
GROUPS = "groups.npy"
#: An int field's index value for a record that lacks the field.
INT_ABSENT = -(2**63)

LABEL_DTYPE = "<i4"
ID_DTYPE = "<i8"
SHAPE_DTYPE = "<u4"
CRC_DTYPE = "<u4"

#: The manifest ``encoding`` of a dataset whose records have no image (a labels file
#: without a path column: label and fields only). Its payloads are empty, its shapes
#: (0, 0, 0) and its ``channels`` 0.
NO_IMAGE = "none"

BACKENDS = ("lmdb", "hdf5")
SHARD_SUFFIX = {"lmdb": ".mdb", "hdf5": ".h5"}

# LMDB shard layout.
LMDB_RECORDS_DB = b"records"
LMDB_META_DB = b"meta"
LMDB_META_KEYS = ("labels", "crc32", "shapes", "class_offsets", "class_ids")
LMDB_FIELDS_DB = b"fields"
#: Per-record CRC32 of the fields (LMDB meta key, HDF5 root dataset), with fields only.
FIELDS_CRC = "fields_crc32"
HDF5_FIELDS_GROUP = "fields"
#: Optional meta key: (n, 2) int64 file offset and length of each record's value, for
#: read-ahead hints (``datumio.shards.advice``); absent in shards of datumio before 0.2.
LMDB_PLACES_KEY = "places"
_KEY = struct.Struct(">Q")


def record_key(local_id: int) -> bytes:
    """The LMDB key of a shard's local record id (big-endian, so keys sort by id)."""
    return _KEY.pack(local_id)


def field_key(name: str, local_id: int) -> bytes:
    """The LMDB key of field ``name`` of a local record id (in the ``fields`` database)."""
    return name.encode("ascii") + b"\0" + _KEY.pack(local_id)


def field_index_names(name: str, kind: str) -> tuple[str, ...]:
    """Index file names of a field: ``field_NAME.npy`` (int), ``field_NAME_offsets.npy`` and
    ``field_NAME_values.npy`` (multilabel), none for other types."""
    if kind == "int":
        return (f"field_{name}.npy",)
    if kind == "multilabel":
        return (f"field_{name}_offsets.npy", f"field_{name}_values.npy")
    return ()


def parse_record_key(key: bytes) -> int:
    """Inverse of :func:`record_key`."""
    value: int = _KEY.unpack(key)[0]
    return value


def shard_name(index: int, backend: str) -> str:
    """File name of shard number ``index`` inside ``shards/``."""
    return f"shard-{index:05d}{SHARD_SUFFIX[backend]}"


def backend_for_path(path: str) -> str | None:
    """The backend a dataset path's suffix implies (``.lmdb`` / ``.h5``/``.hdf5``), or None."""
    lower = path.rstrip("/").lower()
    if lower.endswith(".lmdb"):
        return "lmdb"
    if lower.endswith((".h5", ".hdf5")):
        return "hdf5"
    return None
