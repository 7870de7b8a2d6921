"""What to ingest: a class-per-folder tree or a labels file, with path safety.

Both listings give items in a deterministic order, class names, and the rejects found
while listing (a file outside any class folder, a symlink that escapes the root, a
labels-file row with an absolute path ...). No file content is read here.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import posixpath
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from datumio.errors import IngestError
from datumio.fields.spec import FieldSpec
from datumio.ingest.field_input import STANDARD, FieldProblem, resolve_fields
from datumio.ingest.rows import has_path_column, is_text_table, read_rows

_PARALLEL_WALK_MIN_CLASSES = 8
_WALK_THREADS = 8


def utf8_text(name: str) -> str:
    """``name`` as valid UTF-8 text: the bytes of a file name that are not UTF-8 (the lone
    surrogates ``os.fsdecode`` gives them) become ``\\xNN`` escapes; other lone surrogates
    (a JSON ``"\\udc80"``) become ``\\uNNNN``. Valid text is returned unchanged."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _encodes(value: str, errors: str = "strict") -> bool:
    """Whether ``value`` is valid UTF-8 text (``errors="surrogateescape"``: a file name)."""
    try:
        value.encode("utf-8", errors)
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Item:
    """One file to ingest: its path relative to the root (POSIX separators) and label."""

    rel: str
    label: int
    group: int | None = None
    #: Field values by name (checked, canonical: :mod:`datumio.fields.values`); None
    #: without fields.
    fields: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Reject:
    """A file (or labels-file row) that was not ingested, and why."""

    path: str
    reason: str
    detail: str = ""
    line: int | None = None
    #: Class id the file would have had, when known (counts rejects per class).
    label: int | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"path": utf8_text(self.path), "reason": self.reason}
        if self.detail:
            out["detail"] = utf8_text(self.detail)
        if self.line is not None:
            out["line"] = self.line
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclass
class Listing:
    """The outcome of listing the input."""

    items: list[Item]
    class_names: list[str]
    rejects: list[Reject] = field(default_factory=list)
    group_names: list[str] | None = None
    kind: str = "folders"
    #: The records' fields (from a labels file's other columns), in storage order.
    fields: tuple[FieldSpec, ...] = ()

    @property
    def images(self) -> bool:
        """False for a labels file without paths: each item is a row, no file to read."""
        return self.kind != "table"


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _link_problem(path: str, root_real: str) -> str | None:
    """Reject reason for a path that involves symlinks, or None when it stays inside."""
    real = os.path.realpath(path)
    if not os.path.exists(path):
        # realpath stops at a loop and returns the link (or a link of the cycle) unresolved.
        looping = os.path.islink(real) or real == os.path.abspath(path)
        return "symlink loop" if looping else "dangling symlink"
    if not _inside(real, root_real):
        return "symlink escapes the input root"
    return None


