"""The columns of a Hugging Face dataset: what each one holds, and a batch as samples.

:func:`plan_columns` reads the features (the ``huggingface`` JSON ``datasets`` stores with
the Arrow schema; without it the Arrow types decide, a ``struct<bytes, path>`` being an
image) and the options into a :class:`ColumnPlan`. :meth:`ColumnPlan.samples` turns one
Arrow record batch into samples with one ``to_pylist`` per column it needs, so the work per
row is building the :class:`~datumio.ingest.samples.Sample`. This module only calls the
methods of the Arrow objects it is given (:mod:`datumio.ingest.huggingface` imports pyarrow).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datumio.errors import IngestError, OptionError
from datumio.fields.spec import check_name
from datumio.ingest.options import IngestOptions
from datumio.ingest.samples import Sample
from datumio.ingest.sources import Reject

#: A column's values (one batch) -> the values a sample takes.
Convert = Callable[[list[Any]], list[Any]]
#: Arrow type names (``str(pa.DataType)``) that hold text, bytes, integers, numbers.
_TEXT = re.compile(r"(large_)?string|string_view|(large_)?utf8")
_BYTES = re.compile(r"(large_)?binary|binary_view|fixed_size_binary\[\d+\]")
_INT = re.compile(r"u?int(8|16|32|64)")
_FLOAT = re.compile(r"halffloat|float|double")
_NUMPY = {"halffloat": "float16", "float": "float32", "double": "float64"}
#: The feature types ``datasets`` writes for a list of something.
_LISTS = ("List", "Sequence", "LargeList")


def _feature_type(feature: Any) -> str | None:
    """A feature's ``_type`` (``Image``, ``ClassLabel``, ``List``...); a JSON list is a list."""
    if isinstance(feature, list):
        return "List"
    if isinstance(feature, Mapping):
        kind = feature.get("_type")
        return kind if isinstance(kind, str) else None
    return None


def _item_feature(feature: Any) -> Any:
    """The feature of a list's items (None when ``feature`` is no list)."""
    if isinstance(feature, list):
        return feature[0] if len(feature) == 1 else None
    if _feature_type(feature) in _LISTS:
        return feature.get("feature")
    return None


def _class_names(feature: Any) -> list[str] | None:
    """A ``ClassLabel``'s names, or None."""
    if _feature_type(feature) != "ClassLabel":
        return None
    return [str(name) for name in feature.get("names") or []]


def _is_image(feature: Any, arrow_type: Any) -> bool:
    if feature is not None:
        return _feature_type(feature) == "Image"
    names = {arrow_type.field(k).name for k in range(getattr(arrow_type, "num_fields", 0))}
    return str(arrow_type).startswith("struct<") and names == {"bytes", "path"}


def _to_names(names: Sequence[str]) -> Convert:
    """Class ids -> their names (an id the list lacks stays as it is: the check refuses it)."""
    count = len(names)

    def convert(values: list[Any]) -> list[Any]:
        return [names[v] if isinstance(v, int) and 0 <= v < count else v for v in values]

    return convert


def _to_name_lists(names: Sequence[str]) -> Convert:
    one = _to_names(names)

    def convert(values: list[Any]) -> list[Any]:
        return [None if v is None else one(v) for v in values]

    return convert


def _to_ints(values: list[Any]) -> list[Any]:
    """Flags as 0/1 (int fields refuse bools)."""
    return [None if v is None else int(v) for v in values]


def _as_is(values: list[Any]) -> list[Any]:
    return values


def _to_text(values: list[Any]) -> list[Any]:
    return [None if v is None else str(v) for v in values]


def _list_type(arrow_type: Any) -> tuple[str, int | None] | None:
    """(numpy dtype name, fixed length or None) of a list of numbers, else None."""
    value_type = getattr(arrow_type, "value_type", None)
    if value_type is None:
        return None
    item = str(value_type)
    if not (_INT.fullmatch(item) or _FLOAT.fullmatch(item)):
        return None
    size = getattr(arrow_type, "list_size", None)
    return _NUMPY.get(item, item), size


def _field_type(feature: Any, arrow_type: Any) -> tuple[str, Convert] | None:
    """The field type a column gets by default and its values' conversion, or None (left
    out: a struct, a list of texts, audio...)."""
    kind = str(arrow_type)
    item_names = _class_names(_item_feature(feature))
    if item_names is not None:
        return "multilabel", _to_name_lists(item_names)
    if kind == "bool":
        return "int", _to_ints
    if _INT.fullmatch(kind):
        return "int", _as_is
    if _FLOAT.fullmatch(kind):
        return "float", _as_is
    if _TEXT.fullmatch(kind):
        return "text", _as_is
    if _BYTES.fullmatch(kind):
        return "bytes", _as_is
    numbers = _list_type(arrow_type)
    if numbers is None:
        return None
    dtype, size = numbers
    return f"array:{dtype}" + ("" if size is None else f":{size}"), _as_is


