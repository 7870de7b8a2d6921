"""Helpers of the loader tests: leak detection, drawn images, corrupting a record."""

from __future__ import annotations

import os
import re
from multiprocessing import forkserver, resource_tracker
from pathlib import Path

import numpy as np
from PIL import Image

import datumio

SHM = "/dev/shm"
_SEGMENT = re.compile(r"^datumio_(\d+)_")
CLASS_SIZES = {"cat": 12, "dog": 6, "eel": 3}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leaked_segments() -> list[str]:
    """datumio segments of this process or of a dead process."""
    out = []
    for name in os.listdir(SHM):
        m = _SEGMENT.match(name)
        if m and (int(m.group(1)) == os.getpid() or not _alive(int(m.group(1)))):
            out.append(name)
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _infrastructure() -> set[int]:
    """multiprocessing's own helpers, which live as long as the test process."""
    pids = set()
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None):
        pids.add(tracker._pid)
    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None):
        pids.add(server._forkserver_pid)
    return pids


def live_descendants() -> list[int]:
    """Processes below this one, not counting the resource tracker and fork server."""
    helpers = _infrastructure()
    found: list[int] = []
    todo = [os.getpid()]
    while todo:
        for kid in _children(todo.pop()):
            todo.append(kid)
            if kid not in helpers:
                found.append(kid)
    return found


def draw_image(label: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A distinctive picture: horizontal gradient, class colour, a bright left-hand bar."""
    h, w = int(rng.integers(40, 72)), int(rng.integers(40, 72))
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = (80 * label + 7 * k) % 256
    img[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[:, : w // 5] = 255
    return img


def make_source(root: Path) -> Path:
    rng = np.random.default_rng(1234)
    src = root / "src"
    for label, (name, count) in enumerate(CLASS_SIZES.items()):
        (src / name).mkdir(parents=True)
        for k in range(count):
            Image.fromarray(draw_image(label, k, rng)).save(src / name / f"{k:03d}.jpg", quality=92)
    return src


def build_dataset(root: Path) -> str:
    out = root / "out.lmdb"
    datumio.ingest(str(make_source(root)), str(out), datumio.IngestOptions(workers=1))
    return str(out)


def corrupt_record(dataset_dir: str, record: int) -> None:
    """Flip bytes inside ``record``'s payload in its LMDB shard (its CRC then fails)."""
    ds = datumio.open(dataset_dir)
    payload = ds.read(record)
    shard = ds.shard_path(ds.locate(record)[0])
    ds.close()
    data = bytearray(Path(shard).read_bytes())
    at = data.find(payload)
    assert at >= 0 and data.find(payload, at + 1) < 0
    middle = at + len(payload) // 2
    for j in range(middle, middle + 32):
        data[j] ^= 0xFF
    Path(shard).write_bytes(bytes(data))