class _Walker:
    """Recursive, sorted directory walk that follows safe symlinks and rejects the rest."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.root_real = os.path.realpath(root)
        self.rejects: list[Reject] = []

    def rel(self, path: str) -> str:
        prefix = self.root.rstrip(os.sep) + os.sep
        # scandir paths start with the root as given: slicing is exact and much cheaper.
        rel = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, self.root)
        return rel.replace(os.sep, "/")

    def check_link(self, path: str) -> str | None:
        """Reject reason for a symlink at ``path``, or None when it is safe to follow."""
        return _link_problem(path, self.root_real)

    def files(self, top: str, seen: set[str]) -> list[str]:
        """Files below ``top`` (recursive), sorted by relative path."""
        real_top = os.path.realpath(top)
        if real_top in seen:
            self.rejects.append(Reject(self.rel(top), "symlink loop", "directory already visited"))
            return []
        seen = seen | {real_top}
        found: list[str] = []
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except OSError as exc:
            self.rejects.append(Reject(self.rel(top), "unreadable directory", str(exc)))
            return []
        for entry in entries:
            if _hidden(entry.name):
                continue
            if entry.is_symlink():
                reason = self.check_link(entry.path)
                if reason is not None:
                    self.rejects.append(Reject(self.rel(entry.path), reason))
                    continue
            if entry.is_dir():
                found += self.files(entry.path, seen)
            elif entry.is_file():
                found.append(entry.path)
            else:
                self.rejects.append(Reject(self.rel(entry.path), "not a regular file"))
        return found


def list_folders(root: str) -> Listing:
    """One class per sub-folder of ``root`` (sorted by code point), files found recursively.

    Every non-hidden sub-folder is a class, also when it holds no usable file: class ids
    follow the folder list and never shift because files were rejected. Files directly in
    ``root`` belong to no class and are rejected. A folder name that is not UTF-8 is the
    class name :func:`utf8_text` makes of it; such a folder is rejected (``class name
    collision``) when another folder has that name. File paths stay byte-exact.
    """
    walker = _Walker(root)
    class_dirs: list[tuple[str, str]] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if _hidden(entry.name):
            continue
        if entry.is_symlink():
            reason = walker.check_link(entry.path)
            if reason is not None:
                walker.rejects.append(Reject(walker.rel(entry.path), reason))
                continue
        if entry.is_dir():
            class_dirs.append((utf8_text(entry.name), entry.path))
        else:
            walker.rejects.append(
                Reject(walker.rel(entry.path), "not in a class folder", "files directly in SRC")
            )
    class_dirs = _unique_class_names(class_dirs, walker)

    def walk(label: int) -> tuple[list[Item], list[Reject]]:
        own = _Walker(root)  # one per class: its rejects list is not shared between threads
        files = own.files(class_dirs[label][1], {own.root_real})
        found = [Item(own.rel(f), label) for f in files]
        return found, [dataclasses.replace(r, label=label) for r in own.rejects]

    items: list[Item] = []
    rejects = walker.rejects
    labels = range(len(class_dirs))
    # Directory reads release the GIL: walk many class folders concurrently (results are
    # taken in class order, so the listing is the same as a sequential walk).
    if len(class_dirs) >= _PARALLEL_WALK_MIN_CLASSES:
        with ThreadPoolExecutor(_WALK_THREADS) as pool:
            parts = list(pool.map(walk, labels))
    else:
        parts = [walk(label) for label in labels]
    for found, bad in parts:
        items += found
        rejects += bad
    return Listing(items, [name for name, _ in class_dirs], rejects, kind="folders")


def _unique_class_names(
    class_dirs: list[tuple[str, str]], walker: _Walker
) -> list[tuple[str, str]]:
    """``(class name, path)`` sorted by name, without the folders whose name is not UTF-8
    and whose escaped name another folder has (rejected)."""
    uses = collections.Counter(name for name, _ in class_dirs)
    kept = []
    for name, path in class_dirs:
        if uses[name] > 1 and name != os.path.basename(path):
            detail = f"the folder name is not UTF-8; escaped, it is '{name}', another folder's"
            walker.rejects.append(Reject(walker.rel(path), "class name collision", detail))
        else:
            kept.append((name, path))
    return sorted(kept)


_INTEGER = re.compile(r"-?[0-9]+")


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
        problem = _link_problem(full, root_real)
        if problem is not None:
            return problem
    if not os.path.exists(full):
        return "file not found"
    if not os.path.isfile(full):
        return "not a regular file"
    return None


def _cell(value: Any) -> str:
    """A path, label or group as text (a JSON number is its text, null is empty)."""
    return "" if value is None else str(value).strip()


def list_labels_file(
    root: str,
    labels_file: str,
    class_names: tuple[str, ...] | None = None,
    fields: Mapping[str, FieldSpec] | None = None,
) -> Listing:
    """Items from a labels file of ``path,label[,group]`` rows, paths relative to ``root``.

    Class names are the distinct labels of all rows, also rows that are rejected
    (integers numerically, else by code point), unless ``class_names`` fixes them, in
    which case other labels are rejected as unknown. Other columns are fields
    (:mod:`datumio.ingest.field_input`; ``fields``: the declared ones): a row whose value
    does not fit its field is rejected.

    A file without a ``path`` column (its first row has none) is a table: each row is a
    record of a label and fields, without an image, whose source is ``line N``.

    Raises:
        IngestError: no such file; in a table, a row with a path or a geometric field.
    """
    if not os.path.isfile(labels_file):
        raise IngestError(f"labels file {labels_file} does not exist")
    table = not has_path_column(labels_file)
    rows = read_rows(labels_file)
    rejects: list[Reject] = []
    root_real = os.path.realpath(root)
    kept: list[tuple[str, str, str | None, int]] = []
    extras: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    named: set[str] = set()
    rejected_labels: list[str] = []
    for number, row in rows:
        label = _cell(row.get("label"))
        if label and _encodes(label):
            named.add(label)
        if table:
            rel, reason = _table_row(labels_file, number, row)
        else:
            rel = _cell(row.get("path")).replace("\\", "/")
            reason = _check_rel(root, root_real, rel)
        if reason is None and not table:
            # "./a.png", "a//b.png": one file, one spelling (also for duplicate detection).
            rel = posixpath.normpath(rel)
        if reason is None and not label:
            reason = "missing label"
        if reason is None and not _encodes(label + _cell(row.get("group"))):
            reason = "label or group not UTF-8"  # a JSON "\\udce9": no name for a class
        if reason is None and class_names is not None and label not in class_names:
            reason = "unknown label"
        if reason is None and rel in seen:
            reason = f"duplicate path (first on line {seen[rel]})"
        if reason is not None:
            rejects.append(Reject(rel or "<empty>", reason, f"label={label!r}", line=number))
            rejected_labels.append(label)
            continue
        seen[rel] = number
        group = row.get("group")
        kept.append((rel, label, None if group is None else _cell(group), number))
        extras.append((number, {k: v for k, v in row.items() if k not in STANDARD}))
    specs: list[FieldSpec] = []
    values: list[Any] = [None] * len(kept)
    if fields or any(row for _, row in extras):
        specs, values = resolve_fields(
            fields or {},
            extras,
            is_text_table(labels_file),
            labels_file,
            lambda path: _check_rel(root, root_real, path),
            _sorted_names,
            table=table,
        )
        for k, value in enumerate(values):
            if isinstance(value, FieldProblem):
                rel, label, _, number = kept[k]
                rejects.append(Reject(rel, value.reason, value.detail, line=number))
                rejected_labels.append(label)
        order = sorted(range(len(rejects)), key=lambda k: rejects[k].line or 0)
        rejects = [rejects[k] for k in order]
        rejected_labels = [rejected_labels[k] for k in order]
    # Every label the file names is a class, also when all its rows were rejected, so a
    # missing file never shifts the ids of the other classes (as with class folders).
    names = list(class_names) if class_names is not None else _sorted_names(named)
    ids = {name: i for i, name in enumerate(names)}
    rejects = [
        dataclasses.replace(r, label=ids.get(name))
        for r, name in zip(rejects, rejected_labels, strict=True)
    ]
    good = [k for k in range(len(kept)) if not isinstance(values[k], FieldProblem)]
    has_groups = any(kept[k][2] is not None for k in good)
    group_names = _sorted_names({kept[k][2] or "" for k in good}) if has_groups else None
    group_ids = {g: i for i, g in enumerate(group_names or [])}
    items = [
        Item(
            kept[k][0],
            ids[kept[k][1]],
            group_ids[kept[k][2] or ""] if has_groups else None,
            values[k] if specs else None,
        )
        for k in good
    ]
    kind = "table" if table else "labels-file"
    return Listing(items, names, rejects, group_names, kind=kind, fields=tuple(specs))


def _table_row(labels_file: str, number: int, row: Mapping[str, Any]) -> tuple[str, None]:
    """A table row's source (``line N``); a row with a path in a table stops the run."""
    if "path" in row:
        raise IngestError(
            f"{labels_file}:{number}: this row has a path, the file's first row has none: give "
            "every row a path (records with images) or none (records of a label and fields)"
        )
    return f"line {number}", None
