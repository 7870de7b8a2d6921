"""Fixtures of the adapter tests: a small long-tailed dataset (the leak check after every
test is suite-wide, ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

#: Records per class of the small adapter-test dataset (long-tailed, 32x32 shapes).
CLASS_COUNTS = {"circle": 24, "square": 12, "triangle": 6, "star": 4}


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small long-tailed LMDB dataset of drawn shapes (46 records, 32x32)."""
    import numpy as np

    import datumio
    from datumio.tools.demo import draw_shape

    root = tmp_path_factory.mktemp("adapter-data")
    for c, (name, count) in enumerate(CLASS_COUNTS.items()):
        (root / "src" / name).mkdir(parents=True)
        for i in range(count):
            img = draw_shape(name, np.random.default_rng([c, i]), size=32)
            img.save(root / "src" / name / f"{i:03d}.png")
    out = root / "small.lmdb"
    datumio.ingest(str(root / "src"), str(out), datumio.IngestOptions(workers=1))
    return str(out)
