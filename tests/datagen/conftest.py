"""After every datagen test: no shared-memory segment of this process, no child process."""

from __future__ import annotations

import pytest
from leaks import leaks


@pytest.fixture(autouse=True)
def no_leaks():
    yield
    left = leaks()
    if left is not None:
        pytest.fail(f"leak after test: {left}")
