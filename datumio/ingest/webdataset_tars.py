"""WebDataset tar shards, read: which tars SRC names, and each tar's samples as members.

A WebDataset shard is a tar file whose members are grouped into samples by name: a
member's *key* is its path up to the first dot of its base name and its *extension* the
rest (``train/000017.seg.png``: key ``train/000017``, extension ``seg.png``, compared in
lower case); a sample is a run of consecutive members with one key. Each tar is streamed
once with :mod:`tarfile` (the ``webdataset`` package is not needed), one sample in memory
at a time. Members that belong to no sample are passed over as WebDataset passes them
(directories, links, names without an extension, hidden names).
"""

from __future__ import annotations

import itertools
import lzma
import os
import re
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from datumio.errors import IngestError
from datumio.ingest.sources import Reject

#: The files of a directory SRC that are shards.
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: What reading a damaged tar (or its compressed stream) raises.
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)
_RANGE = re.compile(r"(-?[0-9]+)\.\.(-?[0-9]+)")
_BRACES = re.compile(r"\{([^{}]*)\}")

#: What SRC may be: a tar, a brace pattern, a directory, or a list of these.
TarInput = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def expand_braces(pattern: str) -> list[str]:
    """Every name a brace pattern stands for, in order: ``{000..009}`` counts (zero-padded
    to the widest bound when a bound has a leading zero; downwards when the first bound is
    the larger), ``{a,b}`` lists; several braces combine, the last varying fastest. A brace
    pair of neither form stays as written.
    """
    parts: list[list[str]] = []
    end = 0
    for match in _BRACES.finditer(pattern):
        choices = _brace_choices(match.group(1))
        if choices is None:
            continue
        parts += [[pattern[end : match.start()]], choices]
        end = match.end()
    parts.append([pattern[end:]])
    return ["".join(combo) for combo in itertools.product(*parts)]


def _brace_choices(inside: str) -> list[str] | None:
    """The names of one brace pair's text, or None when it is no range or list."""
    bounds = _RANGE.fullmatch(inside)
    if bounds is not None:
        first, last = bounds.group(1), bounds.group(2)
        padded = any(len(b.lstrip("-")) > 1 and b.lstrip("-")[0] == "0" for b in (first, last))
        width = max(len(first), len(last)) if padded else 0
        step = 1 if int(first) <= int(last) else -1
        return [str(n).zfill(width) for n in range(int(first), int(last) + step, step)]
    if "," in inside:
        return inside.split(",")
    return None


def tar_paths(src: TarInput) -> list[str]:
    """The tar files ``src`` names, in order: a directory's ``.tar``, ``.tar.gz`` and
    ``.tgz`` files by name, a brace pattern's names, a list's entries in turn. A name that
    is no file stays in the list: reading it is a reject naming it.

    Raises:
        IngestError: ``src`` names no tar file at all (an empty list or directory).
    """
    given = [src] if isinstance(src, str | os.PathLike) else list(src)
    tars: list[str] = []
    for entry in given:
        path = os.fspath(entry)
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.lower().endswith(TAR_SUFFIXES))
            tars += [os.path.join(path, n) for n in names if not n.startswith(".")]
        else:
            tars += expand_braces(path)
    if not tars:
        raise IngestError(
            f"{shown(src, tars)} names no tar file: give a .tar file, a brace pattern "
            "(shards/train-{000..009}.tar), a directory of .tar files or a list of them"
        )
    return tars


def shown(src: TarInput, tars: Sequence[str]) -> str:
    """The input as shown to people (the manifest's ``ingest.source``)."""
    if isinstance(src, str | os.PathLike):
        return os.fspath(src)
    given = [os.fspath(s) for s in src]
    if len(given) <= 3:
        return ", ".join(given) or "[]"
    return f"{given[0]} ... {given[-1]} ({len(tars)} tars)"


@dataclass
class Members:
    """The members of one sample as read, by lower-case extension in tar order."""

    tar: str
    key: str
    data: dict[str, bytes] = field(default_factory=dict)
    #: (reason, detail) when the members cannot make a record (a reject's).
    problem: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        """The sample as rejects and the records' sources name it: ``TAR:KEY``."""
        return f"{self.tar}:{self.key}"

    def add(self, extension: str, data: bytes) -> None:
        if extension in self.data:
            detail = f"two members {self.key}.{extension}; the second is not read"
            self.problem = self.problem or ("duplicate member", detail)
            return
        self.data[extension] = data


def read_tar(tar: str) -> Iterator[Members | Reject]:
    """The samples of one tar, streamed. A tar that cannot be opened is a reject naming it;
    one that ends inside a member (or at a damaged header) is a reject of the sample it
    stops in, and the samples before it stand."""
    current: Members | None = None
    try:
        with tarfile.open(tar, mode="r|*") as stream:
            for member in stream:
                key, extension = _key(member)
                if key is None:
                    continue
                if current is not None and key != current.key:
                    yield current
                    current = None
                current = current or Members(tar, key)
                extracted = stream.extractfile(member)
                current.add(extension, extracted.read() if extracted is not None else b"")
            ended_early = _ends_early(tar, stream)
    except _TAR_ERRORS as exc:
        yield _cut_short(tar, current, f"{type(exc).__name__}: {exc}")
        return
    if ended_early:
        yield _cut_short(tar, current, "a damaged member header follows; the rest is not read")
    elif current is not None:
        yield current


def _key(member: tarfile.TarInfo) -> tuple[str | None, str]:
    """(key, lower-case extension) of a regular member; (None, "") for a member that is
    in no sample."""
    if not member.isreg():
        return None, ""
    folder, _, base = member.name.rpartition("/")
    stem, dot, extension = base.partition(".")
    if not (stem and dot and extension):
        return None, ""
    return f"{folder}/{stem}" if folder else stem, extension.lower()


def _cut_short(tar: str, current: Members | None, detail: str) -> Reject:
    """The reject of the sample a damaged tar stops in (the tar's own before any)."""
    if current is None:
        return Reject(tar, "unreadable tar", detail)
    return Reject(current.name, "truncated tar member", detail)


def _ends_early(tar: str, stream: tarfile.TarFile) -> bool:
    """Whether an uncompressed tar stopped at a damaged header rather than at its
    end-of-archive block: tarfile ends a stream there without an error."""
    if getattr(stream.fileobj, "comptype", None) != "tar":
        return False  # a compressed stream cut short raises instead
    with open(tar, "rb") as fh:
        fh.seek(stream.offset)
        return fh.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE)
