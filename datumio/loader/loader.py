"""The training iterator: plans batches, hands out finished slots in order.

NOTE(shutdown): the one shutdown order, whatever triggers it.
  Triggers: ``close()``, ``with`` exit, garbage collection of the Loader and interpreter exit
  (both through ``weakref.finalize``, which also runs at exit), Ctrl-C (KeyboardInterrupt
  unwinds the training loop, then the interpreter exits and runs the finalizer), and an
  exception in the training loop (same path). The library installs no signal handler:
  SIGTERM's default action ends the process without running Python code, so then the
  workers see EOF on their pipe (and the Linux death signal) and exit, and the
  multiprocessing resource tracker, which outlives the process, unlinks the segments we
  registered with it. SIGKILL of the whole process group kills the tracker too: the next
  Loader start removes segments whose creating pid is dead (``remove_stale_segments``).
  Order:
  1. Mark closed: no plan is sent any more; a live iterator stops at its next step.
  2. Send ``Stop`` to every worker, join for 2 s, then terminate, then kill (1 s each).
     Workers go first so that nothing writes into a slot once it is given up.
  3. Close the pipes.
  4. Unlink every segment (its name leaves /dev/shm at once) and unregister it from the
     resource tracker; unmap the segments no handed-out array views. A segment that a
     batch still held by the caller views stays mapped until that batch is dropped, so
     holding a batch across ``close()`` is safe; only its name is gone.

Thread/fork/pickle: a Loader lives in the process that created it and is driven by one
thread at a time; pickling it raises TypeError, before and after it starts (its workers and
segments cannot travel): send the dataset path and options and build a Loader there. Worker
processes open their own shard handles.

One iterator at a time: ``iter(loader)`` takes over from any earlier iterator, and
``set_epoch`` (to another epoch), ``load_state_dict`` and ``close()`` end it. An iterator
used after that raises :class:`LoaderError` saying what ended it, never a silent stop that
would truncate an epoch.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Unpack

import numpy as np

from datumio.augment import device
from datumio.augment.finish import Finish
from datumio.augment.finish import split as finish_split
from datumio.augment.spec import Transform
from datumio.errors import LoaderError, OptionError, printable
from datumio.loader.defaults import loader_dataset, loader_sampler, resolved_transform
from datumio.loader.fields import plan_fields
from datumio.loader.fill import DatasetJob
from datumio.loader.ids import ID_WINDOW_BATCHES, IdWindow
from datumio.loader.job import WorkerConfig
from datumio.loader.messages import BatchDone, BatchFailed, BatchPlan
from datumio.loader.options import LoaderKeywords, LoaderOptions
from datumio.loader.ordered import Pending, in_order
from datumio.loader.pool import ConfigFactory, Message, WorkerPool, worker_error
from datumio.loader.resume import LOADER_STATE_FORMAT, check_resume, merge_states, save_state
from datumio.loader.slots import SlotLayout, SlotRing, lease_of, remove_stale_segments
from datumio.loader.stats import LoaderStats
from datumio.loader.watch import StallWatch
from datumio.sampling import Sampler
from datumio.shards.dataset import Dataset

logger = logging.getLogger("datumio")

STATE_FORMAT = LOADER_STATE_FORMAT
#: Longest single wait on the workers before checking for deaths and timeouts again.
_POLL_S = 0.5

Batch = tuple[np.ndarray, ...]


class _Runtime:
    """The processes and segments of a started loader: what the finalizer closes."""

    def __init__(self, ring: SlotRing, pool: WorkerPool) -> None:
        self.ring = ring
        self.pool = pool

    def close(self) -> None:
        try:
            self.pool.close()
        finally:
            self.ring.close()


class Loader:
    """Iterate label-balanced, augmented batches from a datumio dataset.

    ``for images, labels in Loader("out.lmdb", 64, sampling="balanced", workers=2): ...``

    Each batch is a tuple ``(images, labels, *extras)`` of numpy arrays that view a slot of
    shared memory (no copy): the slot is reused only once every array of the batch (and
    every view of one, e.g. ``torch.from_numpy``) is gone, or after :meth:`release`.
    Batches come in order; the same seed, epoch and position give the same pixels whatever
    the number of workers. Iterating runs the rest of the current epoch, then moves to the
    next epoch.

    Args:
        dataset_or_path: a :class:`~datumio.Dataset` (a split view too) or its directory.
        batch_size: records per batch (or ``options.batch_size``).
        transform: what workers do to each record; default: uint8 HWC, the stored pixels
            when every record has one stored size, else each record resized (shorter side
            224) and centre-cropped to 224x224.
        sampler: a ready :class:`~datumio.sampling.Sampler` (distributed, stratified, groups).
        options: a :class:`LoaderOptions` (workers, prefetch, seed, decode, readahead, ...).
        overrides: typed keywords (:class:`~datumio.loader.options.LoaderKeywords`): any
            :class:`LoaderOptions` field on top of ``options``
            (``Loader(path, 64, workers=4)``; ``split="train"`` reads a stored split), and,
            when ``sampler`` is not given, the sampler's options
            (:class:`~datumio.sampling.SamplerOptions`): ``sampling`` ("balanced" by default,
            "natural", "weights" with ``weights``, "power" with ``power``), ``weights``,
            ``power``, ``epoch_size``, ``locality`` (shards per window of the locality order:
            each batch reads from few shards), ``stratified``, ``rank``, ``world_size``,
            ``pad``. ``decode="device"``: workers only read records and draw each sample's
            crop and flip; batches are then ``(payloads, labels, *extras, params)`` for a
            device decoder (``docs/adapters.md``).

    Raises:
        TypeError: a keyword that is not an option (with the closest name).
        OptionError: a bad option, naming it.
        LoaderError: /dev/shm too small, every slot held by the caller, workers dying.
        WorkerError: a worker raised (its traceback, record id and shard in the message).
    """

    def __init__(
        self,
        dataset_or_path: Dataset | str | os.PathLike[str],
        batch_size: int | None = None,
        *,
        transform: Transform | None = None,
        sampler: Sampler | None = None,
        options: LoaderOptions | None = None,
        **overrides: Unpack[LoaderKeywords],
    ) -> None:
        self.options, sampling = LoaderOptions.with_overrides(options, batch_size, overrides)
        self.dataset = loader_dataset(dataset_or_path, self.options.split)
        sampler = loader_sampler(self.dataset, sampler, self.options, sampling)
        if "groups" in self.options.extras and self.dataset.groups is None:
            raise OptionError("extras=('groups',) but the dataset was ingested without groups")
        sampler.check_batches(self.options.batch_size, self.options.drop_last)
        self.sampler = sampler
        images = self.dataset.has_images
        #: No image: a placeholder transform the workers never apply.
        self.transform, channels = resolved_transform(self.dataset, transform, self.options)
        #: The record fields in each batch and how they are laid out (``loader.fields``).
        self.fields = plan_fields(
            self.dataset.fields,
            self.options.fields,
            self.transform.size,
            box_min_visible=self.options.box_min_visible,
            keypoint_pairs=self.options.keypoint_pairs,
            mask_fill=self.options.mask_fill,
        )
        self.layout = SlotLayout(
            self.options.batch_size,
            self.transform.output_shape(channels) if images else (0,),
            self.transform.dtype,
            fields=self._field_layout(),
            images=images,
        )
        #: What the consumer still does to each batch (:meth:`defer_finish`); None: nothing.
        self.finish: Finish | None = None
        self._channels = channels
        if self.options.decode == "device":
            self._lay_out_for_device()
        self.stats = LoaderStats()
        self._epoch = sampler.epoch
        self._position = sampler.position
        #: Where the current epoch began on this Loader: 0, or the place it was resumed at.
        self._origin = sampler.position
        self._generation = 0
        #: What started the current generation (names what ended an older iterator).
        self._turned_by = ""
        self._inflight: dict[int, int] = {}  # slot -> generation of the plan it holds
        self._ids = IdWindow(sampler, self.options.batch_size * ID_WINDOW_BATCHES)
        self._logged: set[int] = set()
        self._runtime: _Runtime | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._closed = False
        self._started_at: float | None = None
        self._watch = StallWatch(self.dataset, self.options.batch_timeout_s)

    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError(
            "a datumio Loader cannot be pickled: it owns worker processes and shared memory. "
            "Send what builds it (the dataset path, a Transform, the options) and create the "
            "Loader in the process that iterates it"
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Allocate the slots and start the workers (``iter()`` does it on first use)."""
        if self._closed:
            raise LoaderError("this Loader is closed; create a new one")
        if self._runtime is not None:
            return
        remove_stale_segments()
        ring = SlotRing(self.options.num_slots, self.layout)
        # The pool must not reference the Loader: the finalizer holds the runtime strongly.
        job = DatasetJob(
            self.dataset,
            self.transform,
            self.layout,
            self.options.seed,
            self.options.strict,
            self.fields,
            self.options.max_open_shards,
        )
        template = WorkerConfig(
            worker_id=-1,
            job=job,
            slot_names=ring.names,
            slot_bytes=self.layout.slot_bytes,
            parent_pid=0,
            death_signal=False,
            readahead=self.options.readahead,
        )
        factory = ConfigFactory(template, self.options.method)
        pool = WorkerPool(
            self.options.method, factory, self.options.workers, self.options.max_restarts
        )
        runtime = _Runtime(ring, pool)
        # Registered before the workers start, so a failure half-way still cleans up.
        self._finalizer = weakref.finalize(self, runtime.close)
        self._runtime = runtime
        try:
            pool.start()
        except BaseException:
            self.close()
            raise

    def _lay_out_for_device(self) -> None:
        """decode="device": slots hold each record's bytes and its :data:`device.PARAMS`."""
        device.check(self.transform, self.dataset.encoding)
        if self.fields.geometric:
            raise OptionError(
                'decode="device" with boxes, keypoints or masks: the device draws the '
                "geometry, the workers could not follow it; decode in the workers"
            )
        payload = sum(s.payload_bytes for s in self.dataset.manifest.shards)
        mean = payload / max(len(self.dataset), 1)
        cap = device.sample_bytes(self.transform, mean, self._channels)
        self.layout = SlotLayout(
            self.options.batch_size,
            (cap,),
            "uint8",
            params=len(device.PARAMS),
            fields=self._field_layout(),
        )
        parts = finish_split(self.transform, self._channels)
        self.finish = None if parts is None else parts[1]

    def defer_finish(self) -> Finish | None:
        """Have the workers write uint8 HWC and leave the float conversion, the dataset
        mean/std and the layout to the consumer (a GPU does it in one fused op).

        Returns the :class:`~datumio.augment.finish.Finish` to apply (also kept in
        ``loader.finish``), or None when the transform's output is uint8 already or it
        normalises per sample or per batch (then nothing changes). From then on the loader
        yields uint8 NHWC images: a quarter of the bytes through shared memory and PCIe.
        ``TorchIterable(loader, device=...)`` calls this for you.

        Raises:
            LoaderError: the loader has started (its slots are laid out already).
        """
        if self.finish is not None or self.options.decode == "device" or not self.layout.images:
            return self.finish
        if self._runtime is not None or self._closed:
            raise LoaderError(
                "defer_finish() must come before the loader starts (before the first "
                "iter(loader) or start()); build a new Loader"
            )
        parts = finish_split(self.transform, self._channels)
        if parts is None:
            return None
        self.transform, self.finish = parts
        self.layout = SlotLayout(
            self.options.batch_size,
            self.transform.output_shape(self._channels),
            self.transform.dtype,
            fields=self._field_layout(),
        )
        return self.finish

    def _field_layout(self) -> tuple[tuple[tuple[int, ...], str], ...]:
        return tuple((a.shape, a.dtype) for a in self.fields.arrays)

    @property
    def batch_names(self) -> tuple[str, ...]:
        """The name of each entry of a batch: ``images`` (not for a dataset without
        images), ``labels``, the fields' entries (``boxes``, ``boxes_count``, ...; see
        ``datumio.loader.fields``), the extras, and ``params`` for ``decode="device"``."""
        fields = (a.name for a in self.fields.arrays)
        names = ("images", "labels") if self.layout.images else ("labels",)
        names = (*names, *fields, *self.options.extras)
        return (*names, "params") if self.layout.params else names

    def close(self) -> None:
        """Stop the workers and unlink the slots (see NOTE(shutdown)); idempotent."""
        self._closed = True
        self._turn("close() was called")
        finalizer, self._finalizer, self._runtime = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the live workers (for monitoring and tests)."""
        return [] if self._runtime is None else self._runtime.pool.pids

    @property
    def channels(self) -> int:
        """Channels of the images (the dataset's)."""
        return self._channels

    @property
    def segment_names(self) -> tuple[str, ...]:
        return () if self._runtime is None else self._runtime.ring.names

    # -- epochs and state -----------------------------------------------------------------

    def __len__(self) -> int:
        """Batches of the current epoch on this rank, from where the epoch began: the whole
        epoch, or after :meth:`load_state_dict` the rest of the saved one. It stays the same
        while a loop runs (see :attr:`batches_left` for what is still to come)."""
        return self._batches_from(self._origin)

    @property
    def batches_left(self) -> int:
        """Batches still to come in the current epoch: the next ``iter()`` yields these (the
        whole epoch before it starts, fewer after a resume or part-way through)."""
        return self._batches_from(self._position)

    def _batches_from(self, position: int) -> int:
        opts = self.options
        return self.sampler.num_batches(opts.batch_size, opts.drop_last, position)

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def position(self) -> int:
        """Records of the current epoch already yielded."""
        return self._position

    def set_epoch(self, epoch: int) -> None:
        """Move to ``epoch`` at position 0 (no-op when already in it, to keep a resume)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise OptionError(f"epoch must be a non-negative int, got {epoch!r}")
        if int(epoch) != self._epoch:
            self._begin(int(epoch))
            self._turn(f"set_epoch({int(epoch)}) was called")

    def _begin(self, epoch: int) -> None:
        """Move to the start of ``epoch``, the sampler too (whose epoch sizes ``len``)."""
        self._epoch, self._position, self._origin = epoch, 0, 0
        self.sampler.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        """A JSON-safe snapshot: resume gives the same batches and pixels from here on."""
        return save_state(self._epoch, self._position, self.options, self.sampler, self.dataset)

    @staticmethod
    def merge_states(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """One state from every rank's :meth:`state_dict` (ranks at any positions of one
        epoch): every rank of a new world of any size loads it and serves its share of the
        rest of the epoch, each draw once over both worlds, with its old-world pixels.

        Raises:
            OptionError: not a list of Loader states of every rank of one run and epoch.
        """
        return merge_states(states)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` (same world size) or :meth:`merge_states` (any
        world size); the next ``iter()`` continues the saved epoch.

        Raises:
            OptionError: not a Loader's state (None, another library's, a Sampler's),
                another batch size or seed, a sampler that does not match, or a position
                outside the epoch.
        """
        epoch, position = check_resume(state, self.options, self.sampler, self.dataset)
        self.sampler.load_state_dict(state["sampler"])
        if "positions" in state["sampler"]:  # merged: the sampler places this rank
            position = self.sampler.position
        self._ids.clear()  # the same epoch may now draw other ids (or the same again)
        self._epoch, self._position = epoch, position
        self._origin = position
        self._turn("load_state_dict() was called")

    # -- iteration ------------------------------------------------------------------------

    def _turn(self, why: str) -> int:
        """Start a new generation: plans and iterators of older ones are void."""
        self._generation += 1
        self._turned_by = why
        return self._generation

    def _check_current(self, gen: int, yielded: int, total: int) -> None:
        if self._generation != gen:
            raise LoaderError(
                f"this iterator over the Loader ended after {yielded} of {total} batches: "
                f"{self._turned_by} meanwhile. A Loader drives one iterator at a time: finish "
                "or leave a loop before starting another over the same Loader (use a second "
                "Loader for validation), and call set_epoch/load_state_dict between epochs"
            )

    def __iter__(self) -> Iterator[Batch]:
        self.start()
        if self._started_at is None:
            self._started_at = time.perf_counter()
        return self._run_epoch(self._turn("another iter(loader) was started"))

    def _run_epoch(self, gen: int) -> Iterator[Batch]:
        runtime = self._runtime
        if runtime is None:
            raise LoaderError("this Loader is closed; create a new one")
        opts, stats = self.options, self.stats
        size = opts.batch_size
        epoch, start = self._epoch, self._position
        n = len(self.sampler)
        stop = start + ((n - start) // size) * size if opts.drop_last else n
        starts = range(start, max(start, stop), size)
        pending: Pending = {}
        self._check_current(gen, 0, len(starts))

        def dispatch(b: int) -> bool:
            slot = runtime.ring.acquire()
            if slot is None:
                return False
            lo = starts[b]
            self._dispatch(runtime, gen, b, slot, epoch, lo, min(lo + size, stop), pending)
            return True

        def wait() -> None:
            t0 = time.perf_counter()
            self._wait(runtime, gen, pending)
            stats.wait_s += time.perf_counter() - t0

        # A failed batch raises when the loop reaches it: the batches before it are served.
        batches = in_order(len(starts), opts.num_prefetch, dispatch, wait, pending, worker_error)
        try:
            t0 = time.perf_counter()
            for yielded, finished in enumerate(batches, 1):
                batch = self._hand_out(runtime, finished)
                self._position = starts[yielded - 1] + finished.count
                stats.batches += 1
                stats.samples += finished.count
                stats.jpeg_regions += finished.regions
                stats.jpeg_whole += finished.wholes
                stats.worker_restarts = runtime.pool.restarts
                now = time.perf_counter()
                stats.main_s += now - t0
                if stats.first_batch_s is None and self._started_at is not None:
                    stats.first_batch_s = now - self._started_at
                yield batch
                del batch
                self._check_current(gen, yielded, len(starts))
                t0 = time.perf_counter()
            self._begin(epoch + 1)
        finally:
            for done in pending.values():
                if isinstance(done, BatchDone):  # a failed batch's slot went back already
                    self._inflight.pop(done.slot, None)
                    runtime.ring.give_back(done.slot)

    def _dispatch(
        self,
        runtime: _Runtime,
        gen: int,
        batch: int,
        slot: int,
        epoch: int,
        lo: int,
        hi: int,
        pending: Pending,
    ) -> None:
        positions = np.arange(lo, hi, dtype=np.int64)
        ids = self._ids.get(epoch, lo, hi)
        plan_positions = self.sampler.plan_positions(positions, epoch)
        plan = BatchPlan(gen, batch, slot, epoch, ids, plan_positions)
        self._inflight[slot] = gen
        self._handle(runtime, gen, runtime.pool.submit(plan), pending)

    def _wait(self, runtime: _Runtime, gen: int, pending: Pending) -> None:
        if not self._inflight:
            # Nothing is coming and no slot is free: the caller holds every slot.
            gc.collect()  # arrays caught in reference cycles give their slots back here
            slot = runtime.ring.acquire()
            if slot is not None:
                runtime.ring.give_back(slot)
                return
            n = self.options.num_slots
            raise LoaderError(
                f"all {n} shared-memory slots are held by batches you still reference, so the "
                "loader cannot fill the next one. Drop references to old batches (or call "
                "loader.release(batch)), pass copy=True to get owned arrays, or raise "
                f"slots= above {n} to hold more batches at once"
            )
        deadline = time.monotonic() + self.options.batch_timeout_s
        while True:
            msgs = runtime.pool.wait(_POLL_S)
            self._watch.check(runtime.pool, runtime.ring)
            if msgs:
                self._handle(runtime, gen, msgs, pending)
                return
            if time.monotonic() > deadline:
                seen = "; ".join(self._watch.busy(runtime.pool))
                raise LoaderError(
                    f"no batch arrived for {self.options.batch_timeout_s} s while workers "
                    f"{runtime.pool.pids} are alive: a record may hang the decoder; raise "
                    "batch_timeout_s if batches are that slow"
                    + (f". Last seen: {seen}" if seen else "")
                )

    def _handle(self, runtime: _Runtime, gen: int, msgs: list[Message], pending: Pending) -> None:
        failure: BatchFailed | None = None
        for msg in msgs:
            if msg.batch < 0 and isinstance(msg, BatchFailed):
                failure = failure or msg
                continue
            self._inflight.pop(msg.slot, None)
            runtime.pool.forget(msg.generation, msg.batch)
            if msg.generation != gen or isinstance(msg, BatchFailed):
                runtime.ring.give_back(msg.slot)
                if isinstance(msg, BatchFailed) and msg.generation == gen:
                    pending[msg.batch] = msg  # raised when the loop reaches this batch
                continue
            for rep in msg.replacements:
                self._count_replacement(rep.failed, rep.used, rep.shard, rep.reason)
            pending[msg.batch] = msg
        if failure is not None:
            raise worker_error(failure)

    def _count_replacement(self, failed: int, used: int, shard: str, reason: str) -> None:
        self.stats.replaced += 1
        self.stats.replaced_ids[failed] = self.stats.replaced_ids.get(failed, 0) + 1
        if failed not in self._logged:
            self._logged.add(failed)
            logger.warning(
                "datumio loader: record %d (shard %s) failed (%s); using record %d of the same "
                "class instead (counted in loader.stats.replaced; strict=True raises)",
                failed,
                printable(shard),
                printable(reason),
                used,
            )

    def _hand_out(self, runtime: _Runtime, done: BatchDone) -> Batch:
        lease, arrays = runtime.ring.hand_out(done.slot, done.count, self.options.extras)
        if self.options.copy:
            arrays = [a.copy() for a in arrays]
            lease.release()
        return tuple(arrays)

    def release(self, batch: Batch | np.ndarray) -> None:
        """Give a batch's slot back now, before its arrays are dropped.

        After this the arrays may be overwritten by a later batch: only call it once the
        batch is consumed (copied to the GPU, say).
        """
        items = batch if isinstance(batch, tuple | list) else (batch,)
        for item in items:
            lease = lease_of(item)
            if lease is not None:
                lease.release()
                return
        if not self.options.copy:
            raise OptionError("release() was given arrays that do not view a loader slot")

    def __repr__(self) -> str:
        o = self.options
        return (
            f"Loader({self.dataset.path!r}, batch_size={o.batch_size}, workers={o.workers}, "
            f"slots={o.num_slots}, start_method={o.method!r}, epoch={self._epoch}, "
            f"position={self._position})"
        )
