"""A labels file's columns beyond ``path,label[,group]``: the fields, typed and checked.

:func:`resolve_fields` decides each column's :class:`~datumio.fields.FieldSpec` (declared
types win; JSONL/Parquet values are inferred; CSV/TSV columns must be declared), then
checks every kept row's values (:func:`datumio.fields.values.coerce`), numbers a
multilabel field's names (its vocabulary: the names of all rows, integers numerically)
and checks mask paths like image paths. A row whose value does not fit is rejected with
the reason; checks that need the image (a box inside it, a mask of its size) run in the
ingest workers (:mod:`datumio.ingest.field_work`).
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datumio.errors import IngestError
from datumio.fields.spec import GEOMETRIC, TYPES, FieldSpec, FieldValueError, parse_declaration
from datumio.fields.values import coerce, infer_type, merge_types
from datumio.shards.format import field_index_names

#: A row's field values by name (a field the record lacks is left out).
Values = dict[str, Any]
#: The reject reason of a path inside the root, or None (the image paths' check).
PathCheck = Callable[[str], str | None]
#: Keys that are the record itself, not fields.
STANDARD = ("path", "label", "group", "split")


@dataclass(frozen=True)
class FieldProblem:
    """A row rejected for a field value (``reason`` as in rejects.jsonl)."""

    reason: str
    detail: str


def _infer(name: str, rows: Sequence[tuple[int, Mapping[str, Any]]], labels_file: str) -> FieldSpec:
    kind: str | None = None
    first_line = 0
    for line, row in rows:
        value = row.get(name)
        found = infer_type(value)
        if found is None:
            if value is None or value == [] or isinstance(value, bool):
                if isinstance(value, bool):
                    raise IngestError(
                        f"{labels_file}:{line}: column {name!r} holds {value!r}; store flags "
                        f"as 0/1 or declare the column (--field {name}:int)"
                    )
                continue
            raise IngestError(
                f"{labels_file}:{line}: column {name!r} holds {str(value)[:60]!r}, which is no "
                f"field type; declare it with --field {name}:TYPE ({', '.join(TYPES)})"
            )
        if kind is None:
            kind, first_line = found, line
            continue
        merged = merge_types(kind, found)
        if merged is None:
            raise IngestError(
                f"{labels_file}: column {name!r} holds {kind} values (line {first_line}) and "
                f"{found} values (line {line}); declare its type with --field {name}:TYPE"
            )
        kind = merged
    if kind is None:
        raise IngestError(
            f"{labels_file}: column {name!r} has no value to infer a type from; declare it "
            f"with --field {name}:TYPE or leave the column out"
        )
    return parse_declaration(name, kind)


def resolve_specs(
    declared: Mapping[str, FieldSpec],
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    text: bool,
    labels_file: str,
) -> list[FieldSpec]:
    """The fields of a labels file: declared ones in declaration order, then the other
    columns in order of appearance.

    Raises:
        IngestError: a CSV/TSV column without a declared type, or a JSONL/Parquet column
            whose values fit no type or several (the message names the column and lines).
    """
    columns: dict[str, None] = {}
    for _, row in rows:
        for key in row:
            if key not in STANDARD and key not in declared:
                columns.setdefault(key, None)
    specs = list(declared.values())
    for name in columns:
        if text:
            raise IngestError(
                f"{labels_file}: column {name!r} has no declared type, and CSV/TSV cells are "
                f"text; declare it with --field {name}:TYPE (IngestOptions(fields="
                f"{{{name!r}: TYPE}})), TYPE one of {', '.join(TYPES)}, or remove the column"
            )
        specs.append(_infer(name, rows, labels_file))
    files: dict[str, str] = {}
    for spec in specs:
        for file in field_index_names(spec.name, spec.type):
            if file in files:
                raise IngestError(
                    f"{labels_file}: fields {files[file]!r} and {spec.name!r} would share the "
                    f"index file {file}; rename one of the columns"
                )
            files[file] = spec.name
    return specs


def _number_multilabel(
    spec: FieldSpec, values: list[Values | FieldProblem], sort: Callable[[set[str]], list[str]]
) -> FieldSpec:
    """Turn the field's names into ids over a vocabulary (in place); returns the spec."""
    names_kind: bool | None = None
    names: set[str] = set()
    top = -1
    for k, row in enumerate(values):
        if isinstance(row, FieldProblem) or spec.name not in row or not row[spec.name]:
            continue
        is_names = isinstance(row[spec.name][0], str)
        if names_kind is None:
            names_kind = is_names
        if is_names != names_kind:
            values[k] = FieldProblem(
                "bad field value",
                f"field {spec.name!r}: class {'names' if is_names else 'ids'} in a field of "
                f"{'names' if names_kind else 'ids'}",
            )
        elif is_names:
            names.update(row[spec.name])
        else:
            top = max(top, *row[spec.name])
    if names_kind:
        vocabulary = sort(names)
        ids = {name: i for i, name in enumerate(vocabulary)}
        for row in values:
            if not isinstance(row, FieldProblem) and row.get(spec.name):
                row[spec.name] = sorted({ids[n] for n in row[spec.name]})
        return dataclasses.replace(spec, vocabulary=tuple(vocabulary), length=len(vocabulary))
    for row in values:
        if not isinstance(row, FieldProblem) and spec.name in row:
            row[spec.name] = sorted(set(row[spec.name]))
    return dataclasses.replace(spec, length=top + 1)


