"""Helpers of the reader fuzz tests: small datasets, what they hold, and on-disk mutations.

A fuzz example copies a pristine dataset, damages ONE file of the copy (byte flips,
truncation or extension) and checks what the readers make of it against the pristine
contents read here once per module. Offsets are drawn either anywhere in the file or in
"hot" spans (record payloads, shard metadata arrays, the manifest fields readers rely
on), so that a bounded CI run still reaches the bytes where a silent misread could hide.

``DATUMIO_FUZZ=long`` switches from the bounded, derandomised CI profile to a long random
one (:func:`fuzz_settings`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import lmdb
import numpy as np
from builders import build_dataset
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

import datumio

#: True under ``DATUMIO_FUZZ=long``: many random examples instead of a fixed CI set.
LONG = os.environ.get("DATUMIO_FUZZ", "").strip().lower() == "long"

CLASS_NAMES = ("ant", "bee", "cow")
PER_CLASS = 10
SIDE = 24  # one stored size for every record, so the Loader's default transform applies
SHARD_RECORDS = 8  # 30 records -> 4 shards
GROUP_NAMES = ("g0", "g1", "g2", "g3")
BACKENDS = {"lmdb": ".lmdb", "hdf5": ".h5"}
#: Bytes at each end of a shard file treated as hot: LMDB's two meta pages, the HDF5
#: superblock and the object headers h5py writes after the data.
_HEADER_BYTES = 8192
#: A shard's per-record metadata arrays (LMDB meta keys, HDF5 dataset names).
_SHARD_ARRAYS = (b"labels", b"crc32", b"shapes", b"class_offsets", b"class_ids")
#: The manifest's top-level keys whose values every reader relies on.
_MANIFEST_KEYS = (
    "format",
    "format_version",
    "backend",
    "encoding",
    "num_records",
    "num_classes",
    "class_names",
    "class_counts",
    "shards",
    "index",
    "channels",
    "groups",
)


def fuzz_settings(ci_examples: int, long_examples: int) -> settings:
    """Bounded and repeatable in CI; ``DATUMIO_FUZZ=long``: long, random, replayable blobs.

    No example database either way: CI runs are derandomised, and a long run prints the
    ``@reproduce_failure`` blob of each failure instead of writing ``.hypothesis/``.
    """
    common = settings(
        deadline=None,  # an example starts processes or reads whole shards: no fixed budget
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    if LONG:
        return settings(common, max_examples=long_examples, derandomize=False, print_blob=True)
    return settings(common, max_examples=ci_examples, derandomize=True)


# -- the pristine datasets ---------------------------------------------------------------


def _draw_pixels(label: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Noise on a class colour: every record distinct, so a swapped record never passes."""
    img = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    img[: SIDE // 3, :, label] = 255
    img[-1, k, :] = 0
    return img


def write_source(root: Path) -> tuple[Path, Path]:
    """PNG files and a labels file with a group column; (source dir, labels file)."""
    rng = np.random.default_rng(20240531)
    src = root / "src"
    src.mkdir(parents=True)
    rows = []
    for k in range(PER_CLASS):  # interleaved, so every shard holds several classes
        for label, name in enumerate(CLASS_NAMES):
            rel = f"{name}_{k:02d}.png"
            Image.fromarray(_draw_pixels(label, k, rng)).save(src / rel)
            rows.append((rel, name, GROUP_NAMES[(k + label) % len(GROUP_NAMES)]))
    labels = root / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "group"))
        writer.writerows(rows)
    return src, labels


Span = tuple[int, int]  # [start, stop) bytes of a file


@dataclass(frozen=True)
class Pristine:
    """An undamaged dataset and everything a correct read of it returns.

    ``sizes`` maps each mutation target (path relative to the dataset) to its size;
    ``hot`` maps it to the byte spans worth aiming at, and ``record_spans`` to the spans
    that belong to one record (its payload, its index entries) by record id.
    """

    path: str
    backend: str
    labels: tuple[int, ...]
    images: tuple[np.ndarray, ...]
    payloads: tuple[bytes, ...]
    shapes: tuple[tuple[int, int, int], ...]
    sizes: dict[str, int]
    hot: dict[str, tuple[Span, ...]]
    record_spans: dict[str, dict[int, tuple[Span, ...]]]

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example
        return f"Pristine({self.backend}, {len(self)} records at {self.path})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' printer
        printer.text(repr(self))

    @property
    def targets(self) -> list[str]:
        return sorted(self.sizes)

    def spans(self, target: str, focus: frozenset[int] | None = None) -> tuple[Span, ...]:
        """Where to aim in ``target``: its hot spans, or with ``focus`` the spans of those
        records (when the file has any)."""
        if focus is not None:
            own = self.record_spans.get(target, {})
            aimed = tuple(span for i in sorted(focus) for span in own.get(i, ()))
            if aimed:
                return aimed
        return self.hot[target]


