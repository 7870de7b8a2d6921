"""``--append``: the target of a run that adds shards to an existing dataset; the manifest
is the commit (the run itself is :func:`datumio.ingest.pipeline.run_ingest`).

New shards are built in the temporary directory beside OUT, numbered after the dataset's
last shard. The new global index (old records, then the new ones) goes to a new
generation directory ``index/gNNNNN/``; then the shards and that directory are renamed
into OUT and ``manifest.json`` is replaced atomically. A reader that opened the old
manifest keeps using the old index files and old shards, which are never changed or
removed (superseded ``index/g*`` directories can be deleted by hand once no reader
uses that version). Until the manifest is replaced nothing a reader looks at changes; a
crash before it leaves only unreferenced files, which the next append replaces.

Class ids never change: existing classes keep theirs, new class names get the next ids
(in the input's order). Storage options (encoding, resize, shard size ...) are taken
from the dataset's manifest, so the new records are stored like the old ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any

import numpy as np

from datumio.errors import IngestError
from datumio.ingest import atomic
from datumio.ingest.disk import writing
from datumio.ingest.finalize import Records
from datumio.ingest.options import IngestOptions, size_from_recorded
from datumio.ingest.pipeline import Events, Target, tidy_build_dir
from datumio.ingest.plan import CONTENT_OPTIONS, Plan
from datumio.ingest.sources import Item, Listing, Reject
from datumio.shards import format as fmt
from datumio.shards.index import load_npy
from datumio.shards.manifest import Manifest, RejectSummary, read_manifest, write_manifest
from datumio.shards.writer import ShardEntry

#: Options an append takes from the dataset (the records must be stored alike).
_STORED = tuple(k for k in CONTENT_OPTIONS if k not in ("labels_file", "class_names", "fields"))


def _stored_options(manifest: Manifest, options: IngestOptions) -> IngestOptions:
    old = (manifest.ingest.options if manifest.ingest else None) or {}
    kept: dict[str, Any] = {k: old[k] for k in _STORED if k in old}
    if kept.get("size") is not None:
        kept["size"] = size_from_recorded(kept["size"])
    if kept.get("background") is not None:
        kept["background"] = tuple(kept["background"])
    kept["format"] = manifest.backend
    return dataclasses.replace(options, **kept)


def _load(out: str, rel: str) -> np.ndarray:
    return load_npy(os.path.join(out, rel), mmap_mode=None)


def _old_records(out: str, manifest: Manifest) -> Records:
    """The existing dataset's records, as if its shards' sidecars had been read."""
    records = Records()
    stats = manifest.stats
    if stats is None or stats.files is None:
        raise IngestError(
            f"{out} was written by an older datumio without stats files; re-ingest it to append"
        )
    arrays = {
        "labels": _load(out, manifest.index_path(fmt.LABELS)),
        "shapes": _load(out, manifest.index_path(fmt.SHAPES)),
        "source_offsets": _load(out, manifest.index_path(fmt.SOURCE_OFFSETS)),
        "sources": _load(out, manifest.index_path(fmt.SOURCES)),
        "groups": _load(out, manifest.index_path(fmt.GROUPS))
        if manifest.groups is not None
        else np.zeros(0, fmt.LABEL_DTYPE),
        "source_sizes": _load(out, stats.files.source_sizes),
        "histogram": _load(out, stats.files.histogram),
    }
    records.add(None, arrays, dict(stats.source_formats))
    records.shards.extend(
        ShardEntry(s.file, s.num_records, s.payload_bytes, s.file_bytes, s.records_crc32)
        for s in manifest.shards
    )
    return records


def _ids(old: list[str], new: list[str]) -> tuple[list[str], dict[str, int]]:
    names = list(old) + [n for n in new if n not in set(old)]
    return names, {n: i for i, n in enumerate(names)}


def _old_rejects(out: str, manifest: Manifest) -> list[Reject]:
    """Earlier rejects, with their class ids, so that per-class totals add up."""
    path = os.path.join(out, (manifest.rejects or RejectSummary()).file)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [
        Reject(r["path"], r["reason"], r.get("detail", ""), r.get("line"), r.get("label"))
        for r in rows
    ]


class Append(Target):
    """New shards after those of the dataset at ``out`` (see the module docstring).

    Reads the dataset's manifest when made: the run's classes, options, shard numbers and
    generation follow from it. With ``resume``, the build of an earlier run of the same
    append (same plan, same dataset version) is adopted and its finished shards kept.

    Raises:
        FormatError: ``out`` is not a dataset this datumio reads.
    """

    def __init__(self, out: str, resume: bool = False) -> None:
        self._out = out
        self._resume = resume
        self._manifest = read_manifest(out)
        if not self._manifest.has_images:
            raise IngestError(
                f"{out} has no images (a table of labels and fields): --append to it is not "
                "supported yet; re-ingest everything"
            )
        if self._manifest.fields:
            raise IngestError(
                f"{out} has record fields ({', '.join(f.name for f in self._manifest.fields)}): "
                "--append to a dataset with fields is not supported yet; re-ingest everything"
            )

    def stored_options(self, options: IngestOptions) -> IngestOptions:
        return _stored_options(self._manifest, options)

    def relabel(self, listing: Listing) -> Listing:
        """Existing classes and groups keep their ids; new names get the next ones."""
        manifest = self._manifest
        if not listing.images:
            raise IngestError(
                f"--append cannot add records without images (a labels file without paths) "
                f"to {self._out}, whose records have images"
            )
        if listing.fields:
            raise IngestError(
                "--append cannot add records with fields (the labels file's columns "
                f"{', '.join(f.name for f in listing.fields)}) to {self._out}, which has none"
            )
        class_names, class_ids = _ids(list(manifest.class_names), listing.class_names)
        old_groups = None if manifest.groups is None else list(manifest.groups.names)
        if (old_groups is None) != (listing.group_names is None):
            raise IngestError("the dataset and the new input must both have groups, or neither")
        group_names, group_ids = _ids(old_groups or [], listing.group_names or [])
        items = [
            Item(
                i.rel,
                class_ids[listing.class_names[i.label]],
                None
                if i.group is None or listing.group_names is None
                else group_ids[listing.group_names[i.group]],
            )
            for i in listing.items
        ]
        rejects = [
            dataclasses.replace(
                r, label=None if r.label is None else class_ids[listing.class_names[r.label]]
            )
            for r in listing.rejects
        ]
        return Listing(
            items=items,
            class_names=class_names,
            rejects=rejects,
            group_names=group_names if old_groups is not None else None,
            kind=listing.kind,
        )

    @property
    def first_shard(self) -> int:
        return max(int(os.path.basename(s.file)[6:11]) for s in self._manifest.shards) + 1

    @property
    def generation(self) -> int:
        return self._manifest.generation + 1

    @property
    def index_dir(self) -> str:
        return f"{fmt.INDEX_DIR}/g{self.generation:05d}"

    def build_dir(self, plan: Plan) -> str:
        return atomic.build_dir(self._out, plan, self._resume)

    def identity(self, tmp: str, plan: Plan) -> str:
        """An append keeps the dataset's identity (readers tell it from a replacement by
        that); a dataset written before identities existed gets one now."""
        return self._manifest.dataset_id or plan.dataset_id

    def records(self) -> Records:
        return _old_records(self._out, self._manifest)

    def earlier_rejects(self) -> list[Reject]:
        return _old_rejects(self._out, self._manifest)

    def commit(self, tmp: str, manifest: Manifest, events: Events | None) -> Manifest:
        tidy_build_dir(tmp)
        # The stored splits stay as they were: the new records are in no split until the
        # dataset is split again (datumio split).
        manifest = dataclasses.replace(manifest, splits=self._manifest.splits)
        committed = _commit(tmp, self._out, self.index_dir, self.generation, manifest, events)
        atomic.discard(tmp)  # what is left of the build: its emptied directories
        return committed


def _commit(
    tmp: str,
    out: str,
    index_dir: str,
    generation: int,
    manifest: Manifest,
    events: Events | None,
) -> Manifest:
    """Move the new shards, index generation and rejects into OUT; the manifest last.

    Until the manifest is replaced, OUT is the previous version (the files moved in are not
    in its manifest; a rerun of the same append replaces them). Returns the manifest written.
    """
    for name in sorted(os.listdir(os.path.join(tmp, fmt.SHARDS_DIR))):
        os.replace(os.path.join(tmp, fmt.SHARDS_DIR, name), os.path.join(out, fmt.SHARDS_DIR, name))
    if events is not None:
        events("commit")
    target = os.path.join(out, index_dir)
    if os.path.exists(target):  # left by an append that died before its commit
        shutil.rmtree(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(os.path.join(tmp, index_dir), target)
    rejects_name = f"rejects-g{generation:05d}.jsonl"
    os.replace(os.path.join(tmp, fmt.REJECTS), os.path.join(out, rejects_name))
    rejects = dataclasses.replace(manifest.rejects or RejectSummary(), file=rejects_name)
    manifest = dataclasses.replace(manifest, rejects=rejects)
    with writing(os.path.join(tmp, fmt.MANIFEST)):
        write_manifest(tmp, manifest)
    os.replace(os.path.join(tmp, fmt.MANIFEST), os.path.join(out, fmt.MANIFEST))
    return manifest
