"""``--append``: add shards for new files to an existing dataset; the manifest is the commit.

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
import time
from concurrent.futures import Executor
from typing import Any

import numpy as np

from datumio.errors import IngestError
from datumio.ingest import atomic
from datumio.ingest.finalize import DatasetInfo, Records, read_sidecars, write_dataset
from datumio.ingest.options import IngestOptions
from datumio.ingest.pipeline import (
    Events,
    Progress,
    RejectPolicy,
    Stop,
    check_paths,
    executor_for,
    list_input,
    no_usable_image,
    ordered_items,
    plan_tasks,
    run_shards,
    tidy_build_dir,
    work_spec,
)
from datumio.ingest.plan import CONTENT_OPTIONS, make_plan
from datumio.ingest.report import IngestReport
from datumio.ingest.sidecar import SIDECARS_DIR
from datumio.ingest.sources import Item, Reject
from datumio.shards import format as fmt
from datumio.shards.index import load_npy
from datumio.shards.manifest import read_manifest, write_json_atomic
from datumio.shards.writer import ShardEntry

#: Options an append takes from the dataset (the records must be stored alike).
_STORED = tuple(k for k in CONTENT_OPTIONS if k not in ("labels_file", "class_names"))


def _stored_options(manifest: dict[str, Any], options: IngestOptions) -> IngestOptions:
    old = manifest.get("ingest", {}).get("options", {})
    kept: dict[str, Any] = {k: old[k] for k in _STORED if k in old}
    for key in ("size", "background"):
        if kept.get(key) is not None:
            kept[key] = tuple(kept[key])
    return dataclasses.replace(options, format=manifest["backend"], **kept)


def _load(out: str, manifest: dict[str, Any], name: str) -> np.ndarray:
    return load_npy(os.path.join(out, manifest["index"][name]), mmap_mode=None)


def _old_records(out: str, manifest: dict[str, Any]) -> Records:
    """The existing dataset's records, as if its shards' sidecars had been read."""
    records = Records()
    stats = manifest["stats"]
    files = stats.get("files")
    if not files:
        raise IngestError(
            f"{out} was written by an older datumio without stats files; re-ingest it to append"
        )
    labels = _load(out, manifest, "labels")
    arrays = {
        "labels": labels,
        "shapes": _load(out, manifest, "shapes"),
        "source_offsets": _load(out, manifest, "source_offsets"),
        "sources": _load(out, manifest, "sources"),
        "groups": _load(out, manifest, "groups")
        if "groups" in manifest["index"]
        else np.zeros(0, fmt.LABEL_DTYPE),
        "source_sizes": load_npy(os.path.join(out, files["source_sizes"]), mmap_mode=None),
        "histogram": load_npy(os.path.join(out, files["histogram"]), mmap_mode=None),
    }
    records.add(None, arrays, stats.get("source_formats", {}))
    records.shards.extend(
        ShardEntry(
            s["file"], s["num_records"], s["payload_bytes"], s["file_bytes"], s["records_crc32"]
        )
        for s in manifest["shards"]
    )
    return records


def _ids(old: list[str], new: list[str]) -> tuple[list[str], dict[str, int]]:
    names = list(old) + [n for n in new if n not in set(old)]
    return names, {n: i for i, n in enumerate(names)}


def _old_rejects(out: str, manifest: dict[str, Any]) -> list[Reject]:
    """Earlier rejects, with their class ids, so that per-class totals add up."""
    path = os.path.join(out, manifest["rejects"]["file"])
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [
        Reject(r["path"], r["reason"], r.get("detail", ""), r.get("line"), r.get("label"))
        for r in rows
    ]


def append(
    src: str,
    out: str,
    options: IngestOptions,
    *,
    executor: Executor | None,
    progress: Progress | None,
    events: Events | None = None,
    stop: Stop | None = None,
) -> IngestReport:
    """Add the files below ``src`` to the dataset at ``out`` (see the module docstring)."""
    check_paths(src, out, options)
    started = time.perf_counter()
    manifest = read_manifest(out)
    options = _stored_options(manifest, options)
    listing = list_input(src, options)
    class_names, class_ids = _ids(manifest["class_names"], listing.class_names)
    old_groups = (manifest.get("groups") or {}).get("names")
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
        for i in ordered_items(listing.items, options)
    ]
    rejects = RejectPolicy(options)
    for r in listing.rejects:
        label = None if r.label is None else class_ids[listing.class_names[r.label]]
        rejects.add(dataclasses.replace(r, label=label))
    numbers = [int(os.path.basename(s["file"])[6:11]) for s in manifest["shards"]]
    generation = int(manifest.get("generation", 0)) + 1
    backend = manifest["backend"]
    plan = make_plan(src, items, class_names, options, backend, first_shard=max(numbers) + 1)
    atomic.clean_stale(out)
    tmp = atomic.make_tmp(out)
    os.makedirs(os.path.join(tmp, fmt.SHARDS_DIR))
    os.makedirs(os.path.join(tmp, SIDECARS_DIR))
    index_dir = f"{fmt.INDEX_DIR}/g{generation:05d}"
    try:
        if events is not None:
            events("start")
        spec = work_spec(src, options)
        tasks = plan_tasks(tmp, plan, items, backend, len(class_names), spec, options)
        with executor_for(options, executor) as running:
            done, _ = run_shards(tmp, plan, tasks, running, rejects, progress, len(items), stop)
        records = _old_records(out, manifest)
        before = len(records.shards)
        read_sidecars(tmp, done, records)
        if len(records.shards) == before:
            raise no_usable_image(src, rejects)
        info = DatasetInfo(
            src=src,
            kind=listing.kind,
            backend=backend,
            options=options,
            class_names=class_names,
            group_names=group_names if old_groups is not None else None,
            rejects=_old_rejects(out, manifest) + rejects.items,
            generation=generation,
        )
        new_manifest = write_dataset(tmp, index_dir, records, info)
        if events is not None:
            events("finalize")
        tidy_build_dir(tmp)
        _commit(tmp, out, index_dir, generation, new_manifest, events)
    finally:
        atomic.discard(tmp)
    return IngestReport(
        out=out,
        manifest=new_manifest,
        rejects=rejects.items,
        files_seen=len(items) + len(listing.rejects),
        seconds=time.perf_counter() - started,
    )


def _commit(
    tmp: str,
    out: str,
    index_dir: str,
    generation: int,
    manifest: dict[str, Any],
    events: Events | None,
) -> None:
    """Move the new shards, index generation and rejects into OUT; the manifest last.

    Until the manifest is replaced, OUT is the previous version (the files moved in are not
    in its manifest; a rerun of the same append replaces them).
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
    manifest["rejects"]["file"] = rejects_name
    write_json_atomic(os.path.join(tmp, fmt.MANIFEST), manifest)
    os.replace(os.path.join(tmp, fmt.MANIFEST), os.path.join(out, fmt.MANIFEST))
