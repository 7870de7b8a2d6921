"""The Loader's job: read records from shards, decode, transform, write into a slot.

A record that fails to read or decode is replaced by the next record of its class (up to
:data:`MAX_REPLACEMENT_TRIES`, logged in the batch's message), or fails its batch with
``strict``; any other error (a bug, a failing ``user_fn``: ``TransformError``) fails the
batch and names the record.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio.augment import jpeg_roi
from datumio.augment.device import stage
from datumio.augment.geometry import Affine
from datumio.augment.normalize import normalize_batch
from datumio.augment.seeds import SampleStreams
from datumio.augment.spec import Transform
from datumio.errors import DecodeError, RecordError
from datumio.loader.fields import FieldPlan, Placed, write_sample
from datumio.loader.job import RecordFailure
from datumio.loader.messages import BatchDone, BatchPlan, Replacement
from datumio.loader.sample import transform_sample
from datumio.loader.slots import Segment, SlotLayout
from datumio.shards.dataset import Dataset

#: Other records of the same class tried before a failing record's batch fails.
MAX_REPLACEMENT_TRIES = 16


def _shard_of(dataset: Dataset, record: int) -> str:
    try:
        return dataset.shard_path(dataset.locate(record)[0])
    except (IndexError, ValueError):
        return ""


@dataclass(frozen=True)
class DatasetJob:
    """The Loader's job: records of ``dataset`` through ``transform`` into slots laid out
    as ``layout`` (the dataset pickles as its path and reopens in the worker, at the same
    version and split: plan ids are positions of that view)."""

    dataset: Dataset
    transform: Transform
    layout: SlotLayout
    seed: int
    strict: bool
    #: The record fields each batch carries (none: images and labels only).
    fields: FieldPlan | None = None
    #: Shards a worker keeps open (None: the dataset's own setting).
    max_open_shards: int | None = None

    def open(self, worker_id: int, slots: list[Segment]) -> DatasetFiller:
        return DatasetFiller(self, worker_id, slots)


class DatasetFiller:
    """Fills slots for one worker; holds the open dataset and the mapped slots."""

    def __init__(self, job: DatasetJob, worker_id: int, segments: list[Segment]) -> None:
        self.config = job
        self.worker_id = worker_id
        self.dataset = job.dataset  # this worker's own copy, unpickled
        if job.max_open_shards is not None:
            self.dataset.max_open_shards = job.max_open_shards
        self.views = [job.layout.views(seg.mmap) for seg in segments]
        self.progress = [job.layout.progress(seg.mmap) for seg in segments]
        #: decode="device": per-sample geometry written beside the record's bytes.
        self.params = (
            [job.layout.params_view(seg.mmap) for seg in segments] if job.layout.params else None
        )
        self.field_views = [job.layout.field_views(seg.mmap) for seg in segments]
        #: Each sample's generator, ``sample_rng(seed, epoch, position)``'s draws.
        self.streams = SampleStreams(job.seed)
        #: Remote datasets: the ids of the batches hinted and not yet filled, in order.
        self.ahead: collections.deque[np.ndarray] = collections.deque()

    def advise(self, ids: np.ndarray) -> None:
        self.dataset.advise(ids)
        if self.dataset.store is not None:
            self.ahead.append(ids)

    def _retain_ahead(self) -> None:
        """After a batch: close the shards the batches hinted next do not read, so that a
        size-limited shard cache may evict them (remote datasets only)."""
        if self.ahead:
            self.ahead.popleft()  # the batch just filled (hinted first: plans come in order)
            self.dataset.retain(np.concatenate([*self.ahead, np.empty(0, np.int64)]))

    def close(self) -> None:
        self.dataset.close()

    def fill(self, plan: BatchPlan) -> BatchDone:
        try:
            return self._fill(plan)
        finally:
            self._retain_ahead()

    def _fill(self, plan: BatchPlan) -> BatchDone:
        cfg, ds = self.config, self.dataset
        images, labels, ids, groups = self.views[plan.slot]
        # What this worker is on, for the main process's stall watch (PROGRESS_FIELDS).
        progress = self.progress[plan.slot]
        progress[:] = (plan.generation, plan.batch, 0, -1)
        replacements: list[Replacement] = []
        tally = jpeg_roi.TALLY
        regions, wholes = tally.regions, tally.whole
        for k in range(len(plan.ids)):
            record = int(plan.ids[k])
            position = int(plan.positions[k])
            progress[3] = record
            params = None if self.params is None else self.params[plan.slot][k]
            used, label, m = self._fill_one(
                record, plan.epoch, position, images[k], params, replacements
            )
            if cfg.fields is not None and cfg.fields.specs:
                self._fill_fields(used, m, self.field_views[plan.slot], k)
            labels[k] = label
            ids[k] = used
            groups[k] = int(ds.groups[used]) if ds.groups is not None else -1
            progress[2] = k + 1
        if ds.has_images:
            normalize_batch(images[: len(plan.ids)], cfg.transform)  # no-op unless batch_zmuv
        return BatchDone(
            plan.generation,
            plan.batch,
            plan.slot,
            self.worker_id,
            len(plan.ids),
            tuple(replacements),
            tally.regions - regions,
            tally.whole - wholes,
        )

    def _fill_one(
        self,
        record: int,
        epoch: int,
        position: int,
        out: np.ndarray,
        params: np.ndarray | None,
        log: list[Replacement],
    ) -> tuple[int, int, Affine | Placed | None]:
        """Decode and transform ``record`` (or a replacement) into ``out``: (id used, label,
        the map the image was warped with when fields need it, or with an outside pipeline
        the fields it moved)."""
        ds = self.dataset
        tries = 0
        candidate = record
        while True:
            # A fresh stream per attempt: the pixels of a replacement do not depend on how
            # far the failed attempt got.
            rng = self.streams.rng(epoch, position)
            try:
                payload, label, shape = ds.stored(candidate)
                if not ds.has_images:  # a label and fields: nothing to decode
                    return candidate, label, None
                if params is not None:  # decode="device": bytes and geometry, no pixels
                    stage(self.config.transform, payload, rng, shape, out, params)
                    return candidate, label, None
                where = transform_sample(
                    self.config.transform,
                    payload,
                    rng,
                    out,
                    encoding=ds.encoding,
                    shape=shape,
                    background=ds.background,
                    plan=self.config.fields,
                    label=label,
                    fields=functools.partial(self._values, candidate),
                )
                return candidate, label, where
            except (RecordError, DecodeError) as exc:
                shard = _shard_of(ds, candidate)
                if self.config.strict:
                    raise RecordFailure(candidate, shard) from exc
                nxt = self._next_of_class(record, tries)
                if nxt is None:
                    raise RecordFailure(candidate, shard) from exc
                log.append(Replacement(candidate, nxt, shard, str(exc)))
                candidate = nxt
                tries += 1
            except Exception as exc:
                raise RecordFailure(candidate, _shard_of(ds, candidate)) from exc

    def _values(self, record: int) -> list[Any]:
        plan = self.config.fields
        return [self.dataset.field(record, spec.name) for spec in plan.specs] if plan else []

    def _fill_fields(
        self, record: int, m: Affine | Placed | None, views: list[np.ndarray], k: int
    ) -> None:
        """Sample ``k``'s fields, from the record actually used, through its map ``m`` (or
        as an outside pipeline placed them)."""
        plan = self.config.fields
        if plan is None:
            return
        if isinstance(m, Placed):  # read with the image, moved by the pipeline
            write_sample(plan, m.values, m, views, k)
            return
        try:
            values = self._values(record)
        except (RecordError, DecodeError) as exc:
            raise RecordFailure(record, _shard_of(self.dataset, record)) from exc
        write_sample(plan, values, m, views, k)

    def _next_of_class(self, record: int, tries: int) -> int | None:
        """The ``tries``-th replacement of ``record``: the next ids of its class, cyclically."""
        members = self.dataset.class_index(int(self.dataset.labels[record]))
        n = len(members)
        if tries >= min(n - 1, MAX_REPLACEMENT_TRIES):
            return None
        at = int(np.searchsorted(members, record))
        return int(members[(at + 1 + tries) % n])
