"""datumio: feed images to deep-learning training fast, with classes balanced on the fly.

``datumio.open(path)`` reads a dataset written by ``datumio-ingest``; ``datumio.ingest``
writes one; ``datumio.Sampler`` plans label-balanced epochs over its labels and
``datumio.Loader`` turns them into augmented batches in shared memory. Frameworks
(torch, tf, keras) are never imported here.
"""

import importlib as _importlib
import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any

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
from datumio.ingest import IngestOptions, IngestReport, Writer, ingest
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
    "Writer",
    "__version__",
    "from_coco",
    "from_huggingface",
    "from_webdataset",
    "ingest",
    "open",
    "resample_data",
    "split",
]


#: Functions imported on first use (``import datumio`` stays as light): name -> (module,
#: attribute). Type checkers see them through the imports below.
_LAZY = {
    "split": ("datumio.ingest.split", "split_dataset"),
    "from_coco": ("datumio.ingest.coco_ingest", "from_coco"),
    "from_huggingface": ("datumio.ingest.huggingface", "from_huggingface"),
    "from_webdataset": ("datumio.ingest.webdataset_source", "from_webdataset"),
}

if _TYPE_CHECKING:
    from datumio.ingest.coco_ingest import from_coco
    from datumio.ingest.huggingface import from_huggingface
    from datumio.ingest.split import split_dataset as split
    from datumio.ingest.webdataset_source import from_webdataset


def __getattr__(name: str) -> Any:
    """The functions of :data:`_LAZY`, imported on first use."""
    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(_importlib.import_module(module), attribute)
    raise AttributeError(f"module 'datumio' has no attribute {name!r}")
