"""Fixtures for loader tests: a damaged copy of the suite's ``small_lmdb`` (the datasets and
the leak check after every test are suite-wide, ``tests/conftest.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from loader_support import corrupt_record

import datumio


@pytest.fixture
def corrupt_copy(small_lmdb: Path, tmp_path: Path) -> tuple[str, int]:
    """A copy of ``small_lmdb`` whose first 'dog' record fails its CRC; (path, record id)."""
    out = tmp_path / "corrupt.lmdb"
    shutil.copytree(small_lmdb, out)
    record = int(datumio.open(str(out)).class_index(1)[0])
    corrupt_record(str(out), record)
    return str(out), record
