"""Helpers of the loader fault tests: a small drawn dataset, batch digests, bounded waits.

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
from image_helpers import class_picture
from leaks import wait_until  # noqa: F401  (the fault tests import it from here)
from PIL import Image

import datumio

CLASS_SIZES = {"cat": 12, "dog": 8, "eel": 5}
#: Records per shard: 26 records -> 4 shards.
SHARD_RECORDS = 7
#: The poison picture's colour; every other picture has a white bar (red channel 255).
POISON_RGB = (0, 0, 255)
POISON_CLASS = "dog"


def write_source(root: Path) -> Path:
    rng = np.random.default_rng(97)
    src = root / "src"
    for label, (name, count) in enumerate(CLASS_SIZES.items()):
        (src / name).mkdir(parents=True)
        for k in range(count):
            Image.fromarray(class_picture(label, k, rng, sides=(36, 64))).save(
                src / name / f"{k:03d}.png"
            )
    poison = np.empty((48, 48, 3), np.uint8)
    poison[:] = POISON_RGB
    Image.fromarray(poison).save(src / POISON_CLASS / "poison.png")
    return src


def build_dataset(root: Path) -> str:
    """Ingest the drawn pictures (PNG payloads, several shards); the dataset's path."""
    out = root / "faults.lmdb"
    options = datumio.IngestOptions(workers=1, encode="png", shard_records=SHARD_RECORDS)
    report = datumio.ingest(str(write_source(root)), str(out), options)
    assert not report.rejects, report.rejects
    with datumio.open(str(out)) as ds:
        assert ds.num_shards >= 3 and len(ds) == sum(CLASS_SIZES.values()) + 1
    return str(out)


# -- ingest runs: drawn folders and the command line ----------------------------------------

#: The longest an ingest run of a fault test may take.
INGEST_TIMEOUT_S = 120


def draw_folders(
    root: Path, classes: dict[str, int], seed: int, side: int = 20, vary: bool = True
) -> Path:
    """Random PNGs ``CLASS/SEED-NNN.png`` (names differ between inputs of other seeds),
    ``side`` pixels square, or a pixel or two wider in turn with ``vary``."""
    rng = np.random.default_rng(seed)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            width = side + (i % 3 if vary else 0)
            pixels = rng.integers(0, 256, (side, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{seed}-{i:03d}.png")
    return root


def ingest_cli(
    src: Path,
    out: Path,
    *args: str,
    flags: Iterable[str] = (),
    hook: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``datumio-ingest SRC OUT *flags *args`` in a fresh interpreter (``hook``: the
    ``DATUMIO_TEST_HOOK`` it runs with; ``check``: its exit status must be 0)."""
    env = {**os.environ, "DATUMIO_TEST_HOOK": hook} if hook else None
    proc = subprocess.run(
        [sys.executable, "-m", "datumio", "ingest", str(src), str(out), *flags, *args],
        capture_output=True,
        text=True,
        timeout=INGEST_TIMEOUT_S,
        env=env,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def is_poison(image: np.ndarray) -> bool:
    """True for the poison picture (any size, uint8 HWC RGB)."""
    return int(image[..., 0].max()) < 40 and int(image[..., 2].min()) > 200


def poison_record(path: str) -> int:
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


def reader_loader(path: str, seed: int, workers: int) -> datumio.Loader:
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


def reader_command(path: str, seed: int, *more: str) -> list[str]:
    """argv that runs :func:`reader_main` in a fresh interpreter."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here, os.path.dirname(here)]  # fault_support and the shared image_helpers
    code = f"import sys; sys.path[:0] = {paths!r}; from fault_support import reader_main"
    code += "; reader_main()"
    return [sys.executable, "-c", code, path, str(seed), *more]
