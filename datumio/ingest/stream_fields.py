"""The fields of samples given one by one: types fixed by the first shard, values checked.

A folder ingest sees every labels-file row before the first shard is written; a stream
(:class:`datumio.Writer`, an importer) does not. So the field types are the declared ones
plus those inferred from the samples of the first shard (as a JSONL labels file's columns
are), and a field first seen later must have been declared. Values are checked as a
labels file's are (:func:`datumio.fields.values.coerce`); a multilabel field's names get
ids in order of first appearance, and a boxes field takes the width of its first boxes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from datumio.errors import IngestError
from datumio.fields.spec import FieldSpec, FieldValueError, parse_declarations
from datumio.fields.values import coerce
from datumio.ingest.field_input import resolve_specs

#: Values that are given as they are stored, not checked as JSON (a mask drawn in the
#: worker, an array, bytes).
_AS_GIVEN = ("mask", "array", "bytes")


class StreamFields:
    """The fields of one stream (see the module docstring)."""

    def __init__(self, declared: Mapping[str, str], where: str) -> None:
        self._declared = dict(declared)
        parse_declarations(self._declared)  # a bad declaration fails before any sample
        self._where = where
        self._specs: dict[str, FieldSpec] | None = None
        #: Multilabel names -> ids, per field whose values are names.
        self._vocabulary: dict[str, dict[str, int]] = {}
        self._top: dict[str, int] = {}

    @property
    def fixed(self) -> bool:
        """Whether the types are fixed (the first shard was seen)."""
        return self._specs is not None

    def fix(self, rows: Sequence[Mapping[str, Any] | None]) -> tuple[FieldSpec, ...]:
        """Fix the types from the declared ones and the first shard's ``rows``."""
        numbered = [(k + 1, _plain(row or {})) for k, row in enumerate(rows)]
        declared = parse_declarations({**given_types(rows), **self._declared})
        specs = resolve_specs(declared, numbered, False, self._where)
        self._specs = {spec.name: _with_box_width(spec, rows) for spec in specs}
        return self.specs()

    def specs(self) -> tuple[FieldSpec, ...]:
        """The fields in storage order (multilabel vocabularies and lengths as seen so far)."""
        out = []
        for spec in (self._specs or {}).values():
            if spec.type == "multilabel":
                names = self._vocabulary.get(spec.name)
                if names:
                    vocabulary = tuple(names)
                    spec = dataclasses.replace(spec, vocabulary=vocabulary, length=len(names))
                else:
                    spec = dataclasses.replace(spec, length=self._top.get(spec.name, -1) + 1)
            out.append(spec)
        return tuple(out)

    def check(self, number: int, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """The canonical values of one sample (``number``: its position, for errors).

        Raises:
            FieldValueError: a value that does not fit its field (the sample is rejected).
            IngestError: a field the first shard did not have and nobody declared.
        """
        specs = self._specs or {}
        out: dict[str, Any] = {}
        for name, raw in (values or {}).items():
            spec = specs.get(name)
            if spec is None:
                raise IngestError(
                    f"{self._where}: sample {number} has field {name!r}, which no sample of "
                    f"the first shard had; declare its type up front (fields={{{name!r}: "
                    "TYPE}, --field NAME:TYPE)"
                )
            value = self._value(spec, raw)
            if value is not None:
                out[name] = value
        return out

    def _value(self, spec: FieldSpec, raw: Any) -> Any:
        if raw is None:
            return None
        if spec.type in _AS_GIVEN and not isinstance(raw, str | list | tuple):
            return raw  # an array, bytes, a mask's pixels or recipe: checked in the worker
        if isinstance(raw, np.ndarray | np.generic):
            raw = raw.tolist()
        value = coerce(spec, raw, False)
        if spec.type == "multilabel" and value:
            value = self._ids(spec, value)
        return value

    def _ids(self, spec: FieldSpec, value: list[Any]) -> list[int]:
        if isinstance(value[0], str):
            if self._top.get(spec.name) is not None:
                raise FieldValueError(
                    "bad field value", f"field {spec.name!r}: names in a field of ids"
                )
            names = self._vocabulary.setdefault(spec.name, {})
            return sorted({names.setdefault(n, len(names)) for n in value})
        if spec.name in self._vocabulary:
            raise FieldValueError(
                "bad field value", f"field {spec.name!r}: ids in a field of names"
            )
        self._top[spec.name] = max(self._top.get(spec.name, -1), *value)
        return sorted(set(value))


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as type inference sees it: arrays as lists, pixels and recipes left out (their
    type is declared, or told by what they are: see :func:`_given_type`)."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, np.ndarray) and not _is_pixels(value):
            value = value.tolist()
        elif not isinstance(value, str | int | float | list | tuple | type(None)):
            continue
        out[name] = value
    return out


def _with_box_width(spec: FieldSpec, rows: Sequence[Mapping[str, Any] | None]) -> FieldSpec:
    """A boxes field's width: that of its first non-empty value in ``rows`` (else 4)."""
    if spec.type != "boxes" or spec.length is not None:
        return spec
    for row in rows:
        boxes = (row or {}).get(spec.name)
        if boxes is not None and len(boxes):
            return dataclasses.replace(spec, length=len(boxes[0]))
    return dataclasses.replace(spec, length=4)


def given_types(rows: Sequence[Mapping[str, Any] | None]) -> dict[str, str]:
    """Types told by what a value is (JSON types are inferred by the labels file's rules):
    a 2-D uint8 array or a recipe with ``render`` is a mask; bytes are bytes (the bytes
    of a PNG label image are a mask only when declared so)."""
    found: dict[str, str] = {}
    for row in rows:
        for name, value in (row or {}).items():
            if name in found:
                continue
            if hasattr(value, "render") or _is_pixels(value):
                found[name] = "mask"
            elif isinstance(value, bytes | bytearray | memoryview):
                found[name] = "bytes"  # a PNG label image too: declare it a mask
    return found


def _is_pixels(value: Any) -> bool:
    """A 2-D uint8 array: a label image."""
    return isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype == np.uint8