def _declared_convert(declared: str, feature: Any, arrow_type: Any) -> Convert:
    """The conversion of a column whose field type is declared: names for a multilabel of
    class ids, 0/1 for flags, else the values as they are (the field's check decides)."""
    item_names = _class_names(_item_feature(feature))
    if item_names is not None and declared.split(":")[0].strip() == "multilabel":
        return _to_name_lists(item_names)
    return _to_ints if str(arrow_type) == "bool" else _as_is


@dataclass(frozen=True)
class FieldColumn:
    """A column stored as a field of the same name."""

    column: str
    type: str
    convert: Convert


@dataclass(frozen=True)
class ColumnPlan:
    """Which column holds what, decided once for the whole dataset."""

    image: str | None
    #: ``struct`` (an ``Image``: bytes or a path), ``bytes`` or ``path``.
    image_kind: str
    label: str
    #: The ``ClassLabel``'s names, or None (labels are the column's ints or texts).
    class_names: Sequence[str] | None
    group: str | None
    group_convert: Convert
    split: str | None
    split_convert: Convert
    fields: tuple[FieldColumn, ...]

    @property
    def columns(self) -> list[str]:
        """Every column the samples are made of (what a Parquet read needs)."""
        roles = [self.image, self.label, self.group, self.split]
        named = [c for c in roles if c is not None] + [f.column for f in self.fields]
        return list(dict.fromkeys(named))

    def describe(self) -> dict[str, Any]:
        """The choice of columns, as the fingerprint records it."""
        roles = {"image": self.image, "label": self.label, "group": self.group}
        return {**roles, "split": self.split, "fields": {f.column: f.type for f in self.fields}}

    def splits_of(self, batch: Any) -> list[Any]:
        """The split column's values in ``batch`` as split names (None without one)."""
        return self._values(batch, self.split, self.split_convert, batch.num_rows)

    def samples(
        self,
        batch: Any,
        split: str | None,
        first_row: int,
        root: str,
        selected: frozenset[str] | None,
    ) -> Iterator[Sample | Reject]:
        """The samples (or rejects) of one record batch.

        Args:
            batch: a ``pyarrow.RecordBatch`` with the columns of :attr:`columns`.
            split: the split of the batch's rows (a split column overrides it).
            first_row: the number of the batch's first row in its split (names rows).
            root: what relative image paths are relative to.
            selected: the splits to keep (None: all); other rows are skipped.
        """
        rows = batch.num_rows
        images = self._images(batch, root, rows)
        labels = batch.column(self.label).to_pylist()
        groups = self._values(batch, self.group, self.group_convert, rows)
        splits = self.splits_of(batch) if self.split is not None else [split] * rows
        fields = [(f.column, f.convert(batch.column(f.column).to_pylist())) for f in self.fields]
        for k in range(rows):
            row_split = splits[k]
            if selected is not None and row_split not in selected:
                continue
            name = f"{row_split}/{first_row + k}" if row_split is not None else str(first_row + k)
            problem = self._problem(labels[k], images[k], groups[k])
            if problem is not None:
                yield Reject(name, *problem)
                continue
            values = {n: v[k] for n, v in fields if v[k] is not None}
            yield Sample(images[k], labels[k], groups[k], values or None, name, row_split)

    def _problem(self, label: Any, image: Any, group: Any) -> tuple[str, str, int | None] | None:
        """Why a row is rejected (reason, detail, class id when known), or None. A class id
        outside the ``ClassLabel`` is left to the writer (``unknown class``)."""
        fixed = self.class_names is not None
        if label is None or label == "" or (fixed and label == -1):
            return "no label", f"label={label!r}", None
        if isinstance(image, Reject):
            return image.reason, image.detail, label if fixed else None
        if group is None and self.group is not None:
            return "no group", f"column {self.group!r} is null", label if fixed else None
        return None

    def _images(self, batch: Any, root: str, rows: int) -> list[Any]:
        """Each row's image: bytes, a path, None (no image column) or a :class:`Reject`."""
        if self.image is None:
            return [None] * rows
        column = batch.column(self.image)
        if self.image_kind == "bytes":
            return [b if b is not None else _NO_IMAGE for b in column.to_pylist()]
        if self.image_kind == "path":
            return [_path(p, root) for p in column.to_pylist()]
        data, paths = (child.to_pylist() for child in column.flatten())
        return [b if b is not None else _path(p, root) for b, p in zip(data, paths, strict=True)]

    @staticmethod
    def _values(batch: Any, column: str | None, convert: Convert, rows: int) -> list[Any]:
        if column is None:
            return [None] * rows
        return convert(batch.column(column).to_pylist())


_NO_IMAGE = Reject("", "no image", "the image is null")


def _path(path: str | None, root: str) -> str | Reject:
    """An image given by its path (relative to ``root``; as the writer takes it), or a
    reject when no such file exists."""
    if not path:
        return _NO_IMAGE
    return path if os.path.isfile(os.path.join(root, path)) else Reject("", "file not found", path)


