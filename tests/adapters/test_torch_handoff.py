"""The finish moved to the consumer, ``Loader.defer_finish`` and the transfer thread.

Real LMDB datasets, real worker processes and shared memory throughout. Only the device is
fake in the last tests: an engine whose events complete when the test's "device" thread says
so (once the transfer thread waits on one), to check that no slot or staging buffer is reused
before the event of the copy that read it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import datumio
from datumio.augment.finish import Finish, split
from datumio.augment.normalize import write
from datumio.errors import LoaderError, OptionError, WorkerError

pytest.importorskip("torch")
import handoff_hooks
import torch

from datumio.adapters import torch_handoff
from datumio.adapters.torch import TorchIterable

MEAN = (124.0, 116.0, 104.0)
STD = (58.0, 57.0, 57.0)
#: Flips as free strides (no rotation), so the uint8 path copies flipped views.
SPEC = datumio.Transform(size=(16, 16), flip=0.5, do_flip_ud=True, mean=MEAN, std=STD)
BATCH = 4
#: The threaded path on a CPU device keeps slot views in its queue (``Tensor.to("cpu")``
#: does not copy): enough slots for the loader's prefetch, the queue and the caller.
ROOMY_SLOTS = 8
#: Longest wait of a fake event, or of the test on a thread.
_WAIT_S = 30.0

Batch = tuple[torch.Tensor, ...]


def _loader(path: str | Path, transform: datumio.Transform = SPEC, **kw: Any) -> datumio.Loader:
    opts: dict[str, Any] = {"workers": 1, "extras": ("ids",), "seed": 5, **kw}
    return datumio.Loader(path, BATCH, transform=transform, **opts)


def _cloned(batches: Iterable[Batch]) -> list[Batch]:
    """Owned copies: no slot is held once a batch is stored."""
    return [tuple(t.clone() for t in batch) for batch in batches]


def _float_path(path: str | Path, epochs: int = 1, **kw: Any) -> list[Batch]:
    """What the non-device float path yields for the same seed and transform."""
    with _loader(path, **kw) as loader:
        ds = TorchIterable(loader)
        return [b for _ in range(epochs) for b in _cloned(ds)]


def _transfer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "datumio-transfer"]


def _assert_no_transfer_thread() -> None:
    deadline = time.monotonic() + _WAIT_S
    for thread in _transfer_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    assert _transfer_threads() == []


def _assert_same_batches(got: list[Batch], expected: list[Batch]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g[0].dtype == e[0].dtype and g[0].shape == e[0].shape
        np.testing.assert_allclose(g[0].numpy(), e[0].numpy(), rtol=0, atol=1e-5)
        for gt, et in zip(g[1:], e[1:], strict=True):
            assert torch.equal(gt, et)


# -- split and Finish.numpy -----------------------------------------------------------------

_FLIPS = {
    "none": np.s_[:, :],
    "lr": np.s_[:, ::-1],
    "ud": np.s_[::-1, :],
    "both": np.s_[::-1, ::-1],
}


@pytest.mark.parametrize("flip", ["none", "lr", "ud", "both"])
@pytest.mark.parametrize("backend", ["pillow", "auto"])
@pytest.mark.parametrize("layout", ["CHW", "HWC"])
def test_split_finish_equals_the_workers_normalisation(
    layout: str, backend: str, flip: str
) -> None:
    spec = datumio.Transform(size=(5, 7), mean=MEAN, std=STD, layout=layout, backend=backend)
    parts = split(spec, 3)
    assert parts is not None
    worker, finish = parts
    assert (worker.dtype, worker.layout, worker.normalize) == ("uint8", "HWC", False)
    assert worker == replace(spec, dtype="uint8", layout="HWC", normalize=False)
    assert finish.layout == layout and finish.channels == 3
    np.testing.assert_allclose(finish.scale, 1 / np.asarray(STD), rtol=1e-6)
    np.testing.assert_allclose(finish.offset, -np.asarray(MEAN) / np.asarray(STD), rtol=1e-6)

    images = np.random.default_rng(0).integers(0, 256, size=(3, 5, 7, 3), dtype=np.uint8)
    expected = np.empty((3, *spec.output_shape(3)), np.float32)
    shipped = np.empty((3, *worker.output_shape(3)), np.uint8)
    for k, image in enumerate(images):
        src = image[_FLIPS[flip]]  # a flip reaches write() as a negative stride
        write(spec, src, expected[k])
        write(worker, src, shipped[k])
        assert np.array_equal(shipped[k], src)
    got = finish.numpy(shipped)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "spec",
    [
        datumio.Transform(size=(8, 8), dtype="uint8"),
        datumio.Transform(size=(8, 8), dtype="uint8", layout="HWC"),
        datumio.Transform(size=(8, 8), mean=MEAN, std=STD, sample_zmuv=True),
        datumio.Transform(size=(8, 8), mean=MEAN, std=STD, batch_zmuv=True, layout="HWC"),
    ],
    ids=["uint8-chw", "uint8-hwc", "sample_zmuv", "batch_zmuv"],
)
def test_split_leaves_what_cannot_move(spec: datumio.Transform) -> None:
    assert split(spec, 3) is None


@pytest.mark.parametrize("channels", [1, 3])
def test_split_without_normalisation_scales_by_one(channels: int) -> None:
    # mean/std given but normalize=False: the finish must not normalise either
    spec = datumio.Transform(size=(4, 6), normalize=False, mean=MEAN, std=STD)
    parts = split(spec, channels)
    assert parts is not None
    _, finish = parts
    assert finish.scale == (1.0,) * channels and finish.offset == (0.0,) * channels
    image = np.random.default_rng(1).integers(0, 256, size=(4, 6, channels), dtype=np.uint8)
    expected = np.empty(spec.output_shape(channels), np.float32)
    write(spec, image, expected)
    assert np.array_equal(finish.numpy(image[None])[0], expected)


# -- apply_finish ---------------------------------------------------------------------------


def _finish(layout: str) -> Finish:
    parts = split(datumio.Transform(size=(5, 7), mean=MEAN, std=STD, layout=layout), 3)
    assert parts is not None
    return parts[1]


def _uint8_batch() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("layout", ["CHW", "HWC"])
def test_apply_finish_on_cpu_equals_the_numpy_reference(layout: str) -> None:
    finish, batch = _finish(layout), _uint8_batch()
    out = torch_handoff.apply_finish(torch.from_numpy(batch), finish, torch.float32)
    expected = finish.numpy(batch)
    assert out.dtype == torch.float32 and tuple(out.shape) == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-5)
    if layout == "CHW":
        assert tuple(out.shape) == (2, 3, 5, 7)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert not out.is_contiguous()  # a view of the NHWC result, not a copy
    else:
        assert tuple(out.shape) == (2, 5, 7, 3) and out.is_contiguous()


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.bfloat16, 2**-8), (torch.float16, 2**-11)])
def test_apply_finish_in_a_half_dtype(dtype: torch.dtype, rtol: float) -> None:
    finish, batch = _finish("CHW"), _uint8_batch()
    out = torch_handoff.apply_finish(torch.from_numpy(batch), finish, dtype)
    assert out.dtype == dtype and tuple(out.shape) == (2, 3, 5, 7)
    assert out.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(out.float().numpy(), finish.numpy(batch), rtol=rtol, atol=1e-6)


# -- Loader.defer_finish --------------------------------------------------------------------


def test_defer_finish_before_start_switches_to_uint8_nhwc(shapes_lmdb: Path) -> None:
    with _loader(shapes_lmdb) as loader:
        assert loader.finish is None
        finish = loader.defer_finish()
        assert isinstance(finish, Finish) and loader.finish is finish
        assert finish.layout == "CHW" and finish.channels == 3
        assert loader.defer_finish() is finish  # asking again changes nothing
        assert loader.transform.dtype == "uint8" and loader.transform.layout == "HWC"
        images, labels, ids = next(iter(loader))
        assert images.dtype == np.uint8 and images.shape == (BATCH, 16, 16, 3)
        assert labels.dtype == np.int64 and labels.shape == (BATCH,)
        assert ids.shape == (BATCH,)


def test_defer_finish_after_start_raises(shapes_lmdb: Path) -> None:
    with _loader(shapes_lmdb) as loader:
        loader.start()
        with pytest.raises(LoaderError, match="defer_finish"):
            loader.defer_finish()
        assert loader.finish is None
        images = next(iter(loader))[0]
        assert images.dtype == np.float32 and images.shape == (BATCH, 3, 16, 16)
    with pytest.raises(LoaderError, match="defer_finish"):
        loader.defer_finish()  # closed


@pytest.mark.parametrize(
    ("spec", "dtype"),
    [
        (datumio.Transform(size=(16, 16), dtype="uint8", flip=0.5), np.uint8),
        (datumio.Transform(size=(16, 16), mean=MEAN, std=STD, sample_zmuv=True), np.float32),
    ],
    ids=["uint8", "sample_zmuv"],
)
def test_defer_finish_changes_nothing_it_cannot_move(
    shapes_lmdb: Path, spec: datumio.Transform, dtype: type
) -> None:
    with _loader(shapes_lmdb, transform=spec) as loader:
        transform, layout = loader.transform, loader.layout
        assert loader.defer_finish() is None
        assert loader.finish is None
        assert loader.transform == transform and loader.layout == layout
        images = next(iter(loader))[0]
        assert images.dtype == dtype and images.shape == (BATCH, 3, 16, 16)  # still CHW


@pytest.mark.parametrize("layout", ["CHW", "HWC"])
def test_deferred_finish_gives_the_same_pixels(shapes_lmdb: Path, layout: str) -> None:
    spec = replace(SPEC, layout=layout)
    with _loader(shapes_lmdb, transform=spec, copy=True) as loader:
        expected = list(loader)
    # two workers here: the same pixels whatever the path and the number of workers
    with _loader(shapes_lmdb, transform=spec, copy=True, workers=2) as loader:
        finish = loader.defer_finish()
        assert finish is not None
        got = list(loader)
    assert len(got) == len(expected) == len(loader)
    for (images, labels, ids), (e_images, e_labels, e_ids) in zip(got, expected, strict=True):
        assert images.dtype == np.uint8 and images.shape == (BATCH, 16, 16, 3)
        finished = finish.numpy(images)
        assert finished.shape == e_images.shape
        np.testing.assert_allclose(finished, e_images, rtol=0, atol=1e-5)
        assert np.array_equal(labels, e_labels) and np.array_equal(ids, e_ids)


# -- TorchIterable(device="cpu"): the transfer thread with the SyncEngine ---------------------


def test_device_cpu_yields_the_float_path_batches(shapes_lmdb: Path) -> None:
    expected = _float_path(shapes_lmdb)
    with _loader(shapes_lmdb, slots=ROOMY_SLOTS) as loader:
        ds = TorchIterable(loader, device="cpu")
        assert loader.finish is not None and loader.transform.dtype == "uint8"
        assert len(ds) == len(loader) == len(expected)
        got: list[Batch] = []
        for images, labels, ids in ds:
            assert images.dtype == torch.float32 and tuple(images.shape) == (BATCH, 3, 16, 16)
            assert images.is_contiguous(memory_format=torch.channels_last)
            assert labels.dtype == torch.int64 and images.device.type == "cpu"
            got.append((images.clone(), labels.clone(), ids.clone()))
    _assert_same_batches(got, expected)
    _assert_no_transfer_thread()


def test_device_cpu_without_finish_on_device_keeps_float_workers(shapes_lmdb: Path) -> None:
    expected = _float_path(shapes_lmdb)
    with _loader(shapes_lmdb, slots=ROOMY_SLOTS) as loader:
        ds = TorchIterable(loader, device="cpu", finish_on_device=False)
        assert loader.finish is None and loader.transform.dtype == "float32"
        got = _cloned(ds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        for gt, et in zip(g, e, strict=True):
            assert torch.equal(gt, et)  # the same worker arithmetic: bit for bit


def test_device_cpu_two_epochs(shapes_lmdb: Path) -> None:
    expected = _float_path(shapes_lmdb, epochs=2)
    n = len(expected) // 2
    with _loader(shapes_lmdb, slots=ROOMY_SLOTS) as loader:
        ds = TorchIterable(loader, device="cpu")
        first = _cloned(ds)
        second = _cloned(ds)
        assert loader.epoch == 2
    assert len(first) == len(second) == n
    _assert_same_batches(first + second, expected)
    assert not torch.equal(first[0][2], second[0][2])  # another epoch, other records


def test_break_stops_the_transfer_thread_and_a_new_iteration_works(shapes_lmdb: Path) -> None:
    expected = _float_path(shapes_lmdb)
    with _loader(shapes_lmdb, slots=ROOMY_SLOTS) as loader:
        ds = TorchIterable(loader, device="cpu")
        first: list[Batch] = []
        for batch in ds:
            first = _cloned([batch])
            break
        del batch
        _assert_no_transfer_thread()
        _assert_same_batches(first, expected[:1])
        # The thread may have moved batches ahead of the one used; the epoch goes on from
        # where the loader stands.
        done = loader.position // BATCH
        assert loader.position % BATCH == 0 and 1 <= done < len(loader)
        rest = _cloned(ds)
        _assert_same_batches(rest, expected[done:])
        assert loader.epoch == 1
    _assert_no_transfer_thread()


@pytest.mark.timeout(60)
def test_a_worker_error_is_raised_in_the_consuming_thread(shapes_lmdb: Path) -> None:
    spec = replace(SPEC, user_fn=handoff_hooks.fail_on_ninth_call)
    # prefetch=1: the failing batch is planned only once the one before has been yielded
    # (with more, a failure read together with the batch before it is raised first)
    with _loader(shapes_lmdb, transform=spec, slots=ROOMY_SLOTS, prefetch=1) as loader:
        got: list[Batch] = []
        with pytest.raises(WorkerError, match="boom on call 9") as info:
            for batch in TorchIterable(loader, device="cpu"):
                got.extend(_cloned([batch]))
        assert threading.current_thread() is threading.main_thread()
        failing_batch = (handoff_hooks.FAILING_CALL - 1) // BATCH
        assert info.value.batch == failing_batch and len(got) == failing_batch
        _assert_no_transfer_thread()


@pytest.mark.timeout(60)
def test_a_loader_that_cannot_start_raises_in_the_consuming_thread(shapes_lmdb: Path) -> None:
    loader = _loader(shapes_lmdb)
    ds = TorchIterable(loader, device="cpu")
    loader.close()
    with pytest.raises(LoaderError, match="closed"):
        next(iter(ds))
    _assert_no_transfer_thread()


# -- a fake device whose events complete late -----------------------------------------------


class _LateEvent:
    """Done only once the engine's device thread completes it (after a synchronize)."""

    def __init__(self, engine: _LateEngine, number: int, reads: list[_Read]) -> None:
        self.engine = engine
        #: The batch (in transfer order) whose copy this event follows.
        self.number = number
        #: ``data_ptr`` of every tensor that copy read.
        self.read = tuple(r.ptr for r in reads)
        self.reads = reads
        self.done = threading.Event()

    def synchronize(self) -> None:
        self.engine.note("sync", self.number)
        self.engine.waiting.put(self)
        if not self.done.wait(_WAIT_S):
            raise RuntimeError(f"fake event {self.number} never completed")
        self.engine.note("synced", self.number)

    def query(self) -> bool:
        return self.done.is_set()