def build_pristine(root: Path) -> dict[str, Pristine]:
    """Ingest one small dataset per backend from the same source; read back what it holds."""
    src, labels = write_source(root)
    out = {}
    for backend, suffix in BACKENDS.items():
        path = build_dataset(
            src,
            root / f"pristine{suffix}",
            encode="png",
            shard_records=SHARD_RECORDS,
            labels_file=str(labels),
        )
        out[backend] = read_pristine(str(path), backend)
    return out


def read_pristine(path: str, backend: str) -> Pristine:
    with datumio.open(path) as ds:
        assert ds.backend == backend and ds.groups is not None and ds.num_shards >= 2
        records = [ds[i] for i in range(len(ds))]
        payloads = tuple(ds.read(i) for i in range(len(ds)))
        shapes = tuple(ds.shape(i) for i in range(len(ds)))
        manifest = ds.manifest
    sizes = {"manifest.json": os.path.getsize(os.path.join(path, "manifest.json"))}
    hot = {"manifest.json": _manifest_spans(os.path.join(path, "manifest.json"))}
    record_spans: dict[str, dict[int, tuple[Span, ...]]] = {}
    for name, rel in (manifest.index or {}).items():
        sizes[rel] = os.path.getsize(os.path.join(path, rel))
        hot[rel], record_spans[rel] = _npy_spans(os.path.join(path, rel), name)
    for entry in manifest.shards:
        rel = entry.file
        data = Path(path, rel).read_bytes()
        sizes[rel] = len(data)
        first = entry.first_id
        own: dict[int, tuple[Span, ...]] = {
            first + k: ((at, at + len(p)),)
            for k, p in enumerate(payloads[first : first + entry.num_records])
            if (at := data.find(p)) >= 0
        }
        ends = [(0, min(_HEADER_BYTES, len(data))), (max(0, len(data) - _HEADER_BYTES), len(data))]
        blobs = _shard_arrays(os.path.join(path, rel), backend)
        arrays = [(at, at + len(b)) for b in blobs if b and (at := data.find(b)) >= 0]
        hot[rel] = (*ends, *arrays, *(span for spans in own.values() for span in spans))
        record_spans[rel] = own
    return Pristine(
        path=path,
        backend=backend,
        labels=tuple(label for _, label in records),
        images=tuple(img for img, _ in records),
        payloads=payloads,
        shapes=shapes,
        sizes=sizes,
        hot=hot,
        record_spans=record_spans,
    )


def _shard_arrays(path: str, backend: str) -> list[bytes]:
    """The bytes of a shard's metadata arrays as they sit in its file, to aim mutations at
    them: a .npy blob per LMDB ``meta`` value, the raw data of each HDF5 dataset. Read with
    plain lmdb / h5py as docs/format.md describes (no datumio handle may be open on it)."""
    if backend == "lmdb":
        env = lmdb.open(path, subdir=False, readonly=True, lock=False, max_dbs=2)
        try:
            with env.begin() as txn:
                meta = env.open_db(b"meta", txn=txn, create=False)
                return [bytes(txn.get(name, b"", db=meta)) for name in _SHARD_ARRAYS]
        finally:
            env.close()
    with h5py.File(path, "r") as f:
        return [np.asarray(f[name.decode()][()]).tobytes() for name in _SHARD_ARRAYS]


def _npy_spans(path: str, name: str) -> tuple[tuple[Span, ...], dict[int, tuple[Span, ...]]]:
    """(hot spans, spans by record) of an index .npy file.

    Hot: the header, and the low byte of every element: a small xor there keeps the value
    plausible (a label still in range, an id still an id), the damage hardest to notice.
    By record: the low bytes of the record's own entries (its label, group, shape, and
    where class_ids lists it).
    """
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    start, step = int(arr.offset), arr.dtype.itemsize
    low = [(at, at + 1) for at in range(start, start + arr.nbytes, step)]
    per_row = arr.size // len(arr) if len(arr) else 1
    if name in ("labels", "groups", "shapes"):
        own = {i: tuple(low[i * per_row : (i + 1) * per_row]) for i in range(len(arr))}
    elif name == "class_ids":
        own = {int(record): (low[at],) for at, record in enumerate(arr)}
    else:
        own = {}
    return ((0, start), *low), own


