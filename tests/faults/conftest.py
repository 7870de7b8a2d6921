"""The fault suite: kills, corruption and fuzzing (the suite-wide leak check runs after
every test, ``tests/conftest.py``).

Every test module here sets ``pytestmark = pytest.mark.faults`` so the suite runs alone with
``python -m pytest -m faults``; it also runs within the README's test command. The fuzz tests
run a bounded, derandomised number of examples (repeatable in CI); set
``DATUMIO_FUZZ=long`` for a long random run (``fuzz_support.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_support import build_poisoned


@pytest.fixture(scope="session")
def poison_lmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fault dataset (``fault_support.build_poisoned``): 26 PNG records in 4 shards, one
    of them the poison picture. Read-only: copy it to damage it."""
    return build_poisoned(tmp_path_factory.mktemp("poison-lmdb"))
