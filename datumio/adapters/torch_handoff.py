"""Moving a Loader's batches to a torch device without costing the training thread.

One **transfer thread** per iteration drives the Loader and, for each batch:

1. with ``pin_memory``: copies the slot into a page-locked staging buffer (a small ring,
   allocated once and reused) and gives the slot back to the workers at once; the copy
   runs in this thread, not the training thread;
2. on its own stream (CUDA), copies the batch to the device (``non_blocking``), applies the
   loader's :class:`~datumio.augment.finish.Finish` there (uint8 -> float32
   ``x * scale + offset`` per channel in one ``addcmul``, NCHW as a ``channels_last`` view),
   and records an event;
3. without ``pin_memory``: drops its views of the slot once that event has completed (the
   copy read it), which gives the slot back; a staging buffer is reused only after its
   batch's event has completed.

The training thread takes ``(tensors, event)`` from a queue of depth ``ahead``, makes its
current stream wait for the event (on the device, the host does not block) and marks the
tensors as used by that stream (``record_stream``, for the caching allocator).

Errors in the thread (a worker failure, a closed loader) are raised in the training thread
at the batch where they happened; stopping early (``break``, an exception, Ctrl-C in the
training loop) stops the thread and closes its loader iterator within one batch.

The device specifics live in an :class:`Engine`: :class:`CudaEngine` (streams, events,
pinned memory) or :class:`SyncEngine` for any other device (synchronous copies: events are
done when recorded). Tests drive the same thread with a fake engine whose events complete
late, to check that no slot or staging buffer is reused before its event.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from datumio.augment.finish import Finish
from datumio.errors import LoaderError
from datumio.loader import Loader

#: Seconds between checks of the stop flag while the queue is full.
_PUT_POLL_S = 0.1
#: Longest wait for the transfer thread to end once asked to stop.
_JOIN_S = 30.0


class Event:
    """A done-when-recorded event (synchronous engines)."""

    def synchronize(self) -> None:
        return None

    def query(self) -> bool:
        return True


class SyncEngine:
    """Copies with ``Tensor.to(device)`` on the calling thread; no streams, no pinning."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def stream(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def pinned(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
        return None

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        # Always a copy: a tensor still viewing its slot would hold the slot while it waits
        # in the queue, on top of the spare slots the caller may keep.
        return tensor.to(self.device, copy=True)

    def record(self) -> Any:
        return Event()

    def hand_over(self, event: Any, tensors: tuple[torch.Tensor, ...]) -> None:
        """In the training thread, before ``tensors`` are used there."""


class CudaEngine(SyncEngine):
    """A side stream for copies and the finish; events; page-locked staging buffers."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device)
        self._stream = torch.cuda.Stream(device=device)

    def stream(self) -> contextlib.AbstractContextManager[Any]:
        return torch.cuda.stream(self._stream)

    def pinned(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
        return torch.empty(shape, dtype=dtype, pin_memory=True)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True)

    def record(self) -> Any:
        event = torch.cuda.Event()
        event.record(self._stream)
        return event

    def hand_over(self, event: Any, tensors: tuple[torch.Tensor, ...]) -> None:
        current = torch.cuda.current_stream(self.device)
        current.wait_event(event)
        for tensor in tensors:
            tensor.record_stream(current)


def engine_for(device: torch.device) -> SyncEngine:
    return CudaEngine(device) if device.type == "cuda" else SyncEngine(device)


@functools.lru_cache(maxsize=16)
def _constants(
    finish: Finish, device: torch.device, shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The finish's per-channel scale and offset on ``device`` (made once, not per batch)."""
    scale = torch.tensor(finish.scale, dtype=torch.float32, device=device).view(shape)
    offset = torch.tensor(finish.offset, dtype=torch.float32, device=device).view(shape)
    return scale, offset


def apply_finish(images: torch.Tensor, finish: Finish, dtype: torch.dtype) -> torch.Tensor:
    """NHWC ``images`` (uint8, or float 0-255) finished on their device: ``dtype`` in the
    finish's layout."""
    scale, offset = _constants(finish, images.device, (1, 1, 1, -1))
    out = torch.addcmul(offset, images, scale)
    if dtype != torch.float32:
        out = out.to(dtype)
    return out.permute(0, 3, 1, 2) if finish.layout == "CHW" else out


Decoder = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def nvjpeg_decoder(device: torch.device) -> Decoder:
    """``torchvision.io.decode_jpeg`` of a list of byte tensors, batched, on ``device``
    (nvJPEG on CUDA)."""
    try:
        from torchvision.io import decode_jpeg
    except ImportError as exc:
        raise ImportError(
            'decode="device" decodes with torchvision.io.decode_jpeg: install torchvision, '
            "or pass TorchIterable(decoder=...)"
        ) from exc

    def decode(datas: list[torch.Tensor]) -> list[torch.Tensor]:
        out = decode_jpeg(datas, device=device)
        return list(out) if isinstance(out, list | tuple) else [out]

    return decode


