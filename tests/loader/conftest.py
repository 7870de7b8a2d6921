"""Fixtures for loader tests: small ingested datasets and a leak check after every test."""

from __future__ import annotations

import gc
import multiprocessing
import shutil
import time
from pathlib import Path

import pytest
from loader_support import build_dataset, corrupt_record, leaked_segments, live_descendants

import datumio


@pytest.fixture(autouse=True)
def no_leaks():
    yield
    gc.collect()
    deadline = time.monotonic() + 5.0
    while True:
        segments = leaked_segments()
        procs = [p for p in multiprocessing.active_children() if p.is_alive()]
        others = live_descendants()
        if not segments and not procs and not others:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    pytest.fail(f"leak after test: segments={segments} children={procs} descendants={others}")


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
