"""The training loader: a shared-memory slot ring, persistent workers, the ordered iterator."""

from datumio.loader.loader import Loader
from datumio.loader.options import Decode, Extra, LoaderKeywords, LoaderOptions, StartMethod
from datumio.loader.slots import remove_stale_segments
from datumio.loader.stats import LoaderStats

__all__ = [
    "Decode",
    "Extra",
    "Loader",
    "LoaderKeywords",
    "LoaderOptions",
    "LoaderStats",
    "StartMethod",
    "remove_stale_segments",
]
