"""Read-ahead hints: the byte ranges of records, the pages they bring in, and the workers
that give them for exactly the batches they will read."""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import time
from pathlib import Path

import loader_hooks
import numpy as np
import pytest
from builders import Drawing, make_dataset

import datumio
from datumio.augment import Transform
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(120)
PAGE = mmap.PAGESIZE


#: 24 noise PNGs of 3 classes, 160x256 (~120 KB each).
NOISE = Drawing({"a": 8, "b": 8, "c": 8}, size=(160, 256), names="{k}", seed=9)


def _noise_dataset(root: Path, fmt: str, **options: object) -> str:
    return str(make_dataset(root, NOISE, suffix=f".{fmt}", **options))


@pytest.fixture(scope="module", params=["lmdb", "h5"])
def noise_dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _noise_dataset(tmp_path_factory.mktemp("noise"), request.param)


def test_byte_ranges_are_where_each_payload_lies_in_its_shard_file(noise_dataset: str) -> None:
    ds = datumio.open(noise_dataset)
    for i in range(len(ds)):
        ((shard, spans),) = ds.byte_ranges([i]).items()
        assert spans, i
        fd = os.open(ds.shard_path(shard), os.O_RDONLY)
        try:
            data = b"".join(os.pread(fd, length, offset) for offset, length in spans)
        finally:
            os.close(fd)
        payload = ds.read(i)
        if ds.backend == "lmdb":
            assert data == payload  # exactly the record's bytes
        else:
            assert payload in data  # the record's bytes, in the HDF5 chunks that hold them
            assert len(data) - len(payload) < sum(length for _, length in spans)


def test_byte_ranges_refuse_ids_outside_the_dataset(noise_dataset: str) -> None:
    ds = datumio.open(noise_dataset)
    for bad in (len(ds), -len(ds) - 1):
        with pytest.raises(IndexError):
            ds.byte_ranges([0, bad])
        with pytest.raises(IndexError):
            ds.advise([bad])


# -- residency (Linux mincore) ------------------------------------------------------------


def _resident(path: str) -> np.ndarray:
    """Whether each page of the file at ``path`` is in the page cache (``mincore``)."""
    size = os.path.getsize(path)
    pages = -(-size // PAGE)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]  # fmt: skip
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value)
        try:
            vec = (ctypes.c_ubyte * pages)()
            assert libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vec) == 0
            return np.frombuffer(vec, np.uint8) & 1 == 1
        finally:
            libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(size))
    finally:
        os.close(fd)


