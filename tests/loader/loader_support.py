"""Helpers of the loader tests: drawn images, datasets, corrupting a record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import datumio

CLASS_SIZES = {"cat": 12, "dog": 6, "eel": 3}


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