def _manifest_spans(path: str) -> tuple[Span, ...]:
    """Byte spans of the top-level manifest fields readers rely on (indent=2 JSON)."""
    data = Path(path).read_bytes()
    starts = sorted(
        at for key in json.loads(data) if (at := data.find(f'\n  "{key}":'.encode())) >= 0
    )
    spans = []
    for key in _MANIFEST_KEYS:
        at = data.find(f'\n  "{key}":'.encode())
        if at >= 0:
            stop = next((s for s in starts if s > at), len(data))
            spans.append((at + 1, stop))
    return tuple(spans)


# -- mutations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One change to one file of a dataset copy; ``str()`` says which, for failure messages.

    ``flip``: xor ``(offset, byte)`` pairs; ``truncate``: cut to ``length`` bytes;
    ``extend``: append ``length`` random bytes drawn from ``seed``.
    """

    target: str
    kind: str  # "flip", "truncate" or "extend"
    flips: tuple[tuple[int, int], ...] = ()
    length: int = 0
    seed: int = 0

    def apply(self, root: str) -> None:
        path = os.path.join(root, self.target)
        if self.kind == "truncate":
            os.truncate(path, self.length)
            return
        with open(path, "r+b") as fh:
            if self.kind == "extend":
                fh.seek(0, os.SEEK_END)
                fh.write(np.random.default_rng(self.seed).bytes(self.length))
                return
            data = bytearray(fh.read())
            for offset, xor in self.flips:
                data[offset] ^= xor
            fh.seek(0)
            fh.write(data)

    def __repr__(self) -> str:
        """The constructor call, without the fields this kind does not use."""
        used = {"flip": ("flips",), "truncate": ("length",), "extend": ("length", "seed")}
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in used.get(self.kind, ()))
        return f"Mutation({self.target!r}, {self.kind!r}{extra})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' printer
        printer.text(repr(self))

    def __str__(self) -> str:
        if self.kind == "flip":
            what = ", ".join(f"byte {o} ^= 0x{x:02x}" for o, x in self.flips) or "unchanged"
        elif self.kind == "truncate":
            what = f"truncated to {self.length} bytes"
        else:
            what = f"extended by {self.length} random bytes (seed {self.seed})"
        return f"{self.target}: {what}"


def _offsets(size: int, hot: tuple[Span, ...]) -> st.SearchStrategy[int]:
    """Anywhere in the file, or inside one of its hot spans."""
    spans = [(lo, min(hi, size)) for lo, hi in hot if lo < min(hi, size)]
    anywhere = st.integers(0, size - 1)
    if not spans:
        return anywhere
    aimed = st.sampled_from(spans).flatmap(lambda span: st.integers(span[0], span[1] - 1))
    return st.one_of(aimed, anywhere)


#: Small values first (a nearby, plausible value), then single bits, then anything.
_XOR = st.one_of(
    st.sampled_from([1, 2, 3]), st.sampled_from([1 << b for b in range(8)]), st.integers(1, 255)
)


@st.composite
def mutations(draw: st.DrawFn, pristine: Pristine, focus: frozenset[int] | None = None) -> Mutation:
    """A flip, truncation or extension of one of ``pristine``'s files, aimed at the bytes
    of the ``focus`` records where the file has some (a Loader example reads only those)."""
    target = draw(st.sampled_from(pristine.targets))
    size, hot = pristine.sizes[target], pristine.spans(target, focus)
    kind = draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip":
        flips = draw(st.lists(st.tuples(_offsets(size, hot), _XOR), min_size=1, max_size=6))
        return Mutation(target, kind, flips=tuple(flips))
    if kind == "truncate":
        return Mutation(target, kind, length=draw(_offsets(size, hot)))
    length = draw(st.one_of(st.integers(1, 64), st.integers(1, 16384)))
    return Mutation(target, kind, length=length, seed=draw(st.integers(0, 2**16)))


@contextmanager
def damaged_copy(pristine: Pristine, mutation: Mutation) -> Iterator[str]:
    """A throw-away copy of the pristine dataset with ``mutation`` applied; yields its path.

    A fresh temporary directory per example (``tmp_path`` lives as long as the whole test).
    """
    with tempfile.TemporaryDirectory(prefix="datumio-fuzz-") as tmp:
        copy = os.path.join(tmp, os.path.basename(pristine.path))
        shutil.copytree(pristine.path, copy)
        mutation.apply(copy)
        yield copy


#: No change at all: the oracle's own check on an intact copy.
UNCHANGED = Mutation("manifest.json", "flip")


def pixels_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))


def describe(exc: BaseException) -> str:
    """``module.Type: message``, for assertion messages."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
