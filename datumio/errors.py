"""The datumio error tree.

Every error raised on purpose by datumio derives from :class:`DatumioError`, and its
message says what failed, the value involved, what was expected and what to change.
"""

from __future__ import annotations

from collections.abc import Iterable


class DatumioError(Exception):
    """Base class of every error datumio raises on purpose."""


class OptionError(DatumioError, ValueError):
    """An option has a value that is not allowed."""


class FormatError(DatumioError):
    """A dataset on disk is missing, malformed or inconsistent."""


class FormatVersionError(FormatError):
    """A dataset was written by a newer (or unknown) format version than this reader knows."""


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
        return str(self.args[0]) if self.args else ""


class IngestError(DatumioError):
    """An ingest run failed (bad input under ``on_error='raise'``, too many rejects, ...)."""


class BadInputError(IngestError):
    """Ingest stopped because of bad input files (``on_error='raise'`` or ``max_errors``)."""


class TooManyRejectsError(BadInputError):
    """More files were rejected than ``max_errors`` allows."""


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
