"""Datasets at a URL (``s3://``, ``gs://``, ``https://``, any fsspec protocol), read through
the local shard cache of :mod:`datumio.remote.cache`.

:func:`open_remote` fetches the manifest and the index (opening stays instant: no shard is
read), then returns a plain :class:`~datumio.shards.Dataset` over the cache directory whose
``store`` is a :class:`RemoteShards`: a shard is downloaded whole the first time a process
reads it, and :meth:`RemoteShards.prefetch` (called with the records of the batches a
worker will read next, the loader's read-ahead by plan) downloads the coming shards in a
background thread while the workers decode. Network errors are retried by fsspec (its own
retry and backoff, per protocol), then raised as :class:`RemoteError` naming the URL
(credentials removed) and the shard.

fsspec and the protocol's package (s3fs, gcsfs, aiohttp) are the ``datumio[remote]``
extra, imported on first use only.

Thread/fork/pickle: :class:`RemoteShards` is plain data and pickles (its storage options
with it, to the loader's own worker processes only); its download threads and fsspec
filesystem are per process and made on first use.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from datumio.errors import DatumioError
from datumio.remote.cache import ShardCache, cache_key
from datumio.shards import format as fmt
from datumio.shards.dataset import Dataset
from datumio.shards.index import INDEX_ARRAYS
from datumio.shards.manifest import read_manifest

#: Where caches live unless ``cache_dir`` or ``$DATUMIO_CACHE`` says otherwise.
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "datumio")
#: Shards downloaded at once by one process in the background.
PREFETCH_THREADS = 2


class RemoteError(DatumioError, OSError):
    """A remote dataset could not be read (names the URL, without credentials, and the file)."""


def is_url(path: object) -> bool:
    """Whether ``path`` names a remote dataset (``scheme://...``; ``file://`` included)."""
    return isinstance(path, str) and "://" in path


def public(url: str) -> str:
    """``url`` without user, password or query string (what may appear in messages)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True, repr=False)
class RemoteShards:
    """Where each shard of one remote dataset comes from and lands (picklable)."""

    url: str
    cache_root: str
    limit: int | None
    #: (path relative to the dataset, size in bytes) per shard, from the manifest.
    files: tuple[tuple[str, int], ...]
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never the URL's credentials or the storage options
        return (
            f"RemoteShards({public(self.url)!r}, {len(self.files)} shards, cache "
            f"{self.cache_root!r}, limit {self.limit})"
        )

    def local(self, shard: int) -> str:
        return os.path.join(self.cache_root, self.files[shard][0])

    def present(self, shard: int) -> bool:
        relative, size = self.files[shard]
        try:
            return os.path.getsize(os.path.join(self.cache_root, relative)) == size
        except OSError:
            return False

    def ensure(self, shard: int) -> str:
        """The local path of ``shard``, downloaded first when the cache lacks it."""
        relative, size = self.files[shard]
        return _fetch(self, relative, size)

    def pin(self, shard: int) -> int | None:
        """A read-only fd holding ``shard`` against eviction (None: not in the cache)."""
        return ShardCache(self.cache_root, self.limit).pin(self.files[shard][0])

    def prefetch(self, shards: Iterable[int]) -> None:
        """Start downloading ``shards`` that are not in the cache (background threads)."""
        for shard in shards:
            if not self.present(shard):
                _runtime(self).submit(self, shard)


def open_remote(
    url: str,
    *,
    cache_dir: str | None = None,
    cache_limit: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **dataset_options: Any,
) -> Dataset:
    """Open the dataset at ``url`` through its local cache; see the module doc.

    Args:
        url: ``s3://bucket/out.lmdb``, ``https://host/out.lmdb``, ... (the dataset directory).
        cache_dir: root of the caches (default ``$DATUMIO_CACHE`` or ``~/.cache/datumio``);
            this dataset's is ``<cache_dir>/<name>-<hash of url>``.
        cache_limit: bytes of shards the cache may hold (least recently used ones go first);
            None: no limit. The manifest and the index are always kept.
        storage_options: passed to fsspec (``{"endpoint_url": ...}``, credentials).
        dataset_options: as :class:`~datumio.shards.Dataset` (``verify_crc``, ``background``).

    Raises:
        RemoteError: the manifest or an index file cannot be fetched.
        FormatError: what was fetched is not a datumio dataset.
    """
    options = dict(storage_options or {})
    base = cache_dir or os.environ.get("DATUMIO_CACHE") or DEFAULT_CACHE_DIR
    root = os.path.join(os.path.expanduser(base), cache_key(public(url)))
    cache = ShardCache(root, cache_limit)
    probe = RemoteShards(url, root, cache_limit, (), options)
    _fetch(probe, fmt.MANIFEST, None)
    manifest = read_manifest(root)
    names = [n for n in INDEX_ARRAYS if n != fmt.GROUPS or manifest.groups is not None]
    for name in names:
        _fetch(probe, manifest.index_path(name), None)
    if manifest.rejects is not None and manifest.rejects.count:
        _fetch(probe, manifest.rejects.file, None)
    files = tuple((s.file, s.file_bytes) for s in manifest.shards)
    cache.clean(dict(files))
    cache.write_source(public(url))
    store = RemoteShards(url, root, cache_limit, files, options)
    return Dataset(root, store=store, **dataset_options)


# -- per process: the filesystem and the download threads --------------------------------


class _Runtime:
    """One process's fsspec filesystem and prefetch threads for one URL and its options."""

    def __init__(self, store: RemoteShards) -> None:
        import fsspec  # the datumio[remote] extra

        url, options = _credentials_out_of_url(store.url, store.storage_options)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise RemoteError(
                f"cannot read {public(store.url)}: {exc}. Install the datumio[remote] extra "
                "(fsspec, s3fs) and, for gs://, gcsfs"
            ) from exc
        self.pool = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="datumio-fetch")
        self.pending: dict[int, Future[str]] = {}
        self.lock = threading.Lock()

    def submit(self, store: RemoteShards, shard: int) -> None:
        with self.lock:
            if shard in self.pending and not self.pending[shard].done():
                return
            self.pending[shard] = self.pool.submit(store.ensure, shard)


