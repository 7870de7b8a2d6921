"""Offline stage: turn a folder of images, a labels file, an importer's input or samples
given from code (:class:`Writer`) into a sharded dataset."""

from datumio.ingest.options import Encode, Format, Importer, IngestKeywords, IngestOptions, OnError
from datumio.ingest.report import IngestReport
from datumio.ingest.run import ingest
from datumio.ingest.samples import Sample, Source
from datumio.ingest.sources import Reject
from datumio.ingest.stream import write_source
from datumio.ingest.writer import Writer

__all__ = [
    "Encode",
    "Format",
    "Importer",
    "IngestKeywords",
    "IngestOptions",
    "IngestReport",
    "OnError",
    "Reject",
    "Sample",
    "Source",
    "Writer",
    "ingest",
    "write_source",
]