def decode_batch(
    payloads: np.ndarray,
    params: np.ndarray,
    *,
    size: tuple[int, int],
    channels: int,
    finish: Finish | None,
    layout: str,
    dtype: torch.dtype,
    device: torch.device,
    decoder: Decoder,
) -> torch.Tensor:
    """A ``decode="device"`` batch finished on ``device``: decode every record, cut its box
    (at whole pixels), resize it to ``size`` (bilinear, antialiased when shrinking, as
    torchvision's ``RandomResizedCrop``), mirror it where drawn, then ``finish``.

    ``payloads`` (n, bytes) and ``params`` (n, len(PARAMS)) are the loader's arrays.
    Without a ``finish`` (a uint8 Transform) the result is uint8, rounded.
    """
    import torch.nn.functional as F

    n = len(params)
    lengths = params[:, 0].astype(np.int64)
    datas = [torch.from_numpy(payloads[i, : lengths[i]]) for i in range(n)]
    images = decoder(datas)
    out_h, out_w = size
    out = torch.empty((n, channels, out_h, out_w), dtype=torch.float32, device=device)
    out = out.contiguous(memory_format=torch.channels_last)
    for i, image in enumerate(images):
        x0, y0, x1, y1 = (round(float(v)) for v in params[i, 3:7])
        h, w = image.shape[-2:]
        x0, y0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
        x1, y1 = min(max(x1, x0 + 1), w), min(max(y1, y0 + 1), h)
        crop = image[None, :, y0:y1, x0:x1].float()
        if crop.shape[1] != channels:  # a grey JPEG in a colour dataset, or the reverse
            crop = crop.expand(-1, channels, -1, -1) if crop.shape[1] == 1 else crop[:, :1]
        if (y1 - y0, x1 - x0) != (out_h, out_w):
            crop = F.interpolate(
                crop, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=True
            )
        flips = [d for d, flag in ((-1, params[i, 7]), (-2, params[i, 8])) if flag]
        out[i] = crop[0].flip(flips) if flips else crop[0]
    if finish is None:
        result = out.round_().clamp_(0, 255).to(torch.uint8)
        return result.permute(0, 2, 3, 1) if layout == "HWC" else result
    return apply_finish(out.permute(0, 2, 3, 1), finish, dtype)  # NHWC view: no copy


class _Staging:
    """A ring of page-locked buffers, each reusable once the event of its last copy is done.

    Buffers hold a full batch (``rows``), so a short last batch reuses them too.
    """

    def __init__(self, engine: SyncEngine, count: int, rows: int) -> None:
        self.engine = engine
        self.rows = rows
        self.buffers: list[tuple[torch.Tensor, ...] | None] = [None] * count
        self.events: list[Any] = [None] * count
        self.next = 0

    def _fits(self, bufs: tuple[torch.Tensor, ...], arrays: tuple[np.ndarray, ...]) -> bool:
        return len(bufs) == len(arrays) and all(
            tuple(b.shape[1:]) == a.shape[1:] and len(a) <= len(b) and b.dtype == _dtype(a)
            for b, a in zip(bufs, arrays, strict=True)
        )

    def take(self, arrays: tuple[np.ndarray, ...]) -> tuple[tuple[torch.Tensor, ...], int] | None:
        """Pinned copies of ``arrays`` (and the buffer's index), or None (no pinning)."""
        k = self.next
        self.next = (k + 1) % len(self.buffers)
        if self.events[k] is not None:
            self.events[k].synchronize()  # its last batch has left for the device
            self.events[k] = None
        bufs = self.buffers[k]
        if bufs is None or not self._fits(bufs, arrays):
            made = []
            for a in arrays:
                rows = max(self.rows, len(a))
                buf = self.engine.pinned((rows, *a.shape[1:]), _dtype(a))
                if buf is None:
                    return None
                made.append(buf)
            bufs = self.buffers[k] = tuple(made)
        views = tuple(b[: len(a)] for b, a in zip(bufs, arrays, strict=True))
        for view, a in zip(views, arrays, strict=True):
            view.copy_(torch.from_numpy(a))
        return views, k


def _dtype(array: np.ndarray) -> torch.dtype:
    return torch.from_numpy(array[:0]).dtype


