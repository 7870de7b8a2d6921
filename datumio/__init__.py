"""datumio: feed images to deep-learning training fast, with classes balanced on the fly.

``datumio.open(path)`` reads a dataset written by ``datumio-ingest``; ``datumio.ingest``
writes one; ``datumio.Sampler`` plans label-balanced epochs over its labels. Frameworks
(torch, tf, keras) are never imported here.
"""

from datumio._version import __version__
from datumio.errors import (
    DatumioError,
    FormatError,
    FormatVersionError,
    IngestError,
    OptionError,
    RecordError,
)
from datumio.ingest import IngestOptions, IngestReport, ingest
from datumio.sampling import Sampler, SamplerOptions, SamplingPlan, resample_data
from datumio.shards import Dataset, open

__all__ = [
    "Dataset",
    "DatumioError",
    "FormatError",
    "FormatVersionError",
    "IngestError",
    "IngestOptions",
    "IngestReport",
    "OptionError",
    "RecordError",
    "Sampler",
    "SamplerOptions",
    "SamplingPlan",
    "__version__",
    "ingest",
    "open",
    "resample_data",
]