def _column_of(role: str, names: Sequence[str], options: IngestOptions, where: str) -> str | None:
    """The column ``options.columns`` names for ``role`` (None when it names none)."""
    column = (options.columns or {}).get(role)
    if column is not None and column not in names:
        raise IngestError(
            f"{where}: there is no column {column!r} for the {role} (--column "
            f"{role}={column}); the columns are {', '.join(names)}"
        )
    return column


def _kind_error(where: str, role: str, column: str, arrow_type: Any, want: str) -> IngestError:
    return IngestError(
        f"{where}: column {column!r} ({arrow_type}) cannot be the {role}: give a column of "
        f"{want} with --column {role}=NAME (columns={{{role!r}: NAME}})"
    )


def _image_column(
    schema: Any, features: Mapping[str, Any], options: IngestOptions, where: str
) -> tuple[str | None, str]:
    """The image column and how it holds images (``struct``, ``bytes``, ``path``)."""
    column = _column_of("image", schema.names, options, where)
    if column is None:
        found = [n for n in schema.names if _is_image(features.get(n), schema.field(n).type)]
        return (found[0], "struct") if found else (None, "")
    arrow_type = schema.field(column).type
    if _is_image(features.get(column), arrow_type):
        return column, "struct"
    if _BYTES.fullmatch(str(arrow_type)):
        return column, "bytes"
    if _TEXT.fullmatch(str(arrow_type)):
        return column, "path"
    raise _kind_error(where, "image", column, arrow_type, "images, encoded bytes or paths")


def _label_column(
    schema: Any, features: Mapping[str, Any], options: IngestOptions, where: str
) -> tuple[str, list[str] | None]:
    """The label column and its class names (a ``ClassLabel``'s), checked."""
    column = _column_of("label", schema.names, options, where)
    if column is None:
        found = [n for n in schema.names if _class_names(features.get(n)) is not None]
        column = found[0] if found else ("label" if "label" in schema.names else None)
    if column is None:
        raise IngestError(
            f"{where}: no label column (no ClassLabel column and none named 'label'); name "
            f"it with --column label=NAME (columns={{'label': NAME}}); the columns are "
            f"{', '.join(schema.names)}"
        )
    names = _class_names(features.get(column))
    kind = str(schema.field(column).type)
    if names is None and not (_INT.fullmatch(kind) or _TEXT.fullmatch(kind)):
        raise _kind_error(where, "label", column, kind, "class labels, integers or texts")
    return column, names


def _name_column(
    role: str, schema: Any, features: Mapping[str, Any], options: IngestOptions, where: str
) -> tuple[str | None, Convert]:
    """The group or split column (only when given) and its values' conversion to names."""
    column = _column_of(role, schema.names, options, where)
    if column is None:
        return None, _as_is
    names = _class_names(features.get(column))
    if names is not None:
        return column, _to_names(names)
    kind = str(schema.field(column).type)
    if _TEXT.fullmatch(kind):
        return column, _as_is
    if _INT.fullmatch(kind):
        return column, _as_is if role == "group" else _to_text
    raise _kind_error(where, role, column, kind, "class labels, integers or texts")


def _is_field_name(name: str) -> bool:
    try:
        check_name(name)
    except OptionError:
        return False
    return True


def _field_columns(
    schema: Any, features: Mapping[str, Any], options: IngestOptions, taken: set[str], where: str
) -> tuple[FieldColumn, ...]:
    """The fields: declared ones (``options.fields``) in their order, then every other
    column whose type maps to a field type and whose name is a field name."""
    declared = dict(options.fields or {})
    missing = [name for name in declared if name not in schema.names]
    if missing:
        raise IngestError(
            f"{where}: field {missing[0]!r} (--field) is no column; the columns are "
            f"{', '.join(schema.names)}"
        )
    out = [
        FieldColumn(n, t, _declared_convert(t, features.get(n), schema.field(n).type))
        for n, t in declared.items()
    ]
    for name in schema.names:
        if name in declared or name in taken or not _is_field_name(name):
            continue
        found = _field_type(features.get(name), schema.field(name).type)
        if found is not None:
            out.append(FieldColumn(name, *found))
    return tuple(out)


def plan_columns(
    schema: Any, features: Mapping[str, Any], options: IngestOptions, where: str
) -> ColumnPlan:
    """Decide which column holds what (see :class:`ColumnPlan`).

    Args:
        schema: the Arrow schema of the dataset (``pyarrow.Schema``).
        features: the ``datasets`` features by column (their JSON form; {} when unknown).
        options: the run's options (``columns``, ``fields``).
        where: names the input in errors.

    Raises:
        IngestError: a column given in ``options.columns`` or ``options.fields`` that does
            not exist, no label column, or a role column of a type it cannot have.
    """
    image, image_kind = _image_column(schema, features, options, where)
    label, class_names = _label_column(schema, features, options, where)
    group, group_convert = _name_column("group", schema, features, options, where)
    split, split_convert = _name_column("split", schema, features, options, where)
    taken = {c for c in (image, label, group, split) if c is not None}
    fields = _field_columns(schema, features, options, taken, where)
    return ColumnPlan(  # the fields in their order
        image, image_kind, label, class_names, group, group_convert, split, split_convert, fields
    )
