"""The ring of batch slots in POSIX shared memory, and the leases that hand them out.

One segment per slot, named ``datumio_<pid>_<token>_slot<N>`` (pid of the creating
process, a random token per loader). Only names, shapes and dtypes cross process
boundaries (:class:`SlotLayout`); each process maps the segments itself. A
:class:`SharedArray` is one whole array in a segment of the same kind (the original API's
input ``X`` and its output slots), mapped by workers from its :class:`SharedArraySpec`.

Thread/fork/pickle rules: :class:`SlotLayout` is plain data and pickles. :class:`SlotRing`
belongs to the process that created it (it unlinks the segments) and is not picklable;
workers attach with :func:`attach`. Lease finalizers may run on any thread (garbage
collection); they only append to a deque, which is atomic.
"""

from __future__ import annotations

import _posixshmem
import collections
import errno
import mmap
import os
import re
import secrets
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datumio._process import pid_alive
from datumio._shm import NAME_PREFIX, SHM_DIR, Segment
from datumio.errors import LoaderError

#: Names this package gives its segments: ``datumio_<pid>_<token>_<tag>``.
_STALE = re.compile(r"^datumio_(\d+)_[0-9a-f]+_[a-z]+\d*$")
_ALIGN = 64


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


#: Fields of a slot's progress record (int64 each), written by the worker filling the slot
#: and read by the main process to tell a stuck worker from a slow one.
PROGRESS_FIELDS = ("generation", "batch", "done", "record")


