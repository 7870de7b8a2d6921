"""What to ingest from a labels file: rows of ``path,label[,group]`` and fields.

The rows are read in order (:mod:`datumio.ingest.rows`); each one becomes an item or a
reject naming its line: a path that is not a file inside the root (checked as carefully
as a folder walk checks links), a missing or unknown label, a repeated path, a field
value that does not fit its field. Every label the file names is a class, also when all
its rows were rejected, so a missing file never shifts the ids of the other classes. A
file without a ``path`` column is a table: each row is a record without an image. No file
content is read here.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from datumio.errors import IngestError
from datumio.fields.spec import FieldSpec
from datumio.ingest.field_input import STANDARD, FieldProblem, resolve_fields
from datumio.ingest.rows import has_path_column, is_text_table, read_rows
from datumio.ingest.sources import Item, Listing, Reject, link_problem

_INTEGER = re.compile(r"-?[0-9]+")


def list_labels_file(
    root: str,
    labels_file: str,
    class_names: Sequence[str] | None = None,
    fields: Mapping[str, FieldSpec] | None = None,
    splits: Sequence[str] | None = None,
) -> Listing:
    """Items from a labels file of ``path,label[,group]`` rows, paths relative to ``root``.

    Class names are the distinct labels of all rows, also rows that are rejected
    (integers numerically, else by code point), unless ``class_names`` fixes them, in
    which case other labels are rejected as unknown. Other columns are fields
    (:mod:`datumio.ingest.field_input`; ``fields``: the declared ones): a row whose value
    does not fit its field is rejected.

    A ``split`` column stores each record in that split (``train``, ``val`` ...; an empty
    cell: in no split); ``splits`` keeps only the rows of those splits (the others are
    left out, not rejected).

    A file without a ``path`` column (its first row has none) is a table: each row is a
    record of a label and fields, without an image, whose source is ``line N``.

    Raises:
        IngestError: no such file; in a table, a row with a path or a geometric field.
    """
    if not os.path.isfile(labels_file):
        raise IngestError(f"labels file {labels_file} does not exist")
    rows = _Rows(root, labels_file, class_names, table=not has_path_column(labels_file))
    wanted = None if splits is None else set(splits)
    for number, row in read_rows(labels_file):
        if wanted is None or _cell(row.get("split")) in wanted:
            rows.add(number, row)
    specs, values = _field_values(rows, fields or {})
    names = list(class_names) if class_names is not None else _sorted_names(rows.named)
    ids = {name: i for i, name in enumerate(names)}
    rejects = [dataclasses.replace(r, label=ids.get(name)) for r, name in rows.rejects]
    items, group_names = _items(rows.kept, values, ids, with_fields=bool(specs))
    kind = "table" if rows.table else "labels-file"
    split_names = list(dict.fromkeys(row.split for row in rows.kept if row.split is not None))
    if split_names:
        split_ids = {name: i for i, name in enumerate(split_names)}
        items = _with_splits(items, rows.kept, values, split_ids)
    listing = Listing(items, names, rejects, group_names, kind=kind, fields=tuple(specs))
    listing.split_names = split_names
    return listing


def _with_splits(
    items: list[Item],
    kept: list[_Kept],
    values: list[Any],
    split_ids: Mapping[str, int],
) -> list[Item]:
    """``items`` (the kept rows whose fields fit, in order) with their split ids."""
    good = [
        row for row, value in zip(kept, values, strict=True) if not isinstance(value, FieldProblem)
    ]
    return [
        dataclasses.replace(item, split=None if row.split is None else split_ids[row.split])
        for item, row in zip(items, good, strict=True)
    ]


class _Kept(NamedTuple):
    """A row that passed the checks of its path and label (its fields are checked later)."""

    rel: str
    label: str
    group: str | None
    line: int
    split: str | None = None


class _Rows:
    """The rows of a labels file, checked one at a time: kept, or rejected with a reason."""

    def __init__(
        self, root: str, labels_file: str, class_names: Sequence[str] | None, table: bool
    ) -> None:
        self.root = root
        self.root_real = os.path.realpath(root)
        self.labels_file = labels_file
        self.class_names = class_names
        self.table = table
        self.kept: list[_Kept] = []
        #: (line, the row's columns other than path, label and group) of each kept row.
        self.extras: list[tuple[int, dict[str, Any]]] = []
        #: Each reject with the label its row named (the class it counts for).
        self.rejects: list[tuple[Reject, str]] = []
        #: Every valid label named, by kept and rejected rows alike.
        self.named: set[str] = set()
        self._seen: dict[str, int] = {}

    def add(self, number: int, row: Mapping[str, Any]) -> None:
        """Check the row on line ``number`` and keep it or reject it."""
        label = _cell(row.get("label"))
        if label and _encodes(label):
            self.named.add(label)
        rel, reason = self._source(number, row)
        if reason is None:
            reason = self._label_problem(rel, label, _cell(row.get("group")))
        if reason is not None:
            self.rejects.append(
                (Reject(rel or "<empty>", reason, f"label={label!r}", line=number), label)
            )
            return
        self._seen[rel] = number
        group = row.get("group")
        split = _cell(row.get("split")) or None
        self.kept.append(_Kept(rel, label, None if group is None else _cell(group), number, split))
        self.extras.append((number, {k: v for k, v in row.items() if k not in STANDARD}))

    def path_problem(self, rel: str) -> str | None:
        """Reject reason for a path of the file, or None when it is a file inside the root."""
        return _check_rel(self.root, self.root_real, rel)

    def _source(self, number: int, row: Mapping[str, Any]) -> tuple[str, str | None]:
        """The row's path (a table row's ``line N``) and why it cannot be used (or None)."""
        if self.table:
            return _table_row(self.labels_file, number, row)
        rel = _cell(row.get("path")).replace("\\", "/")
        reason = self.path_problem(rel)
        if reason is None:
            # "./a.png", "a//b.png": one file, one spelling (also for duplicate detection).
            rel = posixpath.normpath(rel)
        return rel, reason

    def _label_problem(self, rel: str, label: str, group: str) -> str | None:
        """Why a row with a usable path cannot be kept for its label, group or path."""
        if not label:
            return "missing label"
        if not _encodes(label + group):
            return "label or group not UTF-8"  # a JSON "\\udce9": no name for a class
        if self.class_names is not None and label not in self.class_names:
            return "unknown label"
        if rel in self._seen:
            return f"duplicate path (first on line {self._seen[rel]})"
        return None


def _field_values(
    rows: _Rows, declared: Mapping[str, FieldSpec]
) -> tuple[list[FieldSpec], list[Any]]:
    """The fields and each kept row's values; a row whose value does not fit is rejected
    (added to ``rows.rejects``, kept in line order)."""
    if not declared and not any(row for _, row in rows.extras):
        return [], [None] * len(rows.kept)
    specs, values = resolve_fields(
        declared,
        rows.extras,
        is_text_table(rows.labels_file),
        rows.labels_file,
        rows.path_problem,
        _sorted_names,
        table=rows.table,
    )
    for kept, value in zip(rows.kept, values, strict=True):
        if isinstance(value, FieldProblem):
            reject = Reject(kept.rel, value.reason, value.detail, line=kept.line)
            rows.rejects.append((reject, kept.label))
    rows.rejects.sort(key=lambda pair: pair[0].line or 0)
    return specs, values


def _items(
    kept: list[_Kept], values: list[Any], ids: Mapping[str, int], with_fields: bool
) -> tuple[list[Item], list[str] | None]:
    """The items of the kept rows whose field values fit, and their group names (None when
    none of them has a group)."""
    good = [
        (row, value)
        for row, value in zip(kept, values, strict=True)
        if not isinstance(value, FieldProblem)
    ]
    group_names = None
    if any(row.group is not None for row, _ in good):
        group_names = _sorted_names({row.group or "" for row, _ in good})
    group_ids = {name: i for i, name in enumerate(group_names or [])}
    items = [
        Item(
            row.rel,
            ids[row.label],
            None if group_names is None else group_ids[row.group or ""],
            value if with_fields else None,
        )
        for row, value in good
    ]
    return items, group_names


def _sorted_names(values: set[str]) -> list[str]:
    """Integer-looking names sort numerically (2 before 10); others by code point."""
    if values and all(_INTEGER.fullmatch(v) for v in values):
        # "01" and "1" are different names with the same value: keep their order stable.
        return sorted(values, key=lambda v: (int(v), v))
    return sorted(values)


def _check_rel(root: str, root_real: str, rel: str) -> str | None:
    """Reject reason for a labels-file path, or None when it is a file inside the root."""
    if not rel:
        return "missing path"
    if not _encodes(rel, "surrogateescape"):  # a JSON "\\ud800" names no file
        return "path not UTF-8"
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        return "absolute path"
    if ".." in rel.replace("\\", "/").split("/"):
        return "path contains '..'"
    full = os.path.join(root, rel)
    plain = os.path.normpath(os.path.join(root_real, rel))  # where it is without symlinks
    if os.path.islink(full) or os.path.realpath(full) != plain:
        problem = link_problem(full, root_real)
        if problem is not None:
            return problem
    if not os.path.exists(full):
        return "file not found"
    if not os.path.isfile(full):
        return "not a regular file"
    return None


def _encodes(value: str, errors: str = "strict") -> bool:
    """Whether ``value`` is valid UTF-8 text (``errors="surrogateescape"``: a file name)."""
    try:
        value.encode("utf-8", errors)
    except UnicodeEncodeError:
        return False
    return True


def _cell(value: Any) -> str:
    """A path, label or group as text (a JSON number is its text, null is empty)."""
    return "" if value is None else str(value).strip()


def _table_row(labels_file: str, number: int, row: Mapping[str, Any]) -> tuple[str, None]:
    """A table row's source (``line N``); a row with a path in a table stops the run."""
    if "path" in row:
        raise IngestError(
            f"{labels_file}:{number}: this row has a path, the file's first row has none: give "
            "every row a path (records with images) or none (records of a label and fields)"
        )
    return f"line {number}", None
