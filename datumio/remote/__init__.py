"""Datasets in object storage: ``s3://``, ``gs://``, ``https://`` (any fsspec protocol),
read through a local shard cache (``docs/remote.md``)."""

from __future__ import annotations

import os
from typing import Any

from datumio.remote.store import RemoteError, RemoteShards, open_remote
from datumio.remote.urls import is_url, public
from datumio.shards.dataset import Dataset

__all__ = [
    "RemoteError",
    "RemoteShards",
    "is_url",
    "local_copy",
    "open_dataset",
    "open_remote",
    "public",
]


def open_dataset(path: str | os.PathLike[str], **options: Any) -> Dataset:
    """A dataset directory, or a URL through its local cache (:func:`open_remote`'s
    ``cache_dir``, ``cache_limit`` and ``storage_options`` apply to URLs only)."""
    if is_url(path):
        return open_remote(str(path), **options)
    return Dataset(path, **options)


def local_copy(path: str, **options: Any) -> str:
    """``path`` itself, or for a URL its cache directory with every shard downloaded: what
    the whole-dataset checks (``datumio inspect``, ``datumio verify``) read."""
    if not is_url(path):
        return path
    ds = open_remote(path, **options)
    if ds.store is not None:
        for shard in range(ds.num_shards):
            ds.store.ensure(shard)
    return ds.path
