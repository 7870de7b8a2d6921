"""The datumio error tree, and :func:`printable`: how text from data is shown to a person.

Every error raised on purpose by datumio derives from :class:`DatumioError`, and its
message says what failed, the value involved, what was expected and what to change.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

#: The Unicode categories :func:`printable` escapes: controls (C0, DEL, C1), format
#: characters (bidi overrides, zero-width ones), surrogates, line and paragraph separators.
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: object) -> str:
    """``text`` (``str(text)`` for other objects) made safe to show on a terminal.

    A character of :data:`ESCAPED_CATEGORIES` is written as Python writes it in a string
    literal (``\\n``, ``\\x1b``, ``\\x9b``, ``\\u202e``, ``\\U000e0001``), except a
    byte of a file name that is not UTF-8 (a lone surrogate U+DC80-U+DCFF), which shows as
    that byte (``\\xff``). Everything else is kept, backslashes too. The result holds no
    control sequence, line break or invisible character, and escaping it again changes
    nothing. Names, paths, reasons and any other text from labels files, manifests, file
    names or servers go through it before a person sees them.
    """
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():  # the common case: one pass in C
        return text
    import unicodedata  # only for text that needs a look at each character

    return "".join(
        _escaped(ch) if unicodedata.category(ch) in ESCAPED_CATEGORIES else ch for ch in text
    )


def _escaped(ch: str) -> str:
    code = ord(ch)
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class DatumioError(Exception):
    """Base class of every error datumio raises on purpose.

    Its text, ``str(error)``, is :func:`printable`: a name from data that the message
    quotes cannot send a control sequence to a terminal or forge a line of a log or a
    traceback. ``error.args`` keep the exact text.
    """

    def __str__(self) -> str:
        return printable(super().__str__())


class OptionError(DatumioError, ValueError):
    """An option has a value that is not allowed."""


class FormatError(DatumioError):
    """A dataset on disk is missing, malformed or inconsistent."""


class FormatVersionError(FormatError):
    """A dataset was written by a newer (or unknown) format version than this reader knows."""


class DatasetReplacedError(FormatError):
    """The dataset at a path was replaced (``--overwrite``, or moved away and another put
    there) after a reader opened it: the reader keeps the shards it has open but opens no
    file of the new dataset, so it never mixes the two. Reopen the path to read the new one.
    """


class FileLimitError(DatumioError, OSError):
    """A shard could not be opened because the process has as many files open as its limit
    (``RLIMIT_NOFILE``, ``ulimit -n``) allows; names the limit and ``max_open_shards``."""


class RecordError(DatumioError):
    """One record could not be read or decoded (names the record id and the shard)."""


class NoImageError(DatumioError, TypeError):
    """An image was asked of a dataset whose records have none (label and fields only)."""


class DecodeError(DatumioError):
    """Bytes could not be decoded into an image; ``reason`` is a short, stable phrase."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransformError(DatumioError):
    """User code in a transform failed (``Transform(user_fn=...)`` raised or returned a
    wrong array).

    Not a :class:`RecordError` or :class:`DecodeError`: the record is fine and the next
    one would fail the same way, so the loader never replaces it by another record; the
    batch fails with the user's traceback.
    """


class UnknownClassError(DatumioError, KeyError):
    """A class name the dataset does not have (:meth:`Dataset.class_index`).

    A :class:`KeyError` (a lookup by name failed) whose text is the message itself, not
    its quoted repr.
    """

    def __str__(self) -> str:
        return printable(self.args[0]) if self.args else ""


class IngestError(DatumioError):
    """An ingest run failed (bad input under ``on_error='raise'``, too many rejects, ...)."""


class BadInputError(IngestError):
    """Ingest stopped because of bad input files (``on_error='raise'`` or ``max_errors``)."""


class TooManyRejectsError(BadInputError):
    """More files were rejected than ``max_errors`` allows."""


class DiskFullError(IngestError):
    """Ingest could not write a file because its filesystem is full, over quota, or failed
    the write (LMDB reports a short write as an I/O error).

    The message names the file, the space left on its filesystem and what to do; ``path``
    is the file. It crosses process boundaries intact (a shard task raises it in a worker).
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[type[DiskFullError], tuple[str, str]]:
        return type(self), (self.args[0] if self.args else "", self.path)


class LoaderError(DatumioError):
    """The training loader cannot go on (no free slot, /dev/shm too small, workers dying)."""


class WorkerError(LoaderError):
    """A loader worker raised; the message holds its traceback, the record id and the shard.

    Attributes:
        batch: the batch index in the epoch, or -1 when the worker failed to start.
        record: the record id being read, or -1 when unknown.
        shard: the shard path of that record, or "" when unknown.
        worker_traceback: the worker's formatted traceback text.
    """

    def __init__(
        self, message: str, *, batch: int = -1, record: int = -1, shard: str = "", tb: str = ""
    ) -> None:
        super().__init__(message)
        self.batch = batch
        self.record = record
        self.shard = shard
        self.worker_traceback = tb

    def __str__(self) -> str:
        # Several lines (the worker's traceback): each is printable, the breaks stay.
        return "\n".join(printable(line) for line in str(self.args[0]).split("\n"))


def unknown_keywords(owner: str, given: Iterable[str], known: Iterable[str]) -> TypeError | None:
    """The TypeError for keywords of ``owner`` that are not options (None when all are),
    with the closest option name when one is near."""
    choices = sorted(known)
    bad = [name for name in given if name not in choices]
    if not bad:
        return None
    import difflib  # only on this error path: keeps `import datumio` light

    hints = []
    for name in bad:
        near = difflib.get_close_matches(name, choices, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    return TypeError(
        f"{owner}() got unexpected keyword argument(s) {', '.join(hints)}; its options are "
        f"{', '.join(choices)}"
    )


def out_of_files(exc: BaseException) -> bool:
    """Whether ``exc`` (raised by the OS, LMDB, HDF5 or Pillow) says the process or the
    system has no file handle left (EMFILE, ENFILE): a limit to name, never damaged data."""
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        return True
    text = str(exc)  # LMDB and HDF5 give the C library's text, HDF5 the errno too
    return "Too many open files" in text or "errno = 24," in text or "errno = 23," in text
