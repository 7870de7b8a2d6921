"""Helpers of the loader fault tests: a small drawn dataset, batch digests, bounded waits
(ingest runs of the fault tests come from ``tests/builders.py``).

The dataset has several shards (so a record's shard in a message means something) and one
"poison" record: a solid blue picture that :func:`fault_hooks.hang_on_poison` recognises
after decoding, to stall a worker on that one record.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from builders import SEEDED_NAMES, Drawing, build_dataset, draw_classes, widening
from leaks import wait_until  # noqa: F401  (the fault tests import it from here)
from PIL import Image

import datumio

CLASS_SIZES = {"cat": 12, "dog": 8, "eel": 5}
#: The drawn pictures of the fault dataset; the poison picture joins them.
DRAWING = Drawing(CLASS_SIZES, size=range(36, 64), picture="gradient", seed=97)
#: Records per shard: 26 records -> 4 shards.
SHARD_RECORDS = 7
#: The poison picture's colour; every other picture has a white bar (red channel 255).
POISON_RGB = (0, 0, 255)
POISON_CLASS = "dog"


def build_poisoned(root: Path) -> Path:
    """:data:`DRAWING` and the poison picture ingested (PNG payloads, several shards) as
    ``root/faults.lmdb``; its path."""
    src = DRAWING.draw(root / "src")
    poison = np.empty((48, 48, 3), np.uint8)
    poison[:] = POISON_RGB
    Image.fromarray(poison).save(src / POISON_CLASS / "poison.png")
    out = build_dataset(src, root / "faults.lmdb", encode="png", shard_records=SHARD_RECORDS)
    with datumio.open(out) as ds:
        assert ds.num_shards >= 3 and len(ds) == sum(CLASS_SIZES.values()) + 1
    return out


def draw_folders(
    root: Path, classes: dict[str, int], seed: int, side: int = 20, vary: bool = True
) -> Path:
    """Noise PNGs ``CLASS/SEED-NNN.png`` (names differ between inputs of other seeds),
    ``side`` pixels square, or a pixel or two wider in turn with ``vary``; ``root``."""
    size = widening(side, side, 3 if vary else 1)
    return draw_classes(root, classes, size=size, seed=seed, names=SEEDED_NAMES)


def is_poison(image: np.ndarray) -> bool:
    """True for the poison picture (any size, uint8 HWC RGB)."""
    return int(image[..., 0].max()) < 40 and int(image[..., 2].min()) > 200


def poison_record(path: str | Path) -> int:
    """The id of the poison record, found by decoding every record."""
    with datumio.open(path) as ds:
        found = [i for i in range(len(ds)) if is_poison(ds[i][0])]
    assert len(found) == 1, found
    return found[0]


def digest(batch: Iterable[np.ndarray]) -> int:
    """CRC32 over the bytes of every array of a batch (images, labels, extras)."""
    crc = 0
    for array in batch:
        crc = zlib.crc32(np.ascontiguousarray(array).tobytes(), crc)
    return crc


class LineReader:
    """Reads a subprocess's stdout lines on a thread, so each wait has a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stream = proc.stdout
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float) -> str:
        """The next line; AssertionError on EOF or when none comes within ``timeout``."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the subprocess within {timeout} s") from None
        assert line is not None, "the subprocess closed its stdout"
        return line

    def rest(self, timeout: float) -> list[str]:
        """Every line until EOF (the process must close stdout within ``timeout``)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the subprocess kept stdout open past {timeout} s") from None
            if line is None:
                return out
            out.append(line)


def tree_snapshot(root: str) -> dict[str, tuple[str, int, int, bytes]]:
    """Every entry under ``root``: (kind, mode, mtime_ns, bytes of a file) by relative path."""
    out: dict[str, tuple[str, int, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            if name in filenames:
                out[rel] = ("file", st.st_mode, st.st_mtime_ns, Path(full).read_bytes())
            else:
                out[rel] = ("dir", st.st_mode, st.st_mtime_ns, b"")
    st = os.lstat(root)
    out["."] = ("dir", st.st_mode, st.st_mtime_ns, b"")
    return out


# -- a reader process: the same Loader run as the test's reference run ---------------------

#: The Loader every reader process and its reference run use.
READER_BATCH = 4
READER_EPOCH_SIZE = 48
READER_EPOCHS = 2


def reader_loader(path: str | Path, seed: int, workers: int) -> datumio.Loader:
    spec = datumio.Transform(size=(16, 16), flip=0.5)
    return datumio.Loader(
        path,
        READER_BATCH,
        transform=spec,
        workers=workers,
        seed=seed,
        epoch_size=READER_EPOCH_SIZE,
        extras=("ids",),
    )


def reader_digests(loader: datumio.Loader) -> list[int]:
    """The digest of every batch of ``READER_EPOCHS`` epochs."""
    return [digest(batch) for _ in range(READER_EPOCHS) for batch in loader]


def reader_main() -> None:
    """``reader_main`` in a process: argv = PATH SEED [go]. With ``go`` it prints READY once
    its worker runs and waits for a GO line on stdin; then one JSON list of batch digests."""
    path, seed = sys.argv[1], int(sys.argv[2])
    with reader_loader(path, seed, workers=1) as loader:
        loader.start()
        if sys.argv[3:] == ["go"]:
            print("READY", flush=True)
            if sys.stdin.readline().strip() != "GO":
                raise SystemExit("no GO on stdin")
        digests = reader_digests(loader)
    print(json.dumps(digests), flush=True)


def reader_command(path: str | Path, seed: int, *more: str) -> list[str]:
    """argv that runs :func:`reader_main` in a fresh interpreter."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here, os.path.dirname(here)]  # fault_support and the shared builders
    code = f"import sys; sys.path[:0] = {paths!r}; from fault_support import reader_main"
    code += "; reader_main()"
    return [sys.executable, "-c", code, str(path), str(seed), *more]
