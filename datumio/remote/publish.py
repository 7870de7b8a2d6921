"""Publish a dataset written locally to a URL: every file, then ``manifest.json`` last.

A reader opens a dataset by its manifest, so until the manifest lands nobody sees the new
dataset (an older manifest keeps pointing at the files it lists, which this never
changes). A file already at the URL with the same size is not sent again: an interrupted
publish, or an ingest run again with ``--resume``, sends only what is missing. Every
shard's records carry CRC32s that readers check, so a same-size file with other bytes is
found at read time (and by ``datumio verify URL``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from datumio.remote.store import RemoteError, public
from datumio.shards import format as fmt


def publish(
    local: str,
    url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Upload the dataset directory ``local`` to ``url``, manifest last; the files sent.

    Raises:
        RemoteError: a file cannot be sent (names the URL, without credentials, and file).
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
        source = os.path.join(local, relative)
        target = f"{root.rstrip('/')}/{relative}"
        try:
            if relative != fmt.MANIFEST and _same_size(fs, target, os.path.getsize(source)):
                continue
            fs.put_file(source, target)
        except Exception as exc:
            raise RemoteError(
                f"cannot upload {relative} to {public(url)}: {type(exc).__name__}; the "
                "dataset there is unchanged (its manifest is sent last); run again to resume"
            ) from exc
        sent.append(relative)
        if progress is not None:
            progress(k + 1, len(files) + 1)
    return sent


def _same_size(fs: Any, path: str, size: int) -> bool:
    try:
        return int(fs.size(path)) == size
    except FileNotFoundError:
        return False