_RUNTIMES: dict[tuple[int, str, str], _Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def _credentials_out_of_url(url: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """For http(s), ``user:password@`` moved from the URL into aiohttp's ``BasicAuth`` (so
    that no log line of fsspec shows them); other URLs as they are."""
    parts = urllib.parse.urlsplit(url)
    out = dict(options)
    if parts.scheme not in ("http", "https") or parts.password is None:
        return url, out
    import aiohttp

    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password)
    client = dict(out.get("client_kwargs") or {})
    encode = getattr(aiohttp, "encode_basic_auth", None)
    if encode is not None:  # aiohttp >= 3.14
        client["headers"] = {
            **dict(client.get("headers") or {}),
            "Authorization": encode(user, password),
        }
    else:
        client["auth"] = aiohttp.BasicAuth(user, password)
    out["client_kwargs"] = client
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), out


def _runtime(store: RemoteShards) -> _Runtime:
    # Per process (a forked child makes its own), URL and options: a new open with other
    # options gets a filesystem of its own.
    options = json.dumps(store.storage_options, sort_keys=True, default=repr)
    key = (os.getpid(), store.url, options)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            runtime = _RUNTIMES[key] = _Runtime(store)
        return runtime


def _fetch(store: RemoteShards, relative: str, size: int | None) -> str:
    """Land ``relative`` in the cache. ``size`` None: a small file read at open (manifest,
    index), sized by the server; the manifest is fetched again every time (an append
    replaces it; index files of each generation have their own names)."""
    runtime = _runtime(store)
    cache = ShardCache(store.cache_root, store.limit)
    source = f"{runtime.root.rstrip('/')}/{relative}"
    if size is None:
        try:
            size = int(runtime.fs.size(source))
        except FileNotFoundError as exc:
            raise RemoteError(
                f"{public(store.url)}/{relative} does not exist: the URL is not a datumio "
                "dataset, or its ingest has not finished (the manifest is written last)"
            ) from exc
        except Exception as exc:
            raise RemoteError(
                f"cannot read {public(store.url)}/{relative}: {_scrub(exc, store)}"
            ) from exc

    def download(tmp: str) -> None:
        try:
            runtime.fs.get_file(source, tmp)
        except Exception as exc:  # fsspec has retried; say what failed, not the secrets
            raise RemoteError(
                f"cannot download {public(store.url)}/{relative}: {_scrub(exc, store)}"
            ) from exc

    try:
        return cache.land(relative, size, download, replace=relative == fmt.MANIFEST)
    except RemoteError:
        raise
    except OSError as exc:  # a download cut short (its part file is gone), a full disk
        raise RemoteError(
            f"cannot download {public(store.url)}/{relative}: {exc}; nothing was kept, the "
            "next read downloads it again"
        ) from exc


def _scrub(exc: BaseException, store: RemoteShards) -> str:
    """``exc`` as text without the URL's credentials or any secret storage option."""
    text = f"{type(exc).__name__}: {exc}"
    text = text.replace(store.url, public(store.url))
    for name, value in store.storage_options.items():
        secret = any(w in name.lower() for w in ("secret", "token", "password", "key", "cred"))
        if secret and isinstance(value, str) and value:
            text = text.replace(value, "***")
    password = urllib.parse.urlsplit(store.url).password
    return text.replace(password, "***") if password else text
