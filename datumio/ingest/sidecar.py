"""A shard's sidecar: what finalize needs to know about the shard, without reading it.

``sidecars/shard-00003.npz`` (a NumPy ``.npz``, ``allow_pickle=False``) is written by
the task that wrote the shard, after the shard was renamed into place, so a sidecar's
presence means its shard is complete. Arrays (``n`` accepted records, in input order):

    labels          <i4 [n]        crc32        <u4 [n]       shapes  <u4 [n, 3]
    source_offsets  <i8 [n+1]      sources      u1 [B]        (UTF-8, surrogateescape)
    groups          <i4 [n]        (empty when the input has no groups)
    source_sizes    <u4 [n, 2]     upright source (width, height)
    histogram       <u8 [C, 256]   stored pixel values of all accepted records
    meta            u1 [..]        UTF-8 JSON: shard number, file, counts, checksums,
                                   source formats and the rejects (with their class ids)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.ingest.sources import Reject

SIDECARS_DIR = "sidecars"


def sidecar_path(root: str, number: int) -> str:
    return os.path.join(root, SIDECARS_DIR, f"shard-{number:05d}.npz")


def reject_to_json(reject: Reject) -> dict[str, Any]:
    return {
        "path": reject.path,
        "reason": reject.reason,
        "detail": reject.detail,
        "line": reject.line,
        "label": reject.label,
    }


def reject_from_json(obj: dict[str, Any]) -> Reject:
    return Reject(obj["path"], obj["reason"], obj["detail"], obj["line"], obj["label"])


@dataclass(frozen=True)
class Sidecar:
    """The metadata of one finished shard (see the module docstring)."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def rejects(self) -> list[Reject]:
        return [reject_from_json(r) for r in self.meta["rejects"]]


def save_sidecar(root: str, number: int, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Write the sidecar through a temporary name and a rename (retried tasks are harmless)."""
    path = sidecar_path(root, number)
    tmp = f"{path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    # ensure_ascii escapes the lone surrogates of non-UTF-8 names; json.loads restores them.
    blob = np.frombuffer(json.dumps(meta, ensure_ascii=True).encode("ascii"), dtype=np.uint8)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=blob, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def load_sidecar(root: str, number: int, meta_only: bool = False) -> Sidecar | None:
    """The sidecar of shard ``number``, or None when it is missing or unreadable."""
    try:
        with np.load(sidecar_path(root, number), allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes())
            arrays = {} if meta_only else {k: npz[k] for k in npz.files if k != "meta"}
    except Exception:  # a damaged sidecar (numpy's parser raises many types): redo the shard
        return None
    return Sidecar(meta, arrays)
