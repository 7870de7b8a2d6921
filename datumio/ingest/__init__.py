"""Offline stage: turn a folder of images (or a labels file) into a sharded dataset."""

from datumio.ingest.options import Encode, Format, IngestKeywords, IngestOptions, OnError
from datumio.ingest.report import IngestReport
from datumio.ingest.run import ingest
from datumio.ingest.sources import Reject

__all__ = [
    "Encode",
    "Format",
    "IngestKeywords",
    "IngestOptions",
    "IngestReport",
    "OnError",
    "Reject",
    "ingest",
]
