"""Fixtures for loader tests: small ingested datasets (the leak check after every test is
suite-wide, ``tests/conftest.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from loader_support import build_dataset, corrupt_record

import datumio


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_dataset(tmp_path_factory.mktemp("loader-data"))


@pytest.fixture
def corrupt_copy(dataset_path: str, tmp_path: Path) -> tuple[str, int]:
    """A copy of the dataset whose first 'dog' record fails its CRC; (path, record id)."""
    out = tmp_path / "corrupt.lmdb"
    shutil.copytree(dataset_path, out)
    record = int(datumio.open(str(out)).class_index(1)[0])
    corrupt_record(str(out), record)
    return str(out), record
