"""Publish a dataset written locally to a URL: every file, then ``manifest.json`` last.

A reader opens a dataset by its manifest, so until the manifest lands nobody sees the new
dataset. A file already at the URL with the same size and the same MD5 (as the server
reports it: S3's ETag, GCS's ``md5Hash``) is not sent again: an interrupted publish, or an
ingest run again with ``--resume``, sends only what is missing or different. Where the
server reports no MD5 (plain HTTP stores), every file is sent again.

Object stores have no locks. An ingest notes the manifest at the URL when it starts
(:func:`seen_manifest`) and :func:`publish` refuses to send its own when another writer's
has appeared or changed since: the last check before the manifest, not a lock (the check
and the upload are two requests; shard files of the same names may already be replaced).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from datumio.remote.store import RemoteError, public
from datumio.shards import format as fmt


@dataclass(frozen=True)
class ManifestSeen:
    """The manifest at a URL when a run started: the SHA-256 of its bytes, or None when
    there was none (:func:`seen_manifest`)."""

    digest: str | None

    @property
    def dataset(self) -> bool:
        """Whether the URL held a published dataset."""
        return self.digest is not None


def seen_manifest(url: str, *, storage_options: Mapping[str, Any] | None = None) -> ManifestSeen:
    """What is at ``url``'s ``manifest.json`` now, for :func:`publish`'s ``seen``.

    Raises:
        RemoteError: the URL cannot be read (names it, without credentials).
    """
    import fsspec  # the datumio[remote] extra

    try:
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except Exception as exc:
        raise RemoteError(f"cannot read {public(url)}: {type(exc).__name__}: {exc}") from exc
    return ManifestSeen(_manifest_digest(fs, root, url))


def publish(
    local: str,
    url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    seen: ManifestSeen | None = None,
) -> list[str]:
    """Upload the dataset directory ``local`` to ``url``, manifest last; the files sent.

    ``seen``: the manifest at ``url`` when the run began (:func:`seen_manifest`). The
    manifest is then sent only if the one at ``url`` is still that one (or still absent).

    Raises:
        RemoteError: a file cannot be sent (names the URL, without credentials, and file),
            or another writer published at ``url`` since ``seen``.
    """
    import fsspec  # the datumio[remote] extra

    fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    files = []
    for folder, _, names in os.walk(local):
        for name in names:
            relative = os.path.relpath(os.path.join(folder, name), local).replace(os.sep, "/")
            if relative != fmt.MANIFEST and ".part-" not in name and not name.startswith("."):
                files.append(relative)
    files.sort()
    sent = []
    for k, relative in enumerate([*files, fmt.MANIFEST]):
        if relative == fmt.MANIFEST and seen is not None:
            _check_unchanged(fs, root, url, seen)
        if _put(fs, root, url, os.path.join(local, relative), relative, relative == fmt.MANIFEST):
            sent.append(relative)
        if progress is not None:
            progress(k + 1, len(files) + 1)
    return sent


def _manifest_digest(fs: Any, root: str, url: str) -> str | None:
    """SHA-256 of the manifest at ``url`` as the server has it now (no cached listing)."""
    try:
        data = fs.cat_file(f"{root.rstrip('/')}/{fmt.MANIFEST}")
    except FileNotFoundError:
        return None
    except Exception as exc:
        raise RemoteError(f"cannot read {public(url)}: {type(exc).__name__}: {exc}") from exc
    return hashlib.sha256(data).hexdigest()


def _check_unchanged(fs: Any, root: str, url: str, seen: ManifestSeen) -> None:
    if _manifest_digest(fs, root, url) == seen.digest:
        return
    what = "appeared" if seen.digest is None else "changed"
    raise RemoteError(
        f"another writer published a dataset at {public(url)} while this run was writing it "
        f"(its manifest.json {what} since the run started): this run's manifest was not "
        "sent, so readers see the other writer's dataset, but this run may have replaced its "
        "shard files of the same names. Let one writer finish, then rerun with --overwrite "
        "(or ingest into a new URL)"
    )


def upload_file(
    path: str, url: str, relative: str, *, storage_options: Mapping[str, Any] | None = None
) -> bool:
    """Send the local file ``path`` to ``url/relative`` unless a file of its size is there
    (an earlier try sent it); whether it was sent. An ingest task calls it for its shard
    as soon as the shard is whole, in the task's own process (a Dask worker's too, with
    that machine's credentials), so :func:`publish` later finds the shards there.

    Raises:
        RemoteError: the file cannot be sent (names the URL, without credentials).
    """
    import fsspec  # the datumio[remote] extra

    fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    return _put(fs, root, url, path, relative, False)


def _put(fs: Any, root: str, url: str, source: str, relative: str, always: bool) -> bool:
    target = f"{root.rstrip('/')}/{relative}"
    try:
        if not always and _same_file(fs, target, source):
            return False
        fs.put_file(source, target)
    except Exception as exc:
        raise RemoteError(
            f"cannot upload {relative} to {public(url)}: {type(exc).__name__}; the "
            "dataset there is unchanged (its manifest is sent last); run again to resume"
        ) from exc
    return True


def _same_file(fs: Any, path: str, source: str) -> bool:
    """Whether ``path`` holds the bytes of the local file ``source``, by the size and the
    MD5 the server reports (S3's ETag, plain or multipart; GCS's ``md5Hash``). A server
    that reports no MD5 never matches: the file is sent again."""
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return False
    size = os.path.getsize(source)
    if int(info.get("size", -1)) != size:
        return False
    gcs = info.get("md5Hash")
    if isinstance(gcs, str):
        return base64.b64decode(gcs) == _md5(source, size)[0]
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"').lower()
    plain = re.fullmatch(r"[0-9a-f]{32}", etag)
    multi = re.fullmatch(r"([0-9a-f]{32})-(\d+)", etag)
    if plain:
        return _md5(source, size)[0].hex() == etag
    if multi:
        parts = int(multi.group(2))
        for part in _part_sizes(size, parts):
            if _md5(source, part)[1] == multi.group(1):
                return True
    return False


def _part_sizes(size: int, parts: int) -> list[int]:
    """Part sizes an S3 multipart upload of ``size`` bytes in ``parts`` parts may have used:
    s3fs's own choice first, then whole MiB (what other tools use)."""
    candidates = []
    try:
        from s3fs.core import calculate_chunksize

        candidates.append(int(calculate_chunksize(size)))
    except Exception:  # another s3fs: try the usual sizes
        pass
    candidates += [mib * 2**20 for mib in (5, 8, 16, 50, 64, 100, 128)]
    return [p for p in dict.fromkeys(candidates) if -(-size // p) == parts]


def _md5(source: str, part: int) -> tuple[bytes, str]:
    """(MD5 of the whole file, S3 multipart ETag body for parts of ``part`` bytes)."""
    whole, parts = hashlib.md5(usedforsecurity=False), []
    with open(source, "rb") as fh:
        while chunk := fh.read(part):
            whole.update(chunk)
            parts.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    return whole.digest(), hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()
