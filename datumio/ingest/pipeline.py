"""The ingest flow: list -> plan shards -> one task per shard -> records -> commit.

One flow (:func:`run_ingest`) serves every run; a :class:`Target` says what the run adds
to and how its build becomes the dataset: a new dataset, published atomically
(:mod:`datumio.ingest.new_dataset`), or more shards of the dataset at OUT under a new index
generation (:mod:`datumio.ingest.append`). Both import this module, never the reverse;
:func:`datumio.ingest.run.ingest` picks one.

The driver lists the input and plans shards as consecutive slices of it
(:mod:`datumio.ingest.plan`), so the dataset is the same whatever the number of workers
or the executor. Each task decodes its files and writes its shard and a sidecar in the
temporary directory beside OUT (:mod:`datumio.ingest.shard_task`); payloads never cross a
pipe. The driver looks at the tasks' answers in plan order (so error policies see files
in input order), then merges the sidecars into the index and manifest
(:mod:`datumio.ingest.finalize`) and hands the build to the target to commit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

import numpy as np

from datumio.errors import IngestError
from datumio.fields.spec import FieldSpec
from datumio.ingest import atomic
from datumio.ingest.executors import Running, open_executor
from datumio.ingest.finalize import DatasetInfo, Records, read_sidecars, write_dataset
from datumio.ingest.labels_file import list_labels_file
from datumio.ingest.options import IngestOptions
from datumio.ingest.plan import PLAN_FILE, Plan, make_plan, read_dataset_id
from datumio.ingest.report import IngestReport
from datumio.ingest.rows import has_path_column
from datumio.ingest.running import Progress, RejectPolicy, ShardRun, ShouldStop
from datumio.ingest.shard_task import ShardTask
from datumio.ingest.sidecar import SIDECARS_DIR
from datumio.ingest.sources import Item, Listing, Reject, list_folders, utf8_text
from datumio.ingest.work import WorkSpec
from datumio.shards import format as fmt
from datumio.shards.manifest import Manifest

#: Called with the name of each step as the run reaches it: ``wait`` (another run writes
#: OUT and this one waits for it, :mod:`datumio.ingest.lock`), ``start`` (input listed, the
#: build directory made), ``finalize`` (index and manifest written), ``publish`` and
#: ``published`` (just before and after the dataset is renamed into place; ``commit`` for
#: ``--append``). Tools and fault tests hook in here.
Events = Callable[[str], None]


def list_input(src: str, options: IngestOptions) -> Listing:
    if options.importer == "coco":
        from datumio.ingest.coco import list_coco  # a COCO input only

        if options.labels_file is None:
            raise IngestError("--from coco needs the COCO JSON: give it as --labels FILE")
        return list_coco(src, options.labels_file, options)
    if options.labels_file is not None:
        return list_labels_file(
            src, options.labels_file, options.class_names, options.field_specs(), options.splits
        )
    return list_folders(src)


def ordered_items(items: list[Item], options: IngestOptions) -> list[Item]:
    if not options.shuffle:
        return items
    order = np.random.default_rng(options.seed).permutation(len(items))
    return [items[i] for i in order]


def work_spec(
    src: str, options: IngestOptions, fields: tuple[FieldSpec, ...] = (), images: bool = True
) -> WorkSpec:
    return WorkSpec(
        root=src,
        encoding=options.encoding if images else fmt.NO_IMAGE,
        quality=options.quality,
        max_side=options.max_side,
        short_side=options.short_side,
        size=options.size,
        gray=options.gray,
        background=options.background,
        max_pixels=options.max_pixels,
        min_side=options.min_side,
        fields=fields,
        images=images,
    )


#: Options that only mean something for images (refused for a table: nothing to apply
#: them to), with the value that leaves them unset.
_IMAGE_OPTIONS = {
    "encode": "auto",
    "max_side": None,
    "short_side": None,
    "size": None,
    "gray": False,
}


def check_table_options(options: IngestOptions) -> None:
    """A labels file without paths has no image: refuse options that change images."""
    given = [name for name, unset in _IMAGE_OPTIONS.items() if getattr(options, name) != unset]
    if given:
        raise IngestError(
            f"{options.labels_file} has no path column, so its records have no image; "
            f"drop the image option(s) {', '.join(given)} (or add a path column)"
        )


def protected_paths(src: str, options: IngestOptions) -> list[str]:
    """What OUT must never hold: the input and its labels file."""
    return [src] + ([os.path.abspath(options.labels_file)] if options.labels_file else [])


def check_paths(src: str, out: str, options: IngestOptions) -> None:
    if not os.path.isdir(src):
        raise IngestError(f"input {src} is not a directory")
    src_real, out_real = os.path.realpath(src), os.path.realpath(out)
    # A table (a labels file without paths) reads nothing below SRC: OUT may lie there.
    labels = options.labels_file
    table = (
        labels is not None
        and options.importer != "coco"  # a COCO JSON names image files
        and os.path.isfile(labels)
        and not has_path_column(labels)
    )
    inside = out_real == src_real or out_real.startswith(src_real.rstrip(os.sep) + os.sep)
    if inside and not table:
        raise IngestError(f"output {out} is inside the input {src}; write it somewhere else")
    if not options.append:
        check_new_out(out, options, protected_paths(src, options))


def check_new_out(out: str, options: IngestOptions, protected: list[str]) -> None:
    """OUT is free, or ``overwrite`` may replace what is there (never ``protected``)."""
    if not os.path.lexists(out):
        return
    if not options.overwrite:
        raise IngestError(f"{out} already exists; pass --overwrite to replace it")
    atomic.check_replaceable(out, protected)


def plan_tasks(
    root: str,
    plan: Plan,
    items: list[Item],
    backend: str,
    num_classes: int,
    spec: WorkSpec,
    options: IngestOptions,
    upload: str | None = None,
    dataset_id: str | None = None,
    split_names: Sequence[str] = (),
) -> Iterator[ShardTask]:
    for s, (start, stop) in enumerate(plan.slices):
        part = items[start:stop]
        has_groups = bool(part) and part[0].group is not None
        yield ShardTask(
            root=root,
            number=plan.first_shard + s,
            rels=tuple(i.rel for i in part),
            labels=tuple(i.label for i in part),
            groups=tuple(int(i.group or 0) for i in part) if has_groups else None,
            backend=backend,
            num_classes=num_classes,
            spec=spec,
            stop_at_reject=options.on_error == "raise",
            upload=upload,
            values=tuple(i.fields for i in part) if spec.fields else None,
            dataset_id=dataset_id,
            splits=_splits(part) if split_names else None,
        )


def _splits(items: list[Item]) -> tuple[int, ...]:
    return tuple(-1 if i.split is None else i.split for i in items)


@contextlib.contextmanager
def executor_for(options: IngestOptions, executor: Executor | None) -> Iterator[Running]:
    if executor is not None:
        yield Running(executor, 2 * options.num_workers, "the caller's executor")
    else:
        with open_executor(options.executor, options.num_workers) as running:
            yield running


def tidy_build_dir(root: str) -> None:
    """Drop what only the build needed: sidecars, the plan, partial shards of dead tasks.

    Called just before the dataset is published: until then a killed run stays resumable
    (``--resume`` finds the plan and reuses every shard whose sidecar is there).
    """
    shutil.rmtree(os.path.join(root, SIDECARS_DIR), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(root, PLAN_FILE))
    shards = os.path.join(root, fmt.SHARDS_DIR)
    for name in os.listdir(shards):
        if name.startswith("."):
            os.remove(os.path.join(shards, name))


def no_usable_image(src: str, rejects: RejectPolicy) -> IngestError:
    first = rejects.items[0] if rejects.items else None
    return IngestError(
        f"no usable image in {src}: {len(rejects.items)} files rejected"
        + (f", the first: {utf8_text(first.path)}: {first.reason}" if first else "")
    )


class Target(ABC):
    """What a run adds its records to, and how its finished build becomes the dataset.

    The defaults describe a run that starts from nothing (a new dataset); an append starts
    from the dataset at OUT. A target serves one run.
    """

    def stored_options(self, options: IngestOptions) -> IngestOptions:
        """The options the new records are stored with."""
        return options

    def relabel(self, listing: Listing) -> Listing:
        """``listing`` with the dataset's class (and group) ids and names."""
        return listing

    @property
    def first_shard(self) -> int:
        """The number of the run's first shard."""
        return 0

    @property
    def generation(self) -> int:
        """The dataset's generation once the run commits (0, then +1 per append)."""
        return 0

    @property
    def index_dir(self) -> str:
        """Where the run writes the index, relative to the dataset."""
        return fmt.INDEX_DIR

    @abstractmethod
    def build_dir(self, plan: Plan) -> str:
        """The temporary directory to build in, beside OUT (made, or adopted)."""

    def identity(self, tmp: str, plan: Plan) -> str:
        """The dataset's identity once the run commits: a new dataset's is the plan's (the
        one in ``tmp``'s plan when a resumed run adopted it)."""
        return read_dataset_id(tmp) or plan.dataset_id

    def records(self) -> Records:
        """The records that come before the run's own, in id order."""
        return Records()

    def earlier_rejects(self) -> list[Reject]:
        """The rejects of the runs before this one (kept in the dataset's rejects)."""
        return []

    @abstractmethod
    def commit(self, tmp: str, manifest: Manifest, events: Events | None) -> Manifest:
        """Make the finished build in ``tmp`` the dataset; returns the manifest it has.
        Nothing is left at ``tmp`` afterwards."""


