"""Finalize: merge the shards' sidecars into the global index, the stats and the manifest.

Runs in the driver once every task is done. Global ids are assigned here, densely and in
plan order, from each shard's accepted count. Statistics are exact: pixel histograms and
per-record sizes are summed and concatenated, never averaged.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from dataclasses import dataclass, field

import numpy as np

from datumio.fields.spec import FieldSpec
from datumio.ingest.disk import writing
from datumio.ingest.options import IngestOptions, recorded_options
from datumio.ingest.report import summarise_sizes
from datumio.ingest.sidecar import load_sidecar
from datumio.ingest.sources import Reject, utf8_text
from datumio.shards import format as fmt
from datumio.shards.field_index import field_index_arrays
from datumio.shards.manifest import (
    EmptyClass,
    Groups,
    IngestRun,
    Manifest,
    RejectSummary,
    Stats,
    StatsFiles,
    write_manifest,
)
from datumio.shards.splits import Splits, save_splits
from datumio.shards.writer import (
    ShardEntry,
    index_arrays,
    listed_shards,
    save_index,
    writer_info,
)

HISTOGRAM = "pixel_histogram.npy"
SOURCE_SIZES = "source_sizes.npy"


@dataclass
class Records:
    """Per-record metadata of consecutive shards, in id order, plus their summed stats."""

    shards: list[ShardEntry] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    shapes: list[np.ndarray] = field(default_factory=list)
    source_offsets: list[np.ndarray] = field(default_factory=list)
    sources: list[np.ndarray] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)
    #: Each record's split (an index into the run's split names, -1: none), by shard.
    splits: list[np.ndarray] = field(default_factory=list)
    source_sizes: list[np.ndarray] = field(default_factory=list)
    histogram: np.ndarray | None = None
    formats: collections.Counter[str] = field(default_factory=collections.Counter)
    #: The fields' index parts by file name (``field_NAME.npy`` ...), one per shard.
    field_parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    #: Field name -> [records having it, items, most items in one record] over the shards.
    field_counts: dict[str, list[int]] = field(default_factory=dict)
    _source_bytes: int = 0

    def add(
        self,
        entry: ShardEntry | None,
        arrays: dict[str, np.ndarray],
        formats: dict[str, int],
    ) -> None:
        if entry is not None:
            self.shards.append(entry)
        self.labels.append(arrays["labels"])
        self.shapes.append(arrays["shapes"].reshape(-1, 3))
        offsets = arrays["source_offsets"].astype(np.int64)
        # Each part's offsets start at 0: shift them, and drop the repeated leading 0.
        self.source_offsets.append(offsets[1:] + self._source_bytes)
        self._source_bytes += int(offsets[-1])
        self.sources.append(arrays["sources"])
        self.groups.append(arrays["groups"])
        n = arrays["labels"].shape[0]
        self.splits.append(arrays["splits"] if "splits" in arrays else np.full(n, -1, np.int16))
        self.source_sizes.append(arrays["source_sizes"].reshape(-1, 2))
        hist = arrays["histogram"].astype(np.uint64)
        self.histogram = hist.copy() if self.histogram is None else self.histogram + hist
        self.formats.update(formats)
        for name, arr in arrays.items():
            if name.startswith("field_"):
                self.field_parts.setdefault(f"{name}.npy", []).append(arr)

    def count_fields(self, counts: dict[str, list[int]]) -> None:
        for name, (records, items, *most) in counts.items():  # no max in older sidecars
            total = self.field_counts.setdefault(name, [0, 0, 0])
            total[0] += int(records)
            total[1] += int(items)
            total[2] = max(total[2], int(most[0]) if most else 0)

    def index(
        self, num_classes: int, has_groups: bool, fields: tuple[FieldSpec, ...] = ()
    ) -> dict[str, np.ndarray]:
        def cat(parts: list[np.ndarray], dtype: str, width: int = 0) -> np.ndarray:
            if not parts:
                return np.zeros((0, width) if width else 0, dtype=dtype)
            return np.concatenate(parts).astype(dtype, copy=False)

        index = index_arrays(
            cat(self.labels, fmt.LABEL_DTYPE),
            num_classes,
            [s.num_records for s in self.shards],
            cat(self.shapes, fmt.SHAPE_DTYPE, 3),
            np.concatenate([np.zeros(1, np.int64), *self.source_offsets]),
            cat(self.sources, "u1"),
            cat(self.groups, fmt.LABEL_DTYPE) if has_groups else None,
        )
        index.update(field_index_arrays(fields, self.field_parts))
        return index

    def counted(self, fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
        """``fields`` with their ``records``, ``items`` and ``max_items`` counts."""
        counts = self.field_counts
        return tuple(
            dataclasses.replace(
                spec,
                records=counts.get(spec.name, [0, 0, 0])[0],
                items=counts.get(spec.name, [0, 0, 0])[1],
                max_items=counts.get(spec.name, [0, 0, 0])[2],
            )
            for spec in fields
        )

    def total_histogram(self, channels: int) -> np.ndarray:
        """Summed pixel counts per channel, uint64 [channels, 256]."""
        if self.histogram is None:
            return np.zeros((channels, 256), dtype=np.uint64)
        return self.histogram

    def all_source_sizes(self) -> np.ndarray:
        """(width, height) before resizing of every record, in id order."""
        return np.concatenate(self.source_sizes) if self.source_sizes else np.zeros((0, 2))

    def stats(self, hist: np.ndarray, source: np.ndarray, files: StatsFiles) -> Stats:
        """The manifest's stats from :meth:`total_histogram` and :meth:`all_source_sizes`."""
        values = np.arange(256, dtype=np.float64)
        counts = hist.astype(np.float64)
        total = counts.sum(axis=1)
        mean = (counts * values).sum(axis=1) / np.maximum(total, 1)
        var = (counts * values**2).sum(axis=1) / np.maximum(total, 1) - mean**2
        shapes = np.concatenate(self.shapes) if self.shapes else np.zeros((0, 3))
        return Stats(
            pixel_scale="0-255",
            mean=tuple(round(float(m), 4) for m in mean),
            std=tuple(round(float(s), 4) for s in np.sqrt(np.maximum(var, 0))),
            source_size=summarise_sizes(source),
            stored_size=summarise_sizes(shapes[:, [1, 0]]),
            source_formats=dict(sorted(self.formats.items())),
            files=files,
        )


