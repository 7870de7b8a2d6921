"""Fixtures of the tool tests: a small ingested dataset (tests/builders.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import Drawing, make_dataset

#: Noise PNGs of mixed heights; "Bird" is capitalised so a lookup of "bird" has a close name.
PETS = Drawing(
    {"cat": 3, "dog": 2, "Bird": 1}, size=lambda k: (20 + 4 * k, 24), names="{k}", seed=3
)


@pytest.fixture(scope="session")
def pets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LMDB dataset of three classes (``Bird``, ``cat``, ``dog``) of mixed image sizes."""
    return make_dataset(tmp_path_factory.mktemp("pets"), PETS)
