"""Options of an ingest run: one frozen dataclass, validated on construction."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypedDict, get_args

from datumio.checks import (
    Check,
    apply,
    choice,
    flag,
    integer,
    mapping,
    non_negative_int,
    number,
    optional,
    pair,
    refuse,
    sequence,
    string,
)
from datumio.codec import DEFAULT_BACKGROUND, DEFAULT_MAX_PIXELS, Encoding
from datumio.errors import OptionError
from datumio.fields.spec import FieldSpec, parse_declarations
from datumio.shards.format import backend_for_path

#: The storage backend of a dataset.
Format = Literal["lmdb", "hdf5"]
FORMATS: tuple[Format, ...] = get_args(Format)
#: How records are stored: ``auto`` or one of the codec's encodings.
Encode = Literal["auto", Encoding]
ENCODES: tuple[Encode, ...] = get_args(Encode)
#: What a file that cannot be read or decoded does to the run.
OnError = Literal["skip", "raise"]
ON_ERRORS: tuple[OnError, ...] = get_args(OnError)
#: What the input is: ``auto`` tells it from SRC (and ``labels_file``); ``folders`` (one
#: folder per class), ``labels`` (a labels file), ``huggingface`` (a ``save_to_disk``
#: folder or Parquet files), ``webdataset`` (tar shards), ``coco`` (an image folder and
#: the COCO JSON given as ``labels_file``).
Importer = Literal["auto", "folders", "labels", "huggingface", "webdataset", "coco"]
IMPORTERS: tuple[Importer, ...] = get_args(Importer)
#: The parts of a record an importer's ``columns`` option maps to an input column.
COLUMN_ROLES = ("image", "label", "group", "split")

_BYTE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_shard_size(text: str) -> tuple[int, int]:
    """``"512MiB"`` -> (bytes, 0); ``"10000"`` -> (0, records). Bytes need a unit."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None:
        raise OptionError(
            f"shard size {text!r} is not understood: give bytes with a unit (512MiB, 2GB) "
            "or a plain number of records (10000)"
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit in ("", "r", "rec", "records"):
        return 0, int(number)
    if unit not in _BYTE_UNITS:
        raise OptionError(f"shard size unit {unit!r} is unknown; use one of {sorted(_BYTE_UNITS)}")
    return int(number * _BYTE_UNITS[unit]), 0


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` text as (height, width): ``"320x240"`` -> (240, 320) (``IngestOptions.size``)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise OptionError(f"size {text!r} is not WxH (for example 256x256)")
    width, height = int(match.group(1)), int(match.group(2))
    return height, width


def recorded_size(size: tuple[int, int]) -> tuple[int, int]:
    """``IngestOptions.size`` (height, width) as the manifest and the plan store it: (width,
    height), the form written since format version 1."""
    height, width = size
    return width, height


def size_from_recorded(stored: Sequence[int]) -> tuple[int, int]:
    """The inverse of :func:`recorded_size`: (height, width) from the stored (width, height)."""
    width, height = stored
    return int(height), int(width)


@dataclass(frozen=True, kw_only=True)
class IngestOptions:
    """How ``datumio-ingest`` reads, checks, transforms and stores images.

    Every field maps to one CLI flag of the same name (``max_side`` -> ``--max-side``).
    """

    #: Storage backend; None picks it from OUT's suffix (.lmdb / .h5), else LMDB.
    format: Format | None = None
    #: keep the original bytes, re-encode (jpeg/png/webp) or store raw pixels. ``auto``
    #: keeps originals unless the pixels change (resize), then uses jpeg.
    encode: Encode = "auto"
    quality: int = 90
    max_side: int | None = None
    short_side: int | None = None
    #: (height, width), as ``Transform.size``: resize to cover, then centre-crop to exactly
    #: this size. The CLI's ``--size`` takes ``WxH`` (:func:`parse_size`); the manifest
    #: stores (width, height) (:func:`recorded_size`).
    size: tuple[int, int] | None = None
    gray: bool = False
    background: tuple[int, int, int] = DEFAULT_BACKGROUND
    min_side: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    shard_bytes: int = 1 << 30
    shard_records: int = 0
    shuffle: bool = False
    seed: int = 0
    workers: int | None = None
    #: Kept for compatibility; no effect since each task writes one whole shard (the
    #: shard plan sets the unit of work, see ``datumio/ingest/plan.py``).
    labels_file: str | None = None
    #: Fixed class list (and order) for a labels file; other labels are rejected.
    class_names: Sequence[str] | None = None
    on_error: OnError = "skip"
    max_errors: int | None = None
    overwrite: bool = False
    #: Where tasks run: ``local``, ``dask`` (a LocalCluster) or ``dask=tcp://HOST:PORT``.
    executor: str = "local"
    #: Adopt the temporary directory of a dead run with the same plan; skip its finished shards.
    resume: bool = False
    #: Add the input's files to the existing dataset at OUT as new shards.
    append: bool = False
    #: Seconds to wait while another run writes OUT (one writer at a time per dataset):
    #: 0 fails at once, naming the other run; None waits as long as it takes.
    wait: float | None = 0.0
    #: Field name -> type of the labels file's other columns (``{"tags": "multilabel",
    #: "emb": "array:float32:4"}``; CLI ``--field NAME:TYPE``). JSONL/Parquet columns not
    #: named here get an inferred type; CSV/TSV columns must be named.
    fields: Mapping[str, str] | None = None
    #: What SRC is (:data:`Importer`); ``auto`` tells it from SRC.
    importer: Importer = "auto"
    #: The input column (a Hugging Face column, a WebDataset member's extension or JSON
    #: key) of each part of a record, by role (``image``, ``label``, ``group``,
    #: ``split``); CLI ``--column ROLE=NAME``. Roles not given take the importer's default.
    columns: Mapping[str, str] | None = None
    #: The splits to import (a Hugging Face dataset's, a ``split`` column's); None: all.
    splits: Sequence[str] | None = None

    def __post_init__(self) -> None:
        apply(self, _CHECKS)
        resizes = [n for n in ("max_side", "short_side", "size") if getattr(self, n) is not None]
        if len(resizes) > 1:
            raise OptionError(f"choose one resize option, not {' and '.join(resizes)}")
        if resizes and self.encode == "keep":
            raise OptionError(
                f"encode='keep' stores the original bytes, so it cannot apply {resizes[0]}; "
                "use --encode jpeg|png|webp|raw with a resize"
            )
        if self.shard_bytes < 1 and self.shard_records < 1:
            raise OptionError("shard size must be positive (bytes or records)")
        if self.append and self.overwrite:
            raise OptionError("append cannot be combined with overwrite")
        if self.fields is not None:
            self.field_specs()  # raises OptionError naming a bad declaration
            if self.fields and self.labels_file is None and self.importer == "folders":
                raise OptionError(
                    "fields come from a labels file's or an importer's columns: give "
                    "labels_file (--labels) or an importer (--from) with fields (--field)"
                )
        unknown = sorted(set(self.columns or {}) - set(COLUMN_ROLES))
        if unknown:
            raise OptionError(
                f"columns: unknown role {unknown[0]!r}; roles are {', '.join(COLUMN_ROLES)}"
            )

    def field_specs(self) -> dict[str, FieldSpec]:
        """The declared fields (:attr:`fields`) as specs, by name."""
        return parse_declarations(self.fields or {})

    @property
    def encoding(self) -> str:
        """The encoding records are stored with (``auto`` resolved)."""
        if self.encode != "auto":
            return self.encode
        resizing = self.max_side or self.short_side or self.size
        return "jpeg" if resizing else "keep"

    @property
    def num_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def backend_for(self, out: str) -> str:
        """The backend used for dataset path ``out``."""
        return self.format or backend_for_path(out) or "lmdb"


def _background(name: str, value: Any) -> tuple[int, int, int]:
    """Three grey levels 0-255 (R, G, B)."""
    levels = _LEVELS(name, value)
    if len(levels) != 3:
        raise refuse(name, value, _RGB)
    return levels[0], levels[1], levels[2]


def _executor(name: str, value: Any) -> str:
    """``local``, ``dask`` or ``dask=ADDRESS``."""
    if isinstance(value, str) and re.fullmatch(r"local|dask|dask=.+", value, re.DOTALL):
        return value
    raise refuse(name, value, "local, dask or dask=tcp://HOST:PORT")


def _path(name: str, value: Any) -> str:
    """A path (str or ``os.PathLike``) as a non-empty str."""
    return _NAME(name, os.fspath(value) if isinstance(value, os.PathLike) else value)


def _wait(name: str, value: Any) -> float | None:
    """Seconds >= 0; infinity is None, its one spelling (JSON has no infinity)."""
    if isinstance(value, float) and value == math.inf:
        return None
    return _SECONDS(name, value)


_SECONDS = number(
    0.0,
    want="the seconds to wait for another run writing OUT (0: do not wait; None: as long "
    "as it takes)",
)
_PIXELS = integer(1, want="a positive number of pixels")
_RGB = "three values in 0..255 (R, G, B)"
_LEVELS = sequence(integer(0, 255), want=_RGB)
_NAME = string(empty=False)

#: The check of each field (``datumio.checks``); the rules between fields follow in
#: :meth:`IngestOptions.__post_init__`.
_CHECKS: dict[str, Check] = {
    "format": optional(choice(FORMATS)),
    "encode": choice(ENCODES),
    "quality": integer(1, 100),
    "max_side": optional(_PIXELS),
    "short_side": optional(_PIXELS),
    "size": optional(pair(_PIXELS)),
    "gray": flag,
    "background": _background,
    "min_side": _PIXELS,
    "max_pixels": _PIXELS,
    "shard_bytes": non_negative_int,
    "shard_records": non_negative_int,
    "shuffle": flag,
    "seed": non_negative_int,
    "workers": optional(integer(1, want="1 or more (default: all cores)")),
    "labels_file": optional(_path),
    "class_names": optional(sequence(_NAME)),
    "on_error": choice(ON_ERRORS),
    "max_errors": optional(non_negative_int),
    "overwrite": flag,
    "executor": _executor,
    "resume": flag,
    "append": flag,
    "wait": optional(_wait),
    "fields": optional(mapping(_NAME, _NAME)),
    "importer": choice(IMPORTERS),
    "columns": optional(mapping(_NAME, _NAME)),
    "splits": optional(sequence(_NAME)),
}


class IngestKeywords(TypedDict, total=False):
    """The keywords of ``ingest(src, out, ...)``: every :class:`IngestOptions` field but
    ``executor`` (``ingest``'s own ``executor=`` takes its name, or an Executor). The
    dataclass holds the defaults and what each one means (listed here by name)."""

    append: bool
    background: tuple[int, int, int]
    class_names: Sequence[str] | None
    columns: Mapping[str, str] | None
    encode: Encode
    fields: Mapping[str, str] | None
    format: Format | None
    gray: bool
    importer: Importer
    labels_file: str | None
    max_errors: int | None
    max_pixels: int
    max_side: int | None
    min_side: int
    on_error: OnError
    overwrite: bool
    quality: int
    resume: bool
    seed: int
    shard_bytes: int
    shard_records: int
    short_side: int | None
    shuffle: bool
    size: tuple[int, int] | None
    splits: Sequence[str] | None
    wait: float | None
    workers: int | None


def recorded_options(options: IngestOptions) -> dict[str, Any]:
    """Every field of ``options`` by name as the manifest (``ingest.options``) and the plan's
    fingerprint record it: ``size`` as (width, height), see :func:`recorded_size`."""
    fields = asdict(options)
    if options.size is not None:
        fields["size"] = recorded_size(options.size)
    return fields