def read_sidecars(root: str, numbers: list[int], records: Records) -> None:
    """Add the sidecars of shards ``numbers`` (in that order) to ``records``."""
    for number in numbers:
        car = load_sidecar(root, number)
        if car is None:
            raise FileNotFoundError(f"the sidecar of shard {number} is missing in {root}")
        meta = car.meta
        entry = None
        if meta["file"] is not None:
            entry = ShardEntry(
                file=meta["file"],
                num_records=int(meta["num_records"]),
                payload_bytes=int(meta["payload_bytes"]),
                file_bytes=os.path.getsize(os.path.join(root, meta["file"])),
                records_crc32=int(meta["records_crc32"]),
                fields_crc32=meta.get("fields_crc32"),
            )
        records.add(entry, car.arrays, meta["formats"])
        records.count_fields(meta.get("field_counts") or {})


@dataclass(frozen=True)
class DatasetInfo:
    """What the manifest says beside the records: classes, groups, rejects, the run."""

    src: str
    kind: str
    backend: str
    options: IngestOptions
    class_names: list[str]
    group_names: list[str] | None
    rejects: list[Reject]
    generation: int = 0
    #: The records' fields, in storage order.
    fields: tuple[FieldSpec, ...] = ()
    #: False: a table's records (no image: encoding "none", 0 channels, no pixel stats).
    images: bool = True
    #: The dataset's identity (``Manifest.dataset_id``).
    dataset_id: str | None = None
    #: The splits the records were given at ingest (by name, in id order); empty: none.
    split_names: tuple[str, ...] = ()