@dataclass
class _Read:
    """A tensor a copy read, and (``keep``) what it held then."""

    ptr: int
    #: (the tensor, a copy of what it held at the copy), with ``keep``.
    kept: tuple[torch.Tensor, torch.Tensor] | None


class _LateEngine(torch_handoff.SyncEngine):
    """Copies on the calling thread (``clone``) but completes an event only when its device
    thread gets to it: once the transfer thread waits on it. Completing an event stands for
    the device reading the memory the copy read: with ``keep``, that memory must still hold
    what it held when the copy was recorded; then ``on_complete`` looks at the state the
    transfer thread is blocked in. ``pinned`` gives plain CPU tensors (standing in for
    page-locked memory).

    ``keep`` holds the tensors a copy read until its event completes: only for staging
    buffers, never for slot views (that would hold the slot itself).
    """

    def __init__(
        self, *, keep: bool, on_complete: Callable[[_LateEvent], None] | None = None
    ) -> None:
        super().__init__(torch.device("cpu"))
        self.keep = keep
        self.on_complete = on_complete
        self.lock = threading.Lock()
        #: (what, number) in the order it happened, from every thread.
        self.log: list[tuple[str, int]] = []
        self.events: list[_LateEvent] = []
        self.handed: list[int] = []
        self.buffers: list[torch.Tensor] = []
        #: Events whose memory changed before they completed.
        self.overwritten: list[int] = []
        self._reads: list[_Read] = []
        self.waiting: queue.Queue[_LateEvent | None] = queue.Queue()
        self._device = threading.Thread(target=self._complete, name="fake-device", daemon=True)
        self._device.start()

    def __enter__(self) -> _LateEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        for event in self.events:
            event.done.set()  # nothing may stay blocked on an event after the test
        self.waiting.put(None)
        self._device.join(_WAIT_S)

    def note(self, what: str, number: int) -> None:
        with self.lock:
            self.log.append((what, number))

    def _complete(self) -> None:
        while (event := self.waiting.get()) is not None:
            kept = [r.kept for r in event.reads if r.kept is not None]
            if any(not torch.equal(source, then) for source, then in kept):
                self.overwritten.append(event.number)
            event.reads = []
            if self.on_complete is not None:
                self.on_complete(event)
            self.note("done", event.number)
            event.done.set()

    def pinned(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
        buf = torch.empty(shape, dtype=dtype)
        self.buffers.append(buf)
        return buf

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        ptr = tensor.data_ptr()
        self._reads.append(_Read(ptr, (tensor, tensor.clone()) if self.keep else None))
        staged = [k for k, buf in enumerate(self.buffers) if buf.data_ptr() == ptr]
        if staged:
            self.note("read", staged[0])
        return tensor.clone()

    def record(self) -> _LateEvent:
        event = _LateEvent(self, len(self.events), self._reads)
        self._reads = []
        self.events.append(event)
        self.note("record", event.number)
        return event

    def hand_over(self, event: Any, tensors: tuple[torch.Tensor, ...]) -> None:
        self.handed.append(event.number)


def test_a_staging_buffer_is_refilled_only_after_its_event(shapes_lmdb: Path) -> None:
    expected = _float_path(shapes_lmdb)
    with _LateEngine(keep=True) as engine, _loader(shapes_lmdb) as loader:
        finish = loader.defer_finish()
        transfer = torch_handoff.Transfer(
            loader, engine, pin=True, finish=finish, dtype=torch.float32, ahead=1
        )
        got = _cloned(transfer)
        log = list(engine.log)
    _assert_same_batches(got, expected)
    n, arrays = len(got), len(got[0])
    # no batch's staged pixels changed before the device had read them
    assert engine.overwritten == []
    assert engine.handed == list(range(n))
    # buffers are allocated once per ring entry (images, labels, ids) and reused
    allocated = len(engine.buffers)
    assert allocated % arrays == 0 and allocated < arrays * n
    ring = allocated // arrays
    # each batch read from staging buffers; one used before is read again only after the
    # synchronize of the event of its last use
    last_use: dict[int, int] = {}  # buffer -> event of its last use
    read: list[int] = []  # buffers read since the last record
    reused = 0
    for at, (what, number) in enumerate(log):
        if what == "read":
            if number in last_use:
                reused += 1
                assert ("synced", last_use[number]) in log[:at], (number, last_use[number])
            read.append(number)
        elif what == "record":
            assert len(read) == arrays
            last_use.update((b, number) for b in read)
            read = []
    assert reused == arrays * (n - ring)
    syncs = [k for what, k in log if what == "sync"]
    assert syncs == list(range(n - ring))


def test_without_pin_each_batch_waits_for_its_event_before_its_slot_goes(
    shapes_lmdb: Path,
) -> None:
    expected = _float_path(shapes_lmdb)
    slot_held: list[bool] = []

    def on_complete(event: _LateEvent) -> None:
        # The transfer thread is blocked in this event's synchronize: the slot the copy
        # read (its images start the slot) must not be back in the ring yet.
        ring = loader._runtime.ring  # type: ignore[union-attr]
        slot = [s.address for s in ring.segments].index(event.read[0])
        slot_held.append(slot not in ring._free and slot not in ring.returned)

    engine = _LateEngine(keep=False, on_complete=on_complete)
    with engine, _loader(shapes_lmdb) as loader:
        ds = TorchIterable(loader, device="cpu", ahead=1)
        ds.engine = engine
        got = _cloned(ds)
        log = list(engine.log)
    _assert_same_batches(got, expected)
    n = len(got)
    assert slot_held == [True] * n
    assert engine.handed == list(range(n))
    assert log == [(what, k) for k in range(n) for what in ("record", "sync", "done", "synced")]


# -- slots and positions while the transfer thread reads ahead --------------------------------


class _CountingEngine(torch_handoff.SyncEngine):
    """The real SyncEngine, counting the batches the transfer thread has moved."""

    def __init__(self) -> None:
        super().__init__(torch.device("cpu"))
        self.moved = 0
        self.changed = threading.Condition()

    def record(self) -> Any:
        with self.changed:
            self.moved += 1
            self.changed.notify_all()
        return super().record()

    def wait_moved(self, count: int, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.moved >= count, timeout_s)


def test_device_cpu_lets_the_caller_keep_its_spare_slots(shapes_lmdb: Path) -> None:
    """Without device a caller may keep as many batches as the loader has spare slots
    (default slots = prefetch + 2); the same loop with ``device="cpu"`` must not run out."""
    with _loader(shapes_lmdb) as loader:
        ds = TorchIterable(loader, device="cpu")
        ds.engine = engine = _CountingEngine()
        kept: list[Batch] = []
        seen, stalled = 0, False
        for batch in ds:
            kept = [*kept[-1:], batch]  # this batch and the one before
            seen += 1
            # a training step, long enough for the thread to fill its queue and move one more
            if not stalled:
                stalled = not engine.wait_moved(min(seen + 3, len(loader)), timeout_s=2.0)
        del batch, kept
        assert seen == len(loader)


def test_break_loses_no_batch_the_loop_did_not_see(shapes_lmdb: Path) -> None:
    expected = _float_path(shapes_lmdb)
    with _loader(shapes_lmdb, slots=ROOMY_SLOTS) as loader:
        ds = TorchIterable(loader, device="cpu")
        ds.engine = engine = _CountingEngine()
        for _batch in ds:
            engine.wait_moved(2, timeout_s=_WAIT_S)  # a step: the next batch is moved meanwhile
            # the checkpoint counts the batch the loop has, not the ones moved ahead
            assert ds.state_dict()["position"] == 4 < loader.position
            break
        del _batch
        assert loader.position == ds.state_dict()["position"] == 4
        rest = _cloned(ds)
    _assert_same_batches(rest, expected[1:])


def test_a_cuda_device_without_cuda_is_refused_at_construction(shapes_lmdb: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with datumio.Loader(shapes_lmdb, 4, workers=1) as loader:
        with pytest.raises(OptionError, match=r"device='cuda'.*no CUDA device.*device=None"):
            TorchIterable(loader, device="cuda")
        assert loader.worker_pids == []  # refused before anything started