@dataclass(frozen=True)
class SlotLayout:
    """Where a batch's arrays sit inside one slot: images, labels, ids, groups, params
    (``params`` float64 per sample; 0 but for ``decode="device"``), progress."""

    batch_size: int
    sample_shape: tuple[int, ...]
    dtype: str
    params: int = 0
    #: Record fields after the labels (``datumio.loader.fields``): (shape, dtype) per entry.
    fields: tuple[tuple[tuple[int, ...], str], ...] = ()
    #: False for a dataset without images: batches start with the labels (the images
    #: entry, of ``sample_shape`` (0,), is not handed out).
    images: bool = True

    @property
    def images_bytes(self) -> int:
        return self.batch_size * int(np.prod(self.sample_shape)) * np.dtype(self.dtype).itemsize

    @property
    def labels_offset(self) -> int:
        return _aligned(self.images_bytes)

    @property
    def ids_offset(self) -> int:
        return self.labels_offset + _aligned(8 * self.batch_size)

    @property
    def groups_offset(self) -> int:
        return self.ids_offset + _aligned(8 * self.batch_size)

    @property
    def params_offset(self) -> int:
        return self.groups_offset + _aligned(8 * self.batch_size)

    @property
    def fields_offsets(self) -> list[int]:
        """Where each field entry starts (after the params)."""
        at = self.params_offset + _aligned(8 * self.batch_size * self.params)
        out = []
        for shape, dtype in self.fields:
            out.append(at)
            at += _aligned(self.batch_size * int(np.prod(shape)) * np.dtype(dtype).itemsize)
        out.append(at)
        return out

    @property
    def progress_offset(self) -> int:
        return self.fields_offsets[-1]

    @property
    def slot_bytes(self) -> int:
        raw = self.progress_offset + _aligned(8 * len(PROGRESS_FIELDS))
        page = mmap.PAGESIZE
        return -(-raw // page) * page

    def progress(self, buf: Any) -> np.ndarray:
        """The slot's progress record (see :data:`PROGRESS_FIELDS`) over a whole-slot buffer."""
        return np.ndarray(
            (len(PROGRESS_FIELDS),), np.int64, buffer=buf, offset=self.progress_offset
        )

    def params_view(self, buf: Any) -> np.ndarray:
        """The (batch_size, params) float64 parameters over a whole-slot buffer."""
        return np.ndarray(
            (self.batch_size, self.params), np.float64, buffer=buf, offset=self.params_offset
        )

    def field_views(self, buf: Any) -> list[np.ndarray]:
        """The field entries' (batch_size, *shape) arrays over a whole-slot buffer."""
        return [
            np.ndarray((self.batch_size, *shape), dtype, buffer=buf, offset=offset)
            for (shape, dtype), offset in zip(self.fields, self.fields_offsets, strict=False)
        ]

    def views(self, buf: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(images, labels, ids, groups) arrays over a whole-slot buffer (worker side)."""
        b = self.batch_size
        images = np.ndarray((b, *self.sample_shape), self.dtype, buffer=buf, offset=0)
        labels = np.ndarray((b,), np.int64, buffer=buf, offset=self.labels_offset)
        ids = np.ndarray((b,), np.int64, buffer=buf, offset=self.ids_offset)
        groups = np.ndarray((b,), np.int64, buffer=buf, offset=self.groups_offset)
        return images, labels, ids, groups


# -- segments ----------------------------------------------------------------------------


def remove_stale_segments(shm_dir: str = SHM_DIR) -> list[str]:
    """Unlink ``datumio_<pid>_*`` segments whose creating process is gone; return their names.

    A run killed with SIGKILL (and its resource tracker with it) leaves its segments
    behind; the next loader start removes them. Segments of live processes are left alone.
    """
    try:
        names = os.listdir(shm_dir)
    except OSError:
        return []
    removed = []
    for name in names:
        match = _STALE.match(name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        try:
            _posixshmem.shm_unlink("/" + name)
        except FileNotFoundError:
            continue
        except OSError:
            continue
        removed.append(name)
    return removed


def check_capacity(needed: int, slots: int, slot_bytes: int, shm_dir: str = SHM_DIR) -> None:
    """Refuse to allocate when ``shm_dir`` has less than ``needed`` bytes free.

    Raises:
        LoaderError: with the bytes needed and free and how to fix it.
    """
    try:
        st = os.statvfs(shm_dir)
    except OSError:
        return  # no /dev/shm to measure (macOS): shm_open reports its own errors
    if st.f_flag & os.ST_RDONLY:
        raise LoaderError(unusable_message(errno.EROFS, shm_dir))
    free = st.f_bavail * st.f_frsize
    if needed > free:
        raise LoaderError(capacity_message(needed, free, slots, slot_bytes, shm_dir))


#: Errors of creating a segment that no smaller loader would avoid.
_UNUSABLE = (errno.EROFS, errno.ENOENT, errno.EACCES, errno.EPERM)


def unusable_message(code: int, shm_dir: str) -> str:
    """What is wrong with ``shm_dir`` itself (read-only, missing, not writable), and how to
    fix it: a smaller batch would not help."""
    where = (
        f"in a container, docker run --shm-size=2g (Kubernetes: an emptyDir with medium: "
        f"Memory mounted at {shm_dir})"
    )
    if code == errno.EROFS:
        return (
            f"{shm_dir} is read-only, so the loader cannot create its shared-memory slots. "
            f"Mount it read-write (mount -o remount,rw {shm_dir}), or give the process a "
            f"writable one: {where}"
        )
    if code == errno.ENOENT:
        return (
            f"{shm_dir} is missing, so the loader cannot create its shared-memory slots. "
            f"Mount a tmpfs there (mount -t tmpfs -o size=2g tmpfs {shm_dir}), or {where}"
        )
    return (
        f"this process may not create files in {shm_dir}, so the loader cannot create its "
        f"shared-memory slots. It should be a tmpfs everyone may write to (chmod 1777 "
        f"{shm_dir}), or {where}"
    )


def create_segment(name: str, size: int, needed: int, slots: int, shm_dir: str) -> Segment:
    """A new segment of ``size`` bytes (one of ``slots`` taking ``needed`` in all).

    Raises:
        LoaderError: ``shm_dir`` is read-only, missing or not writable, or too small.
    """
    try:
        return Segment(name, size, create=True)
    except OSError as exc:
        if exc.errno in _UNUSABLE:
            raise LoaderError(
                f"{unusable_message(exc.errno, shm_dir)} (creating segment {name}: {exc})"
            ) from exc
        free = _free_bytes(shm_dir)
        raise LoaderError(
            f"cannot create shared-memory segment {name}: {exc}. "
            + capacity_message(needed, free, slots, size, shm_dir)
        ) from exc


def capacity_message(needed: int, free: int, slots: int, slot_bytes: int, shm_dir: str) -> str:
    mib = 1 << 20
    return (
        f"{shm_dir} has {free / mib:.1f} MiB free but the loader needs {needed / mib:.1f} MiB "
        f"({needed} bytes: {slots} slots x {slot_bytes} bytes; {free} bytes free). Lower "
        "batch_size, prefetch or slots, choose a smaller output size or dtype=uint8, or give "
        "the machine more shared memory (docker: --shm-size=2g; Kubernetes: an emptyDir with "
        f"medium: Memory mounted at {shm_dir})"
    )


def attach(names: tuple[str, ...], size: int) -> list[Segment]:
    """Map existing segments (worker side; never registered with a resource tracker)."""
    return [Segment(name, size, create=False) for name in names]


# -- whole arrays in shared memory (the original API's inputs and outputs) ----------------


@dataclass(frozen=True)
class SharedArraySpec:
    """What a process needs to map a :class:`SharedArray`: plain, picklable data."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        """The segment's size (at least one byte)."""
        return max(1, int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize)


class SharedArray:
    """An array in a shared-memory segment created (and later unlinked) by this process.

    Built on the loader's :class:`~datumio.loader.slots.Segment`: /dev/shm capacity is
    checked and the pages reserved up front, and workers that attach never register the
    segment with a resource tracker (so none of them can unlink it).
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any, tag: str) -> None:
        name = f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}_{tag}"
        self.spec = SharedArraySpec(name, tuple(int(v) for v in shape), np.dtype(dtype).str)
        check_capacity(self.spec.nbytes, 1, self.spec.nbytes)
        size = self.spec.nbytes
        self._segment: Segment | None = create_segment(name, size, size, 1, SHM_DIR)
        self.array: np.ndarray | None = _view(self._segment, self.spec)

    @classmethod
    def copy_of(cls, arr: np.ndarray, tag: str) -> SharedArray:
        """A shared copy of ``arr`` (one memcpy)."""
        shared = cls(arr.shape, arr.dtype, tag)
        np.copyto(shared.view(), arr)
        return shared

    def view(self) -> np.ndarray:
        if self.array is None:
            raise LoaderError(f"shared array {self.spec.name} is closed")
        return self.array

    def close(self) -> None:
        """Unlink and unmap (idempotent). Arrays handed out must be copies by now."""
        segment, self._segment, self.array = self._segment, None, None
        if segment is not None:
            segment.unlink()
            segment.close()


def _view(segment: Segment, spec: SharedArraySpec) -> np.ndarray:
    dt = np.dtype(spec.dtype)
    count = int(np.prod(spec.shape, dtype=np.int64))
    return np.frombuffer(segment.mmap, dtype=dt, count=count).reshape(spec.shape)


def attach_array(spec: SharedArraySpec) -> tuple[np.ndarray, Segment]:
    """Map an existing segment (worker side): the array and the handle to close later."""
    segment = Segment(spec.name, spec.nbytes, create=False)
    return _view(segment, spec), segment


# -- leases and views (main process) ------------------------------------------------------


class _ArrayRef:
    """Exposes part of a slot through ``__array_interface__``; numpy keeps it as the base."""

    __slots__ = ("__array_interface__", "lease")

    def __init__(self, lease: Lease, address: int, shape: tuple[int, ...], dtype: str) -> None:
        self.lease = lease
        self.__array_interface__ = {
            "version": 3,
            "shape": shape,
            "typestr": np.dtype(dtype).str,
            "data": (address, False),
        }


class Lease:
    """The caller's hold on one slot; the slot returns to the ring when this object dies.

    Every array handed out for the batch has a :class:`_ArrayRef` as its numpy base, and each
    ref holds the lease, so the lease (and the slot) lives exactly as long as any array or
    view of an array does. ``release()`` returns the slot early, at the caller's word.
    """

    __slots__ = ("__weakref__", "_done", "_ring", "segment", "slot")

    def __init__(self, ring: SlotRing, slot: int) -> None:
        self._ring = ring
        self.slot = slot
        self.segment = ring.segments[slot]  # keeps the mapping alive after ring.close()
        self._done = False

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._ring.returned.append(self.slot)

    def __del__(self) -> None:
        self.release()


class SlotRing:
    """The slots of one loader run; created, owned and unlinked by the main process."""

    def __init__(self, num_slots: int, layout: SlotLayout, shm_dir: str = SHM_DIR) -> None:
        self.layout = layout
        self.prefix = f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        size = layout.slot_bytes
        check_capacity(num_slots * size, num_slots, size, shm_dir)
        self.segments: list[Segment] = []
        #: Slots given back by leases (appended from finalizers; drained by ``acquire``).
        self.returned: collections.deque[int] = collections.deque()
        self._free: list[int] = []
        self._leases: weakref.WeakSet[Lease] = weakref.WeakSet()
        try:
            for k in range(num_slots):
                name = f"{self.prefix}_slot{k}"
                self.segments.append(
                    create_segment(name, size, num_slots * size, num_slots, shm_dir)
                )
        except BaseException:
            self.close()
            raise
        self._free = list(range(num_slots - 1, -1, -1))
        self.closed = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.segments)

    def acquire(self) -> int | None:
        """A free slot, or None when every slot is in flight or held by the caller."""
        while self.returned:
            self._free.append(self.returned.popleft())
        return self._free.pop() if self._free else None

    def give_back(self, slot: int) -> None:
        self._free.append(slot)

    def progress(self, slot: int) -> tuple[int, ...]:
        """A snapshot of ``slot``'s progress record (written by the worker filling it)."""
        return tuple(int(v) for v in self.layout.progress(self.segments[slot].mmap))

    def hand_out(self, slot: int, n: int, extras: Sequence[str]) -> tuple[Lease, list[np.ndarray]]:
        """Arrays (images, labels, *fields, *extras[, params]) over the first ``n`` samples
        of ``slot`` (no images for a layout without them)."""
        lay = self.layout
        lease = Lease(self, slot)
        self._leases.add(lease)
        base = self.segments[slot].address
        arrays = [np.asarray(_ArrayRef(lease, base, (n, *lay.sample_shape), lay.dtype))]
        if not lay.images:
            arrays = []
        arrays.append(np.asarray(_ArrayRef(lease, base + lay.labels_offset, (n,), "int64")))
        for (shape, dtype), offset in zip(lay.fields, lay.fields_offsets, strict=False):
            arrays.append(np.asarray(_ArrayRef(lease, base + offset, (n, *shape), dtype)))
        for extra in extras:
            offset = lay.ids_offset if extra == "ids" else lay.groups_offset
            arrays.append(np.asarray(_ArrayRef(lease, base + offset, (n,), "int64")))
        if lay.params:
            ref = _ArrayRef(lease, base + lay.params_offset, (n, lay.params), "float64")
            arrays.append(np.asarray(ref))
        return lease, arrays

    def close(self) -> None:
        """Unlink every segment; unmap those no handed-out array still views."""
        self.closed = True
        for seg in self.segments:
            seg.unlink()
        # A segment a live lease references stays mapped until that lease dies (its arrays
        # would point at unmapped memory otherwise); the others are unmapped now.
        held = {lease.slot for lease in list(self._leases)}
        for k, seg in enumerate(self.segments):
            if k not in held:
                seg.close()


def _free_bytes(shm_dir: str) -> int:
    try:
        st = os.statvfs(shm_dir)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def lease_of(obj: Any) -> Lease | None:
    """The :class:`Lease` behind an array handed out by the loader (or a view of it)."""
    seen = 0
    while obj is not None and seen < 64:
        if isinstance(obj, _ArrayRef):
            return obj.lease
        obj = getattr(obj, "base", None)
        seen += 1
    return None
