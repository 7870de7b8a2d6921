"""datumio: feed images to deep-learning training fast, with classes balanced on the fly.

``datumio.open(path)`` reads a dataset written by ``datumio-ingest``; ``datumio.ingest``
writes one; ``datumio.Sampler`` plans label-balanced epochs over its labels and
``datumio.Loader`` turns them into augmented batches in shared memory. Frameworks
(torch, tf, keras) are never imported here.
"""

import sys as _sys

if _sys.platform == "win32":  # checked first: the loader needs POSIX shared memory
    raise ImportError(
        "datumio runs on Linux (tested) and macOS, not on Windows: its loader needs POSIX "
        "shared memory and fork-server workers. Use WSL2 or a Linux container"
    )

from datumio._version import __version__
from datumio.augment import Transform
from datumio.errors import (
    DatasetReplacedError,
    DatumioError,
    DiskFullError,
    FileLimitError,
    FormatError,
    FormatVersionError,
    IngestError,
    LoaderError,
    NoImageError,
    OptionError,
    RecordError,
    TransformError,
    UnknownClassError,
    WorkerError,
)
from datumio.ingest import IngestOptions, IngestReport, ingest
from datumio.loader import Loader, LoaderOptions, LoaderStats
from datumio.remote import open_dataset as open
from datumio.sampling import Sampler, SamplerOptions, SamplingPlan, resample_data
from datumio.shards import Dataset

__all__ = [
    "Dataset",
    "DatasetReplacedError",
    "DatumioError",
    "DiskFullError",
    "FileLimitError",
    "FormatError",
    "FormatVersionError",
    "IngestError",
    "IngestOptions",
    "IngestReport",
    "Loader",
    "LoaderError",
    "LoaderOptions",
    "LoaderStats",
    "NoImageError",
    "OptionError",
    "RecordError",
    "Sampler",
    "SamplerOptions",
    "SamplingPlan",
    "Transform",
    "TransformError",
    "UnknownClassError",
    "WorkerError",
    "__version__",
    "ingest",
    "open",
    "resample_data",
]
