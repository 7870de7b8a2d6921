"""What a record field is: a frozen :class:`FieldSpec` per name, as the manifest lists it.

A field has a name, a type and the numpy dtype of its stored values (``docs/format.md``,
section Fields)::

    type        declared as             stored (little-endian)           decoded
    int         int                     <i8, one value                   int
    float       float                   <f8, one value                   float
    multilabel  multilabel              <i4 ids, sorted, unique          int32 (k,)
    array       array[:DTYPE[:LENGTH]]  DTYPE values (LENGTH when fixed)  DTYPE (n,)
    text        text                    UTF-8                            str
    bytes       bytes                   the bytes                        bytes
    boxes       boxes                   <f4 (k, 4), then <i4 (k,) classes  Boxes
    keypoints   keypoints               <f4 (k, 3) x, y, visibility      float32 (k, 3)
    mask        mask                    PNG of a mode L label image      uint8 (H, W)

``length`` is an array's fixed length, a box's number of values (4, or 5 with a class),
a keypoint's 3, and a multilabel field's number of ids (``len(vocabulary)`` when its
values were names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datumio.errors import DatumioError, OptionError

TYPES = ("int", "float", "multilabel", "array", "text", "bytes", "boxes", "keypoints", "mask")
#: Fields in image pixels: mapped to the stored image at ingest.
GEOMETRIC = ("boxes", "keypoints", "mask")
#: Fields with a global index (``index/field_<name>*.npy``) for sampling.
INDEXED = ("int", "multilabel")
ARRAY_DTYPES = (
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
)
#: Names a labels file uses for the record itself.
RESERVED = ("path", "label", "group", "image")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FIXED_DTYPE = {
    "int": "<i8",
    "float": "<f8",
    "multilabel": "<i4",
    "text": "utf-8",
    "bytes": "|u1",
    "boxes": "<f4",
    "keypoints": "<f4",
    "mask": "|u1",
}


class FieldValueError(DatumioError):
    """A field value that cannot be stored; ``reason`` is a short stable phrase (a reject's)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    """One field of every record (``manifest["fields"][k]``)."""

    name: str
    #: One of :data:`TYPES`.
    type: str
    #: Stored element type: a little-endian numpy dtype string, or ``utf-8`` for text.
    dtype: str
    #: See the module docstring; None where it does not apply (or an array of any length).
    length: int | None = None
    #: Multilabel names by id; None when the values were ids.
    vocabulary: tuple[str, ...] | None = None
    #: Records that have the field (a record may lack any field).
    records: int = 0
    #: Values over all records: boxes, keypoints, labels, array elements (1 per scalar).
    items: int = 0
    #: The most values one record has (what a batch pads variable-length fields to).
    max_items: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        """The stored dtype (bytes for text)."""
        return np.dtype("|u1" if self.dtype == "utf-8" else self.dtype)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "dtype": self.dtype,
            "length": self.length,
            "vocabulary": None if self.vocabulary is None else list(self.vocabulary),
            "records": self.records,
            "items": self.items,
            "max_items": self.max_items,
            **dict(self.extra),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FieldSpec:
        """A checked entry of the manifest's ``fields`` (:func:`spec_problem` first)."""
        known = ("name", "type", "dtype", "length", "vocabulary", "records", "items", "max_items")
        vocabulary = obj.get("vocabulary")
        return cls(
            name=obj["name"],
            type=obj["type"],
            dtype=obj["dtype"],
            length=obj.get("length"),
            vocabulary=None if vocabulary is None else tuple(vocabulary),
            records=obj.get("records") or 0,
            items=obj.get("items") or 0,
            max_items=obj.get("max_items") or 0,
            extra={k: v for k, v in obj.items() if k not in known},
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def spec_problem(obj: Any) -> str | None:
    """What makes a manifest ``fields`` entry unusable, or None."""
    if not isinstance(obj, dict):
        return "is not an object"
    name, kind, dtype = obj.get("name"), obj.get("type"), obj.get("dtype")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return f"name {name!r} is not a field name"
    if kind not in TYPES:
        return f"{name}: type {kind!r} is not one of {', '.join(TYPES)}"
    expected = _FIXED_DTYPE.get(kind)
    if expected is not None and dtype != expected:
        return f"{name}: dtype {dtype!r}, expected {expected!r} for {kind}"
    if kind == "array" and (
        not isinstance(dtype, str) or dtype not in {_le(np.dtype(d)) for d in ARRAY_DTYPES}
    ):
        return f"{name}: dtype {dtype!r} is not a little-endian number type"
    length = obj.get("length")
    if length is not None and not _is_count(length):
        return f"{name}: length {length!r} is not a count"
    if kind == "boxes" and length not in (4, 5):
        return f"{name}: boxes have length 4 or 5, not {length!r}"
    vocabulary = obj.get("vocabulary")
    if vocabulary is not None and (
        kind != "multilabel"
        or not isinstance(vocabulary, list)
        or not all(isinstance(v, str) for v in vocabulary)
        or length != len(vocabulary)
    ):
        return f"{name}: vocabulary is not a list of {length} names of a multilabel field"
    for key in ("records", "items", "max_items"):
        if obj.get(key) is not None and not _is_count(obj[key]):
            return f"{name}: {key} is {obj[key]!r}, expected a count"
    return None


def specs_problem(entries: Any) -> str | None:
    """What makes the manifest's ``fields`` list unusable (a bad entry, a repeated name)."""
    if not isinstance(entries, list):
        return "fields is not a list"
    for k, entry in enumerate(entries):
        problem = spec_problem(entry)
        if problem is not None:
            return f"fields[{k}] {problem}"
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        return "fields names a field twice"
    return None


def _le(dtype: np.dtype[Any]) -> str:
    """The little-endian dtype string (``<f4``; ``|u1`` for one byte)."""
    return dtype.newbyteorder("<").str


def check_name(name: str, where: str = "field") -> None:
    """Refuse a name that is not a safe field name (it becomes part of index file names)."""
    if not _NAME.fullmatch(name) or name in RESERVED:
        raise OptionError(
            f"{where} name {name!r}: use letters, digits and _ (not starting with a digit, "
            f"at most 64), and none of {', '.join(RESERVED)}"
        )


def parse_declaration(name: str, text: str) -> FieldSpec:
    """The spec a declaration gives: ``int``, ``array:float32:4``, ``array:int16``, ...

    Boxes get their length (4 or 5) from the data; a multilabel field its vocabulary.

    Raises:
        OptionError: an unknown type, dtype or length (the message lists what is allowed).
    """
    check_name(name)
    parts = text.strip().split(":")
    kind = parts[0].strip().lower()
    if kind not in TYPES:
        raise OptionError(
            f"field {name}: type {text!r} is unknown; use one of {', '.join(TYPES)} "
            "(arrays: array:DTYPE or array:DTYPE:LENGTH, such as array:float32:4)"
        )
    if kind != "array":
        if len(parts) > 1:
            raise OptionError(f"field {name}: type {kind} takes no ':' options ({text!r})")
        length = 3 if kind == "keypoints" else None
        return FieldSpec(name=name, type=kind, dtype=_FIXED_DTYPE[kind], length=length)
    if len(parts) > 3:
        raise OptionError(f"field {name}: {text!r} is not array:DTYPE[:LENGTH]")
    dtype = parts[1].strip().lower() if len(parts) > 1 else "float32"
    if dtype not in ARRAY_DTYPES:
        raise OptionError(
            f"field {name}: array dtype {dtype!r} is unknown; use one of {', '.join(ARRAY_DTYPES)}"
        )
    length = None
    if len(parts) == 3:
        if not parts[2].strip().isdigit() or int(parts[2]) < 1:
            raise OptionError(f"field {name}: array length {parts[2]!r} is not a positive count")
        length = int(parts[2])
    return FieldSpec(name=name, type="array", dtype=_le(np.dtype(dtype)), length=length)


def parse_declarations(fields: Mapping[str, str] | Iterable[str]) -> dict[str, FieldSpec]:
    """``{"name": "type"}`` (or ``NAME:TYPE`` texts, as the CLI takes them) as specs."""
    pairs: list[tuple[str, str]] = []
    if isinstance(fields, Mapping):
        pairs = [(str(k), str(v)) for k, v in fields.items()]
    else:
        for text in fields:
            name, sep, kind = text.partition(":")
            if not sep:
                raise OptionError(f"field {text!r} is not NAME:TYPE (such as tags:multilabel)")
            pairs.append((name.strip(), kind))
    specs: dict[str, FieldSpec] = {}
    for name, kind in pairs:
        if name in specs:
            raise OptionError(f"field {name} is declared twice")
        specs[name] = parse_declaration(name, kind)
    return specs
