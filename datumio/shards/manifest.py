"""Reading and writing ``manifest.json``, with the format version check."""

from __future__ import annotations

import json
import os
from typing import Any

from datumio.errors import FormatError, FormatVersionError
from datumio.shards import format as fmt


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(root: str) -> dict[str, Any]:
    """Load and check a dataset's manifest; refuse newer format versions."""
    path = os.path.join(root, fmt.MANIFEST)
    if not os.path.isdir(root):
        what = "it is a file" if os.path.exists(root) else "no such directory"
        raise FormatError(f"{root} is not a dataset directory ({what})")
    if not os.path.isfile(path):
        raise FormatError(
            f"{root} has no {fmt.MANIFEST}: it is not a datumio dataset, or its ingest did not "
            "finish (rerun datumio-ingest)"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            manifest: dict[str, Any] = json.load(fh)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path} is not valid JSON: {exc}") from exc
    check_version(manifest, path)
    return manifest


def check_version(manifest: dict[str, Any], where: str) -> None:
    """Raise unless ``manifest`` names this format at a version this reader knows."""
    if manifest.get("format") != fmt.FORMAT_NAME:
        raise FormatError(
            f"{where}: format is {manifest.get('format')!r}, expected {fmt.FORMAT_NAME!r}"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise FormatError(f"{where}: format_version is {version!r}, expected an integer")
    if version > fmt.FORMAT_VERSION:
        raise FormatVersionError(
            f"{where} uses datumio format version {version}, but this datumio reads versions "
            f"up to {fmt.FORMAT_VERSION}: upgrade datumio (pip install -U datumio)"
        )
    if version < 1:
        raise FormatVersionError(f"{where}: format_version {version} is not a known version")