class Transfer:
    """The transfer thread of one iteration over ``loader``; iterate it for the batches."""

    def __init__(
        self,
        loader: Loader,
        engine: SyncEngine,
        *,
        pin: bool,
        finish: Finish | None,
        dtype: torch.dtype,
        ahead: int = 2,
        decoder: Decoder | None = None,
    ) -> None:
        rows = loader.options.batch_size
        self.staging = _Staging(engine, ahead + 2, rows) if pin else None
        self.loader = loader
        #: decode="device": decode and finish each batch's records on the engine's device.
        self.decoder = decoder
        self.engine = engine
        self.finish = finish
        self.dtype = dtype
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=ahead)
        #: The loader's state after the last batch handed to the training loop: the thread
        #: reads ahead, so the loader's own state counts batches still in flight.
        self.served_state: dict[str, Any] = loader.state_dict()
        self.active = False
        self.finished = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="datumio-transfer", daemon=True)

    def _decode(
        self, batch: tuple[np.ndarray, ...], decoder: Decoder
    ) -> tuple[tuple[torch.Tensor, ...], Any]:
        spec = self.loader.transform
        with self.engine.stream():
            images = decode_batch(
                batch[0],
                batch[-1],
                size=spec.size,
                channels=self.loader.channels,
                finish=self.finish,
                layout=spec.layout,
                dtype=self.dtype,
                device=self.engine.device,
                decoder=decoder,
            )
            rest = [self.engine.to_device(torch.from_numpy(a)) for a in batch[1:-1]]
            event = self.engine.record()
        event.synchronize()  # the decoder has read the slot's bytes
        return (images, *rest), event

    def _move(self, batch: tuple[np.ndarray, ...]) -> tuple[tuple[torch.Tensor, ...], Any]:
        if self.decoder is not None:
            return self._decode(batch, self.decoder)
        staged = self.staging.take(batch) if self.staging is not None else None
        if staged is not None:
            self.loader.release(batch)  # copied into pinned memory: the slot may refill
            sources: tuple[torch.Tensor, ...] = staged[0]
        else:
            sources = tuple(torch.from_numpy(a) for a in batch)
        with self.engine.stream():
            moved = [self.engine.to_device(t) for t in sources]
            if self.finish is not None:
                moved[0] = apply_finish(moved[0], self.finish, self.dtype)
            event = self.engine.record()
        if staged is not None and self.staging is not None:
            self.staging.events[staged[1]] = event
        else:
            # The copy has read the slot once the event is done; the slot goes back when the
            # last array or tensor viewing it is dropped (at once, unless a tensor that stayed
            # on the CPU still views it: then when the caller drops that tensor).
            event.synchronize()
        return tuple(moved), event

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it: Iterator[tuple[np.ndarray, ...]] | None = None
        try:
            it = iter(self.loader)
            for batch in it:
                if self.stop.is_set():
                    break
                state = self.loader.state_dict()  # counts this batch
                tensors, event = self._move(batch)
                del batch
                if not self._put(("batch", (tensors, event, state))):
                    break
            else:
                self._put(("end", None))
        except BaseException as exc:  # handed to the training thread, raised there
            self._put(("error", exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # ends the loader's iterator in this thread

    def _get(self) -> tuple[str, Any]:
        while True:
            if self.stop.is_set():
                raise LoaderError(
                    "this iteration over the TorchIterable was ended by a newer one or by "
                    "load_state_dict(); its loader went back to the last batch it served. "
                    "Iterate one loop at a time"
                )
            try:
                return self.queue.get(timeout=_PUT_POLL_S)
            except queue.Empty:
                if not self.thread.is_alive() and self.queue.empty():
                    raise RuntimeError(
                        "datumio's transfer thread ended without a batch, an end or an error"
                    ) from None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        self.active = True
        self.thread.start()
        try:
            while True:
                kind, value = self._get()
                if kind == "end":
                    self.finished = True
                    return
                if kind == "error":
                    self.finished = True
                    raise value
                tensors, event, state = value
                self.engine.hand_over(event, tensors)
                del value
                self.served_state = state
                yield tensors
                del tensors
        finally:
            self.close()

    def close(self) -> None:
        """Stop the thread (it ends within one batch), drop what it had queued, and move the
        loader back to the last batch served, so that ``state_dict()`` and the next
        iteration see no batch the training loop did not."""
        self.stop.set()
        waited = 0.0
        while self.thread.is_alive() and waited < _JOIN_S:
            with contextlib.suppress(queue.Empty):
                while True:
                    self.queue.get_nowait()
            self.thread.join(_PUT_POLL_S)
            waited += _PUT_POLL_S
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()
        if self.active and not self.finished and not self.thread.is_alive():
            state = self.served_state
            here = (self.loader.epoch, self.loader.position)
            if here != (state["epoch"], state["position"]) and not self.loader.closed:
                self.loader.load_state_dict(state)
        self.active = False