def _evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _pages(spans: list[tuple[int, int]]) -> set[int]:
    out: set[int] = set()
    for offset, length in spans:
        out.update(range(offset // PAGE, (offset + length - 1) // PAGE + 1))
    return out


def _wait_resident(path: str, pages: set[int]) -> np.ndarray:
    deadline = time.monotonic() + 20
    while True:
        resident = _resident(path)
        if all(resident[p] for p in pages) or time.monotonic() > deadline:
            return resident
        time.sleep(0.01)


class _Consumer:
    """Iterates a loader on a thread (the test thread watches the worker meanwhile)."""

    def __init__(self, loader: Loader) -> None:
        self.images = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(loader,), daemon=True)
        self.thread.start()

    def _run(self, loader: Loader) -> None:
        try:
            self.images = sum(len(batch[1]) for batch in loader)
        except BaseException as exc:
            self.error = exc

    def result(self) -> int:
        self.thread.join(60)
        assert not self.thread.is_alive(), "the loader never finished"
        if self.error is not None:
            raise self.error
        return self.images


def _wait_for(mark: Path) -> None:
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert time.monotonic() < deadline, "the worker never reached its first image"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def lmdb_noise(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _noise_dataset(tmp_path_factory.mktemp("noise-lmdb"), "lmdb", shard_records=24)


def _cold_pages(ds: datumio.Dataset) -> tuple[str, set[int]]:
    """The single shard's path, evicted from the page cache (skips where that fails), and
    the pages that opening it and finding every record's place bring back: LMDB's open
    reads the file's head, a key lookup its tree pages; never a record's own pages.

    Pages a process maps stay put: the dataset's own reader is closed first."""
    assert ds.num_shards == 1
    path = ds.shard_path(0)
    ds.close()
    _evict(path)
    if _resident(path).mean() > 0.5:
        pytest.skip("the page cache keeps this file (DONTNEED refused)")
    ds.byte_ranges(range(len(ds)))
    infra = set(np.flatnonzero(_resident(path)).tolist())
    # The first hint of a shard also asks for LMDB's tree pages (all but the values), which
    # share their first and last pages with values.
    return path, infra | _pages(ds._reader(0).index_ranges())


def test_advise_brings_in_exactly_the_records_asked_for(lmdb_noise: str) -> None:
    ds = datumio.open(lmdb_noise)
    ranges = {i: ds.byte_ranges([i])[0] for i in range(len(ds))}
    path, infra = _cold_pages(ds)
    asked = [9, 14, 19]  # past the file's head, which LMDB's open reads
    wanted = _pages([s for i in asked for s in ranges[i]])
    assert wanted - infra  # the values' own pages, beyond the shared first and last
    assert ds.advise(asked) == len(asked)  # one hint per record
    resident = _wait_resident(path, wanted)
    assert all(resident[p] for p in wanted)
    came = set(np.flatnonzero(resident).tolist()) - infra
    assert came == wanted - infra  # those records' pages, and nothing else


@pytest.fixture
def blocking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Transform]:
    """(mark, release, spec): a worker running ``spec`` touches ``mark`` in its first image
    and waits there until the test touches ``release`` (spawn: the worker sees the paths)."""
    mark, release = tmp_path / "mark", tmp_path / "release"
    monkeypatch.setenv("DATUMIO_TEST_MARK", str(mark))
    monkeypatch.setenv("DATUMIO_TEST_RELEASE", str(release))
    return mark, release, Transform(size=(16, 16), user_fn=loader_hooks.wait_for_release)


def test_workers_hint_their_current_and_next_batch_before_decoding(
    lmdb_noise: str, blocking: tuple[Path, Path, Transform]
) -> None:
    """Worker blocked in its first image: the records of the batches sent to it so far (two:
    prefetch=2) come into the page cache, those of later batches do not."""
    ds = datumio.open(lmdb_noise)
    ranges = {i: ds.byte_ranges([i])[0] for i in range(len(ds))}
    mark, release, spec = blocking
    with Loader(
        lmdb_noise, 4, transform=spec, workers=1, prefetch=2, start_method="spawn", seed=4
    ) as loader:
        plan = loader.sampler.ids_at(np.arange(0, len(loader.sampler)), 0)
        first, later = set(plan[:8].tolist()), set(plan[8:].tolist()) - set(plan[:8].tolist())
        loader.dataset.close()  # the main process maps no shard while the worker runs
        path, infra = _cold_pages(ds)
        consumer = _Consumer(loader)
        try:
            _wait_for(mark)  # the worker is inside batch 0's first image
            wanted = _pages([s for i in first for s in ranges[i]])
            resident = _wait_resident(path, wanted)
            assert all(resident[p] for p in wanted)
            later_pages = _pages([s for i in later for s in ranges[i]]) - wanted - infra
            assert later_pages and not any(resident[p] for p in later_pages)
        finally:
            release.touch()
        assert consumer.result() == len(loader) * 4


def test_readahead_zero_gives_no_hint(
    lmdb_noise: str, blocking: tuple[Path, Path, Transform]
) -> None:
    ds = datumio.open(lmdb_noise)
    ranges = {i: ds.byte_ranges([i])[0] for i in range(len(ds))}
    mark, release, spec = blocking
    with Loader(
        lmdb_noise, 4, transform=spec, workers=1, start_method="spawn", seed=4, readahead=0
    ) as loader:
        plan = loader.sampler.ids_at(np.arange(0, 8), 0)
        loader.dataset.close()  # the main process maps no shard while the worker runs
        path, infra = _cold_pages(ds)
        consumer = _Consumer(loader)
        try:
            _wait_for(mark)
            # Batch 0's first record was read; the other seven, and batch 1, were not.
            rest = _pages([s for i in set(plan[1:].tolist()) - {int(plan[0])} for s in ranges[i]])
            rest -= _pages(ranges[int(plan[0])]) | infra
            resident = _resident(path)
            assert rest and not any(resident[p] for p in rest)
        finally:
            release.touch()
        assert consumer.result() == len(loader) * 4
    with pytest.raises(datumio.errors.OptionError, match="readahead"):
        Loader(lmdb_noise, 4, transform=spec, readahead=-1)
