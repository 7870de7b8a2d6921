"""What is in a dataset, as one typed, versioned report (``datumio-inspect``).

:func:`summarize` reads the manifest, the memory-mapped index and each shard's per-record
CRC32 array; it reads record payloads only to confirm duplicate candidates
(:mod:`datumio.inspect.duplicates`) and for the statistics of record fields
(:mod:`datumio.inspect.fields`). It returns a :class:`DatasetSummary`, frozen dataclasses
all the way down; :meth:`DatasetSummary.to_json` is the object ``--json`` prints.

The JSON object's top-level keys are :data:`SUMMARY_KEYS`, always all present; ``schema``
is :data:`SCHEMA` and changes only when a key is removed or changes meaning (new keys inside
the nested objects may appear within a schema version).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datumio.inspect._json import dataclass_json, json_value, null_as, renamed
from datumio.inspect.duplicates import Duplicates, find_duplicates
from datumio.inspect.field_stats import FieldStats
from datumio.inspect.fields import DEFAULT_FIELD_SAMPLE, field_statistics
from datumio.inspect.sampling import SamplingReport
from datumio.inspect.splits import SplitSummary, split_summary
from datumio.shards import format as fmt
from datumio.shards.dataset import Dataset
from datumio.shards.manifest import EmptyClass, Groups, IngestRun, RejectSummary, Stats
from datumio.shards.verify import VerifyReport

SCHEMA = "datumio.inspect/1"

SUMMARY_KEYS = (
    "schema",
    "path",
    "format",
    "format_version",
    "backend",
    "encoding",
    "records",
    "num_classes",
    "classes",
    "imbalance_ratio",
    "empty_classes",
    "groups",
    "shards",
    "bytes",
    "image",
    "channel_stats",
    "rejects",
    "duplicates",
    "integrity",
    "sampling",
    "writer",
    "ingest",
    "fields",
    "splits",
)

#: How many rejects.jsonl lines the summary quotes.
MAX_REJECT_SAMPLES = 5

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassCount:
    """One class: its records, and the files of it that ingest rejected."""

    id: int
    name: str
    count: int
    rejected: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardSizes:
    """The shards: how many, records per shard (fewest, most), stored payload bytes."""

    count: int
    records_min: int
    records_max: int
    payload_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskBytes:
    """Bytes of the files actually there (the manifest's figures are what was written)."""

    total: int
    shards: int
    index: int
    other: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """Min, max, mean and median of one size measure over the records."""

    min: float
    max: float
    mean: float
    median: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSizes:
    """Widths, heights and aspect ratios (width / height) of images, in pixels."""

    width: Spread
    height: Spread
    aspect: Spread

    @classmethod
    def from_stats(cls, sizes: Mapping[str, Mapping[str, float]]) -> ImageSizes | None:
        """The sizes of the manifest's ``stats``; None when it has none (or not all)."""
        try:
            parts = {
                key: Spread(**{k: sizes[key][k] for k in ("min", "max", "mean", "median")})
                for key in ("width", "height", "aspect")
            }
        except (KeyError, TypeError):
            return None
        return cls(**parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInfo:
    """The images: channels, sizes as stored and as read at ingest, source formats."""

    channels: int
    #: After resizing at ingest (JSON ``{}`` when unknown).
    stored: ImageSizes | None = field(metadata=null_as({}))
    #: Before resizing (JSON ``{}`` when unknown).
    source: ImageSizes | None = field(metadata=null_as({}))
    #: Accepted files per Pillow format name.
    source_formats: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStats:
    """Per-channel mean and std of every stored pixel, on ``scale`` (computed at ingest)."""

    scale: str
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectSample:
    """One line of the rejects file, as written there (``row``, its JSON); ``path``,
    ``reason`` and ``detail`` are its values as text (None where the line has none)."""

    row: Mapping[str, object]

    def _text(self, key: str) -> str | None:
        value = self.row.get(key)
        return None if value is None else str(value)

    @property
    def path(self) -> str | None:
        return self._text("path")

    @property
    def reason(self) -> str | None:
        return self._text("reason")

    @property
    def detail(self) -> str | None:
        return self._text("detail")

    def to_json(self) -> dict[str, Any]:
        return dict(json_value(self.row))


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejects:
    """The files ingest skipped: how many, by reason (most first), the file listing them
    (relative to the dataset) and its first lines."""

    count: int
    by_reason: Mapping[str, int]
    file: str
    sample: tuple[RejectSample, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetSummary:
    """What is in a dataset (:func:`summarize`); ``docs/inspect.md`` explains each part.

    Attributes:
        path: the dataset directory.
        format, format_version, backend, encoding: from the manifest (``encoding`` is
            ``"none"`` for records without an image).
        records, num_classes: how many.
        classes: one per class id.
        imbalance_ratio: largest / smallest class over the classes with records (None
            without records).
        empty_classes: classes without records, and why.
        groups: the labels file's groups (None without).
        shards: shard count and records per shard.
        on_disk: bytes of the files there (JSON ``bytes``).
        image: channels, sizes and source formats.
        channel_stats: per-channel pixel mean and std.
        rejects: files ingest rejected.
        duplicates: records with identical payloads (None when not looked for).
        integrity: the quick check of :func:`datumio.shards.verify.verify` (None: not run).
        sampling: what a sampler would draw (None when not asked).
        writer: the versions of the writer (debugging only).
        ingest: the ingest run that wrote the dataset (None when not recorded).
        fields: one per record field, in the manifest's order.
        splits: the stored splits, counted from their files (None: the dataset has none).
    """

    path: str
    format: str
    format_version: int
    backend: str
    encoding: str
    records: int
    num_classes: int
    classes: tuple[ClassCount, ...]
    imbalance_ratio: float | None
    empty_classes: tuple[EmptyClass, ...]
    groups: Groups | None
    shards: ShardSizes
    on_disk: DiskBytes = field(metadata=renamed("bytes"))
    image: ImageInfo
    channel_stats: ChannelStats
    rejects: Rejects
    duplicates: Duplicates | None
    integrity: VerifyReport | None
    sampling: SamplingReport | None
    writer: Mapping[str, object]
    ingest: IngestRun | None = field(metadata=null_as({}))
    fields: tuple[FieldStats, ...]
    splits: SplitSummary | None

    @property
    def schema(self) -> str:
        return SCHEMA

    @property
    def has_images(self) -> bool:
        """False for a dataset of records without an image."""
        return self.encoding != fmt.NO_IMAGE

    def to_json(self) -> dict[str, Any]:
        """The object of ``datumio inspect --json`` (keys :data:`SUMMARY_KEYS`), a fresh copy."""
        return {"schema": SCHEMA, **dataclass_json(self)}


def summarize(
    ds: Dataset,
    *,
    duplicates: bool = True,
    sampling: SamplingReport | None = None,
    integrity: VerifyReport | None = None,
    progress: Progress | None = None,
    field_sample: int = DEFAULT_FIELD_SAMPLE,
    seed: int = 0,
    field_progress: Progress | None = None,
) -> DatasetSummary:
    """Summarise a dataset (its ``to_json()`` has the keys :data:`SUMMARY_KEYS`).

    Args:
        ds: an open dataset.
        duplicates: look for records with identical payloads (``duplicates`` is None when off).
        sampling: a report from :func:`datumio.inspect.sampling.sampling_report` to embed
            (``sampling`` is None without one).
        integrity: a :func:`datumio.shards.verify.verify` report to embed (None: not checked).
        progress: called as ``progress(done, total)`` while duplicate candidates are read.
        field_sample: records read at most for the statistics of the fields without a
            global index (:func:`datumio.inspect.fields.field_statistics`).
        seed: chooses those records when the dataset has more.
        field_progress: called as ``progress(done, total)`` while they are read.
    """
    m = ds.manifest
    counts = [int(c) for c in ds.counts]
    rejected = list(m.class_rejected or [0] * ds.num_classes)
    nonzero = [c for c in counts if c > 0]
    return DatasetSummary(
        path=ds.path,
        records=len(ds),
        format=m.format,
        format_version=m.format_version,
        backend=ds.backend,
        encoding=ds.encoding,
        num_classes=ds.num_classes,
        classes=tuple(
            ClassCount(id=c, name=name, count=counts[c], rejected=int(rejected[c]))
            for c, name in enumerate(ds.class_names)
        ),
        imbalance_ratio=round(max(nonzero) / min(nonzero), 4) if nonzero else None,
        empty_classes=m.empty_classes,
        groups=m.groups,
        shards=_shards(ds),
        on_disk=_bytes_on_disk(ds),
        image=_image(ds),
        channel_stats=_channel_stats(m.stats or Stats()),
        rejects=_rejects(ds),
        duplicates=(
            find_duplicates(ds, progress=progress) if duplicates and ds.has_images else None
        ),
        integrity=integrity,
        sampling=sampling,
        writer=copy.deepcopy(dict(m.writer or {})),
        ingest=m.ingest,
        fields=field_statistics(ds, sample=field_sample, seed=seed, progress=field_progress),
        splits=split_summary(ds),
    )


def _shards(ds: Dataset) -> ShardSizes:
    sizes = np.diff(np.asarray(ds.shard_offsets, dtype=np.int64))
    return ShardSizes(
        count=ds.num_shards,
        records_min=int(sizes.min()) if sizes.size else 0,
        records_max=int(sizes.max()) if sizes.size else 0,
        payload_bytes=sum(s.payload_bytes for s in ds.manifest.shards),
    )


def _bytes_on_disk(ds: Dataset) -> DiskBytes:
    """Sizes of the files actually there (the manifest's figures are what was written)."""
    shards = index = other = 0
    for folder, _dirs, files in os.walk(ds.path):
        part = os.path.relpath(folder, ds.path).split(os.sep)[0]
        for name in files:
            try:
                size = os.path.getsize(os.path.join(folder, name))
            except OSError:
                continue
            if part == fmt.SHARDS_DIR:
                shards += size
            elif part == fmt.INDEX_DIR:
                index += size
            else:
                other += size
    return DiskBytes(total=shards + index + other, shards=shards, index=index, other=other)


def _image(ds: Dataset) -> ImageInfo:
    m = ds.manifest
    stats = m.stats or Stats()
    return ImageInfo(
        channels=int(m.channels or (int(ds.shapes[0][2]) if len(ds) else 0)),
        stored=ImageSizes.from_stats(stats.stored_size),
        source=ImageSizes.from_stats(stats.source_size),
        source_formats=dict(stats.source_formats),
    )


def _channel_stats(stats: Stats) -> ChannelStats:
    return ChannelStats(
        scale=stats.pixel_scale,
        mean=None if stats.mean is None else tuple(stats.mean),
        std=None if stats.std is None else tuple(stats.std),
    )


def _rejects(ds: Dataset) -> Rejects:
    info = ds.manifest.rejects or RejectSummary()
    ordered = dict(sorted(info.by_reason.items(), key=lambda kv: (-int(kv[1]), kv[0])))
    sample: list[RejectSample] = []
    path = os.path.join(ds.path, info.file)
    if info.count and os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if len(sample) >= MAX_REJECT_SAMPLES:
                    break
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    sample.append(RejectSample(row=row))
    return Rejects(count=info.count, by_reason=ordered, file=info.file, sample=tuple(sample))
