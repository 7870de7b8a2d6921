"""Datasets at a URL (``s3://``, ``gs://``, ``https://``, any fsspec protocol), read through
the local shard cache of :mod:`datumio.remote.cache`.

:func:`open_remote` fetches the manifest and the index (opening stays instant: no shard is
read), then returns a plain :class:`~datumio.shards.Dataset` over the cache directory whose
``store`` is a :class:`RemoteShards`: a shard is downloaded whole the first time a process
reads it, and :meth:`RemoteShards.prefetch` (called with the records of the batches a
worker will read next, the loader's read-ahead by plan) downloads the coming shards in a
background thread while the workers decode. Network errors are retried by fsspec (its own
retry and backoff, per protocol), then raised as :class:`RemoteError` naming the URL
(credentials and query values masked, :func:`~datumio.remote.urls.public`), the file, the
failure (:mod:`datumio.remote.failures`: connection refused or reset, TLS, DNS, timeout,
access denied) and the host; "not a datumio dataset" is kept for a URL that answers but
holds no datumio manifest. An http(s) URL's query string goes with every request
(:mod:`datumio.remote.urls`).

fsspec and the protocol's package (s3fs, gcsfs, aiohttp) are the ``datumio[remote]``
extra, imported on first use only.

Thread/fork/pickle: :class:`RemoteShards` is plain data and pickles (its storage options
with it, to the loader's own worker processes only); its download threads and fsspec
filesystem are per process and made on first use.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from datumio.errors import DatumioError, OptionError
from datumio.remote.cache import ShardCache, cache_key
from datumio.remote.failures import chain, classify, summary
from datumio.remote.urls import (
    MASK,
    QUERY_SCHEMES,
    check_url,
    is_url,
    netloc,
    object_url,
    public,
    query_values,
    split_query,
)
from datumio.shards import format as fmt
from datumio.shards.dataset import Dataset
from datumio.shards.index import INDEX_ARRAYS
from datumio.shards.manifest import names_datumio_format, read_manifest

__all__ = ["DEFAULT_CACHE_DIR", "RemoteError", "RemoteShards", "is_url", "open_remote", "public"]

#: Where caches live unless ``cache_dir`` or ``$DATUMIO_CACHE`` says otherwise.
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "datumio")
#: Shards downloaded at once by one process in the background.
PREFETCH_THREADS = 2
#: :attr:`RemoteError.kind` of a URL that answers but holds no datumio dataset.
NOT_A_DATASET = "not a datumio dataset"
#: Query values at least this long are masked wherever they show in an error's text
#: (shorter ones are masked inside URLs only: ``v=2`` hides nothing and would garble it).
_MASKED_ANYWHERE = 6
#: ``?name=value`` or ``&name=value`` of a URL in an error's text.
_QUERY_ITEM = re.compile(r"([?&][^=&#\s'\"]+=)[^&#\s'\"]+")


class RemoteError(DatumioError, OSError):
    """A remote dataset could not be read (names the URL, without credentials, and the file).

    Attributes:
        kind: what failed: a network failure (``"connection refused"``, ``"connection
            reset"``, ``"TLS failure"``, ``"DNS failure"``, ``"timed out"``),
            ``"access denied"``, ``"HTTP error"``, ``"not a datumio dataset"``, or None.
        host: the host that failed or answered (``host:port``, no credentials), or "".
    """

    def __init__(self, message: str, *, kind: str | None = None, host: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.host = host


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

    def fetch(self, relative: str) -> str:
        """Land the small file ``relative`` (an index file: a split's) in the cache now."""
        return _fetch(self, relative, None)

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
            An http(s) URL may carry a query string (``?token=...``), sent with every
            request; other schemes take none.
        cache_dir: root of the caches (default ``$DATUMIO_CACHE`` or ``~/.cache/datumio``);
            this dataset's is ``<cache_dir>/<name>-<hash>``, the hash of the URL's
            scheme, host and path (not of its credentials or query).
        cache_limit: bytes of shards the cache may hold (least recently used ones go first);
            None: no limit. The manifest and the index are always kept.
        storage_options: passed to fsspec (``{"endpoint_url": ...}``, credentials).
        dataset_options: as :class:`~datumio.shards.Dataset` (``verify_crc``, ``background``,
            ``split``: a split's files are fetched with the index when it is opened).

    Raises:
        OptionError: a query string or fragment on a scheme that takes none.
        RemoteError: the manifest or an index file cannot be fetched (its ``kind`` says
            why), or the URL answers without a datumio manifest.
        FormatError: the manifest fetched is datumio's but damaged.
    """
    url = check_url(url)
    options = dict(storage_options or {})
    base = cache_dir or os.environ.get("DATUMIO_CACHE") or DEFAULT_CACHE_DIR
    root = os.path.join(os.path.expanduser(base), cache_key(url))
    cache = ShardCache(root, cache_limit)
    probe = RemoteShards(url, root, cache_limit, (), options)
    if not names_datumio_format(_fetch(probe, fmt.MANIFEST, None)):
        raise RemoteError(
            f"{public(object_url(url, fmt.MANIFEST))} answered, but not with a datumio "
            f"manifest: the URL is {NOT_A_DATASET} (check its path; a server that answers "
            "every path with a page, a login page for instance, does this too)",
            kind=NOT_A_DATASET,
            host=netloc(url),
        )
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

        url, options = _transport(store.url, store.storage_options)
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


def _transport(url: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The URL and storage options fsspec gets. For http(s), the query string moves into
    aiohttp's ``params`` (sent with every request, object names joined onto the path) and
    ``user:password@`` into an ``Authorization`` header, so that no log line of fsspec
    shows them; other URLs as they are."""
    parts = urllib.parse.urlsplit(url)
    out = dict(options)
    if parts.scheme.lower() not in QUERY_SCHEMES:
        return url, out
    base, query = split_query(url)
    if query:
        if "params" in out:
            raise OptionError(
                f"{public(url)}: a query string in the URL and storage_options['params'] "
                "both set the query; give it once"
            )
        out["params"] = urllib.parse.parse_qsl(query, keep_blank_values=True)
    parts = urllib.parse.urlsplit(base)
    if parts.password is None:
        return base, out
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
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc(base))), out


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
        except Exception as exc:  # fsspec has retried
            raise _error(store, relative, exc, at_open=True) from _shown(exc, store)

    def download(tmp: str) -> None:
        try:
            runtime.fs.get_file(source, tmp)
        except Exception as exc:  # fsspec has retried
            raise _error(store, relative, exc, at_open=False) from _shown(exc, store)

    try:
        return cache.land(relative, size, download, replace=relative == fmt.MANIFEST)
    except RemoteError:
        raise
    except OSError as exc:  # a download cut short (its part file is gone), a full disk
        raise RemoteError(
            f"cannot download {_where(store, relative)}: {exc}; nothing was kept, the next "
            "read downloads it again"
        ) from exc


def _error(store: RemoteShards, relative: str, exc: Exception, *, at_open: bool) -> RemoteError:
    """What failed, said without secrets: a network failure or a refusing answer (with its
    host), a file that does not exist (at open: the URL is no datumio dataset), or else
    the exception's own words."""
    where = _where(store, relative)
    detail = _scrub(summary(exc), store)
    failure = classify(exc, _host(store))
    if failure is not None:
        return RemoteError(
            f"cannot {'read' if at_open else 'download'} {where}: {failure.describe()}; "
            f"{failure.advice} ({detail})",
            kind=failure.kind,
            host=failure.host,
        )
    if at_open and isinstance(exc, FileNotFoundError):
        return RemoteError(
            f"{where} does not exist: the URL is {NOT_A_DATASET}, or its ingest has not "
            "finished (the manifest is written last)",
            kind=NOT_A_DATASET,
            host=_host(store),
        )
    return RemoteError(f"cannot {'read' if at_open else 'download'} {where}: {detail}")


def _where(store: RemoteShards, relative: str) -> str:
    """The public URL of the dataset's object ``relative`` (what messages show)."""
    return public(object_url(store.url, relative))


def _host(store: RemoteShards) -> str:
    """The host a request went to when the exception names none: an http(s) URL's own,
    else the endpoint of the storage options, else the URL's (an S3 bucket, say)."""
    endpoint = store.storage_options.get("endpoint_url")
    if urllib.parse.urlsplit(store.url).scheme.lower() not in QUERY_SCHEMES and isinstance(
        endpoint, str
    ):
        return netloc(endpoint)
    return netloc(store.url)


def _secrets(store: RemoteShards) -> list[str]:
    """What must never show: the URL's password, its query values, secret storage options."""
    found = [v for v in query_values(store.url) if len(v) >= _MASKED_ANYWHERE]
    for name, value in store.storage_options.items():
        secret = any(w in name.lower() for w in ("secret", "token", "password", "key", "cred"))
        if secret and isinstance(value, str) and value:
            found.append(value)
    password = urllib.parse.urlsplit(store.url).password
    if password:
        found += [password, urllib.parse.unquote(password)]
    return found


def _scrub(text: str, store: RemoteShards) -> str:
    """``text`` without the URL's credentials, query values or any secret storage option."""
    text = _QUERY_ITEM.sub(rf"\g<1>{MASK}", text.replace(store.url, public(store.url)))
    for secret in _secrets(store):
        text = text.replace(secret, MASK)
    return text


def _shown(exc: Exception, store: RemoteShards) -> Exception | None:
    """``exc`` as the cause of the RemoteError, unless its chain holds a secret (an HTTP
    error's repr holds the URL with its query): a traceback would print it."""
    secrets = _secrets(store) + query_values(store.url)  # short values too: nothing garbles
    if any(s in f"{e!r} {e}" for e in chain(exc) for s in secrets):
        return None
    return exc
