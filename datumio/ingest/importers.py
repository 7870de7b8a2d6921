"""Which importer reads SRC: told by ``IngestOptions.importer``, or from SRC itself (``auto``).

Folders, labels files and COCO JSON are *listings* (every item known before the first
shard, :func:`datumio.ingest.pipeline.list_input`); a Hugging Face dataset and WebDataset
tars are *streams* (:class:`~datumio.ingest.samples.Source`, written by
:func:`datumio.ingest.stream.write_source`). The importers' modules are imported here on
first use (their packages, pyarrow for one, load only then).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Sequence
from typing import Any

from datumio.ingest.options import Importer, IngestOptions
from datumio.ingest.samples import Source

#: The importers whose input is a stream of samples.
STREAMS = ("huggingface", "webdataset")
#: Files a Hugging Face ``save_to_disk`` folder holds.
_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def _is_coco(labels_file: str) -> bool:
    """A ``.json`` labels file whose top level has ``images`` and ``annotations``: read only
    its first 64 KiB (COCO writes ``info``/``licenses`` then ``images`` first)."""
    if not labels_file.lower().endswith(".json"):
        return False
    try:
        with open(labels_file, encoding="utf-8", errors="replace") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    return '"images"' in head or '"annotations"' in head or '"categories"' in head


def _has_tars(path: str) -> bool:
    return any(name.endswith((".tar", ".tar.gz", ".tgz")) for name in os.listdir(path))


def _is_huggingface(path: str) -> bool:
    if path.lower().endswith((".parquet", ".pq")):
        return True
    if not os.path.isdir(path):
        return False
    names = set(os.listdir(path))
    if names & set(_HF_MARKERS):
        return True
    top = [n for n in names if n.endswith(".parquet")]
    return bool(top) or bool(
        glob.glob(os.path.join(path, "data", "**", "*.parquet"), recursive=True)
    )


def resolve(src: Any, options: IngestOptions) -> Importer:
    """The importer of ``src`` (``options.importer``, or told from SRC when ``auto``)."""
    if options.importer != "auto":
        return options.importer
    if options.labels_file is not None:
        return "coco" if _is_coco(options.labels_file) else "labels"
    if not isinstance(src, str | os.PathLike):
        return "webdataset" if _tar_list(src) else "huggingface"
    path = os.fspath(src)
    if "{" in path or path.endswith(".tar") or (os.path.isdir(path) and _has_tars(path)):
        return "webdataset"
    return "huggingface" if _is_huggingface(path) else "folders"


def _tar_list(src: Any) -> bool:
    return isinstance(src, Sequence) and all(isinstance(s, str | os.PathLike) for s in src)


def open_source(kind: Importer, src: Any, options: IngestOptions) -> Source:
    """The stream of an importer of :data:`STREAMS` over ``src``."""
    if kind == "huggingface":
        from datumio.ingest.huggingface import huggingface_source

        return huggingface_source(src, options)
    from datumio.ingest.webdataset_source import webdataset_source

    return webdataset_source(src, options)


def describe(src: Any) -> str:
    """``src`` as shown in messages."""
    if isinstance(src, str | os.PathLike):
        return os.fspath(src)
    return json.dumps([os.fspath(s) for s in src]) if _tar_list(src) else type(src).__name__
