"""Fixtures of the augmentation tests: a tiny ingested dataset (real files, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import datumio

CLASSES = {"red": 5, "blue": 3}


def _picture(label: int, k: int, rng: np.random.Generator) -> np.ndarray:
    h, w = int(rng.integers(48, 80)), int(rng.integers(48, 80))
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = (90 * label + 11 * k) % 256
    img[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[: h // 4, : w // 4] = 255
    return img


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("augment-data")
    rng = np.random.default_rng(5)
    for label, (name, count) in enumerate(CLASSES.items()):
        (root / "src" / name).mkdir(parents=True)
        for k in range(count):
            path = root / "src" / name / f"{k:02d}.jpg"
            Image.fromarray(_picture(label, k, rng)).save(path, quality=92)
    out = root / "out.lmdb"
    datumio.ingest(str(root / "src"), str(out), datumio.IngestOptions(workers=1))
    return str(out)
