"""Fixtures of the tool tests: a small ingested dataset (real files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datumio

#: Class folder -> files; "Bird" is capitalised so a lookup of "bird" has a close name.
PETS = {"cat": 3, "dog": 2, "Bird": 1}


@pytest.fixture(scope="session")
def pets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LMDB dataset of three classes (``Bird``, ``cat``, ``dog``) of mixed image sizes."""
    root = tmp_path_factory.mktemp("pets")
    rng = np.random.default_rng(3)
    for name, count in PETS.items():
        (root / "src" / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (20 + 4 * i, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "src" / name / f"{i}.png")
    out = root / "pets.lmdb"
    datumio.ingest(root / "src", out, datumio.IngestOptions(workers=1))
    return out
