"""The datumio error tree.

Every error raised on purpose by datumio derives from :class:`DatumioError`, and its
message says what failed, the value involved, what was expected and what to change.
"""

from __future__ import annotations


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


class DecodeError(DatumioError):
    """Bytes could not be decoded into an image; ``reason`` is a short, stable phrase."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class IngestError(DatumioError):
    """An ingest run failed (bad input under ``on_error='raise'``, too many rejects, ...)."""


class BadInputError(IngestError):
    """Ingest stopped because of bad input files (``on_error='raise'`` or ``max_errors``)."""


class TooManyRejectsError(BadInputError):
    """More files were rejected than ``max_errors`` allows."""
