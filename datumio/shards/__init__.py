"""The on-disk format: manifest, global index and LMDB/HDF5 shards (see ``format.py``)."""

from datumio.shards.dataset import Dataset
from datumio.shards.format import FORMAT_NAME, FORMAT_VERSION

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Dataset"]
