"""What to ingest: items, rejects and listings; the class-per-folder tree, with path safety.

A listing (:func:`list_folders` here; a labels file's in :mod:`datumio.ingest.labels_file`)
gives items in a deterministic order, class names, and the rejects found while listing (a
file outside any class folder, a symlink that escapes the root, a labels-file row with an
absolute path ...). No file content is read here.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from datumio.fields.spec import FieldSpec

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


@dataclass(frozen=True, slots=True)
class Item:
    """One file to ingest: its path relative to the root (POSIX separators) and label."""

    rel: str
    label: int
    group: int | None = None
    #: Field values by name (checked, canonical: :mod:`datumio.fields.values`); None
    #: without fields.
    fields: Mapping[str, Any] | None = None
    #: The split the record is stored in (an index into ``Listing.split_names``), or None.
    split: int | None = None


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
    #: The splits the items name (a labels file's ``split`` column), in order of first
    #: appearance; empty: none.
    split_names: list[str] = field(default_factory=list)

    @property
    def images(self) -> bool:
        """False for a labels file without paths: each item is a row, no file to read."""
        return self.kind != "table"


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def link_problem(path: str, root_real: str) -> str | None:
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
        return link_problem(path, self.root_real)

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
