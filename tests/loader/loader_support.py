"""Helpers of the loader tests: drawn images, datasets, corrupting a record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from image_helpers import class_picture
from PIL import Image

import datumio

CLASS_SIZES = {"cat": 12, "dog": 6, "eel": 3}


def make_source(root: Path) -> Path:
    rng = np.random.default_rng(1234)
    src = root / "src"
    for label, (name, count) in enumerate(CLASS_SIZES.items()):
        (src / name).mkdir(parents=True)
        for k in range(count):
            Image.fromarray(class_picture(label, k, rng)).save(
                src / name / f"{k:03d}.jpg", quality=92
            )
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
