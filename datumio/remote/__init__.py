"""Datasets in object storage: ``s3://``, ``gs://``, ``https://`` (any fsspec protocol),
read through a local shard cache (``docs/remote.md``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from datumio.errors import printable, unknown_keywords
from datumio.remote.store import RemoteError, RemoteShards, open_remote
from datumio.remote.urls import is_url, public
from datumio.shards.dataset import Dataset
from datumio.shards.splits import split_files

__all__ = [
    "OpenKeywords",
    "RemoteError",
    "RemoteShards",
    "is_url",
    "local_copy",
    "open_dataset",
    "open_remote",
    "public",
]


class OpenKeywords(TypedDict, total=False):
    """The keywords of ``datumio.open(path, ...)``: those of
    :class:`~datumio.shards.Dataset` (``verify_crc``, ``background``, ``max_open_shards``,
    ``split``) and, for a URL, those of :func:`open_remote` (``cache_dir``, ``cache_limit``,
    ``storage_options``); their defaults and meaning are documented there."""

    verify_crc: bool
    background: tuple[int, int, int] | None
    max_open_shards: int | None
    split: str | None
    cache_dir: str | None
    cache_limit: int | None
    storage_options: Mapping[str, Any] | None


#: The keywords of :class:`OpenKeywords` that only a dataset at a URL takes.
REMOTE_KEYWORDS = ("cache_dir", "cache_limit", "storage_options")


def open_dataset(path: str | os.PathLike[str], **options: Unpack[OpenKeywords]) -> Dataset:
    """Open a dataset directory, or a URL through its local cache.

    Args:
        path: the dataset directory, or its URL (``s3://...``, ``https://...``).
        options: see :class:`OpenKeywords`; ``cache_dir``, ``cache_limit`` and
            ``storage_options`` apply to URLs only.

    Raises:
        TypeError: a keyword that is not an option (with the closest name), or a URL's
            keyword given with a local directory.
        OptionError: ``split`` names no stored split (the message lists them).
    """
    error = unknown_keywords("open", options, OpenKeywords.__annotations__)
    if error is not None:
        raise error
    if is_url(path):
        return open_remote(str(path), **options)
    remote = [name for name in REMOTE_KEYWORDS if name in options]
    if remote:
        raise TypeError(
            f"open() got {', '.join(remote)} for {printable(os.fspath(path))!r}, a local "
            "directory: they apply to a dataset at a URL only; leave them out"
        )
    local: dict[str, Any] = dict(options)
    return Dataset(path, **local)


def local_copy(path: str, **options: Any) -> str:
    """``path`` itself, or for a URL its cache directory with every shard downloaded: what
    the whole-dataset checks (``datumio inspect``, ``datumio verify``) read."""
    if not is_url(path):
        return path
    ds = open_remote(path, **options)
    if ds.store is not None:
        for shard in range(ds.num_shards):
            ds.store.ensure(shard)
        for relative in split_files(ds.manifest):
            ds.store.fetch(relative)
    return ds.path