def _given_splits(
    root: str, records: Records, info: DatasetInfo, index: dict[str, np.ndarray]
) -> Splits | None:
    """The split views of the splits given at ingest (a split column, an importer's splits)."""
    if not info.split_names:
        return None
    split_of = np.concatenate(records.splits) if records.splits else np.zeros(0, np.int16)
    groups = index.get(fmt.GROUPS) if info.group_names is not None else None
    how = {"given": True}
    return save_splits(
        root, split_of, info.split_names, index[fmt.LABELS], len(info.class_names), groups, how
    )


def write_dataset(root: str, index_dir: str, records: Records, info: DatasetInfo) -> Manifest:
    """Write the index files into ``root/index_dir``, the stats files, the rejects and
    ``root/manifest.json`` (last); returns the manifest."""
    num_classes = len(info.class_names)
    has_groups = info.group_names is not None
    index = records.index(num_classes, has_groups, info.fields)
    with writing(os.path.join(root, index_dir)):
        index_paths = save_index(root, index_dir, index)
    channels = (1 if info.options.gray else 3) if info.images else 0
    encoding = info.options.encoding if info.images else fmt.NO_IMAGE
    hist = records.total_histogram(channels)
    sizes = records.all_source_sizes()
    for name, array in ((HISTOGRAM, hist.astype("<u8")), (SOURCE_SIZES, sizes.astype("<u4"))):
        path = os.path.join(root, index_dir, name)
        with writing(path):
            np.save(path, array, allow_pickle=False)
    files = StatsFiles(
        histogram=f"{index_dir}/{HISTOGRAM}", source_sizes=f"{index_dir}/{SOURCE_SIZES}"
    )
    path = os.path.join(root, fmt.REJECTS)
    with writing(path), open(path, "w", encoding="utf-8") as fh:
        for reject in info.rejects:
            fh.write(json.dumps(reject.to_dict(), ensure_ascii=False) + "\n")
    counts = np.diff(index[fmt.CLASS_OFFSETS])
    per_class = collections.Counter(r.label for r in info.rejects if r.label is not None)
    empty = tuple(
        EmptyClass(
            id=c,
            name=name,
            why=f"all {per_class[c]} file(s) rejected" if per_class[c] else "no files",
        )
        for c, name in enumerate(info.class_names)
        if counts[c] == 0
    )
    groups = None
    if info.group_names is not None:
        group_counts = np.bincount(index[fmt.GROUPS], minlength=len(info.group_names))
        groups = Groups(names=tuple(info.group_names), counts=tuple(group_counts.tolist()))
    opts = recorded_options(info.options)
    opts["encoding"] = encoding
    if info.options.labels_file is not None:
        opts["labels_file"] = utf8_text(info.options.labels_file)
    by_reason = collections.Counter(r.reason for r in info.rejects)
    shards = listed_shards(records.shards)
    manifest = Manifest(
        backend=info.backend,
        encoding=encoding,
        num_records=sum(shard.num_records for shard in shards),
        class_names=tuple(info.class_names),
        class_counts=tuple(counts.tolist()),
        shards=shards,
        index=index_paths,
        writer=writer_info(),
        generation=info.generation,
        channels=channels,
        class_rejected=tuple(per_class[c] for c in range(num_classes)),
        empty_classes=empty,
        groups=groups,
        stats=records.stats(hist, sizes, files) if info.images else Stats(files=files),
        rejects=RejectSummary(
            count=len(info.rejects), by_reason=dict(by_reason.most_common()), file=fmt.REJECTS
        ),
        ingest=IngestRun(source=utf8_text(info.src), input=info.kind, options=opts),
        fields=records.counted(info.fields),
        dataset_id=info.dataset_id,
        splits=_given_splits(root, records, info, index),
    )
    with writing(os.path.join(root, fmt.MANIFEST)):
        write_manifest(root, manifest)
    return manifest
