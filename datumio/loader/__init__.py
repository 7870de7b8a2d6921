"""The training loader: a shared-memory slot ring, persistent workers, the ordered iterator."""

from datumio.loader.loader import Loader
from datumio.loader.options import LoaderOptions
from datumio.loader.slots import remove_stale_segments
from datumio.loader.stats import LoaderStats

__all__ = ["Loader", "LoaderOptions", "LoaderStats", "remove_stale_segments"]