def _box_width(spec: FieldSpec, values: list[Values | FieldProblem]) -> FieldSpec:
    """A boxes field's length: the width of its first row with boxes; others must match."""
    width = spec.length
    for k, row in enumerate(values):
        if isinstance(row, FieldProblem) or spec.name not in row:
            continue
        arr = row[spec.name]
        if not len(arr):
            continue
        if width is None:
            width = arr.shape[1]
        elif arr.shape[1] != width:
            values[k] = FieldProblem(
                "bad box",
                f"field {spec.name!r}: boxes of {arr.shape[1]} numbers in a field of {width} "
                "(every row gives a class, or none does)",
            )
    width = width or 4
    for row in values:
        if not isinstance(row, FieldProblem) and spec.name in row and not len(row[spec.name]):
            row[spec.name] = row[spec.name].reshape(0, width)
    return dataclasses.replace(spec, length=width)


def resolve_fields(
    declared: Mapping[str, FieldSpec],
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    text: bool,
    labels_file: str,
    check_path: PathCheck,
    sort_names: Callable[[set[str]], list[str]],
    *,
    table: bool = False,
) -> tuple[list[FieldSpec], list[Values | FieldProblem]]:
    """The fields of the kept rows ``rows`` and each row's values (or why it is rejected).

    Args:
        declared: the declared fields (``IngestOptions.fields``) by name.
        rows: (line number, row) of every row kept so far, in order.
        text: the rows are CSV/TSV cells.
        labels_file: names the file in errors.
        check_path: the image paths' check, applied to mask paths.
        sort_names: orders a multilabel vocabulary (as class names are ordered).
        table: the rows have no image (no path column): geometric fields are refused.

    Raises:
        IngestError: see :func:`resolve_specs`; a boxes, keypoints or mask field in a table.
    """
    specs = resolve_specs(declared, rows, text, labels_file)
    geometric = [s for s in specs if s.type in GEOMETRIC] if table else []
    if geometric:
        spec = geometric[0]
        raise IngestError(
            f"{labels_file}: field {spec.name!r} is a {spec.type} field, but the file has no "
            "path column, so its records have no image for it to lie on; add a path column "
            f"(records with images) or store it as an array (--field {spec.name}:array:float32)"
        )
    values: list[Values | FieldProblem] = []
    for _, row in rows:
        out: Values = {}
        try:
            for spec in specs:
                value = coerce(spec, row.get(spec.name), text)
                if value is None:
                    continue
                if spec.type == "mask":
                    problem = check_path(value.replace("\\", "/"))
                    if problem is not None:
                        raise FieldValueError(
                            "bad mask path", f"field {spec.name!r}: {problem}: {value}"
                        )
                    value = posixpath.normpath(value.replace("\\", "/"))
                out[spec.name] = value
        except FieldValueError as exc:
            values.append(FieldProblem(exc.reason, exc.detail))
            continue
        values.append(out)
    for k, spec in enumerate(specs):
        if spec.type == "multilabel":
            specs[k] = _number_multilabel(spec, values, sort_names)
        elif spec.type == "boxes":
            specs[k] = _box_width(spec, values)
    return specs, values