def run_ingest(
    src: str,
    out: str,
    options: IngestOptions,
    target: Target,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
    events: Events | None = None,
    stop: ShouldStop | None = None,
    upload: str | None = None,
) -> IngestReport:
    """Ingest the images below ``src`` into ``target`` (paths absolute, already checked by
    :func:`check_paths`); see :func:`datumio.ingest` for the other arguments. ``upload``:
    the URL the finished shards are sent to by their tasks (an ingest to a URL)."""
    started = time.perf_counter()
    options = target.stored_options(options)
    listing = list_input(src, options)
    if listing.split_names and options.append:
        raise IngestError(
            "an append cannot store splits: append without the split column, then split "
            "the whole dataset again (datumio split OUT --val ...)"
        )
    listing = target.relabel(listing)
    if not listing.images:
        check_table_options(options)
    rejects = RejectPolicy(options)
    for reject in listing.rejects:
        rejects.add(reject)
    items = ordered_items(listing.items, options)
    backend = options.backend_for(out)
    num_classes = len(listing.class_names)
    plan = make_plan(
        src, items, listing.class_names, options, backend, target.first_shard, listing.images
    )
    tmp: str | None = None
    try:
        tmp = target.build_dir(plan)
        os.makedirs(os.path.join(tmp, fmt.SHARDS_DIR), exist_ok=True)
        os.makedirs(os.path.join(tmp, SIDECARS_DIR), exist_ok=True)
        if events is not None:
            events("start")
        spec = work_spec(src, options, listing.fields, listing.images)
        dataset_id = target.identity(tmp, plan)
        tasks = plan_tasks(
            tmp,
            plan,
            items,
            backend,
            num_classes,
            spec,
            options,
            upload,
            dataset_id,
            listing.split_names,
        )
        with executor_for(options, executor) as running:
            run = ShardRun(tmp, running, rejects, progress, len(items), stop)
            for task in tasks:
                run.submit(task)
            numbers, reused = run.finish(), run.reused
        records = target.records()
        before = len(records.shards)
        read_sidecars(tmp, numbers, records)
        if len(records.shards) == before:
            raise no_usable_image(src, rejects)
        info = DatasetInfo(
            src=src,
            kind=listing.kind,
            backend=backend,
            options=options,
            class_names=listing.class_names,
            group_names=listing.group_names,
            rejects=target.earlier_rejects() + rejects.items,
            generation=target.generation,
            fields=listing.fields,
            images=listing.images,
            dataset_id=dataset_id,
            split_names=tuple(listing.split_names),
        )
        manifest = write_dataset(tmp, target.index_dir, records, info)
        if events is not None:
            events("finalize")
        manifest = target.commit(tmp, manifest, events)
    except BaseException as exc:
        error = atomic.after_failure(exc, tmp, options.resume)
        if error is exc:
            raise
        raise error from exc
    return IngestReport(
        out=out,
        manifest=manifest,
        rejects=rejects.items,
        files_seen=len(items) + len(listing.rejects),
        seconds=time.perf_counter() - started,
        shards_reused=reused,
    )
