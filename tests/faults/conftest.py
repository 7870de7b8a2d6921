"""The fault suite: kills, corruption and fuzzing (the suite-wide leak check runs after
every test, ``tests/conftest.py``).

Every test module here sets ``pytestmark = pytest.mark.faults`` so the suite runs alone with
``python -m pytest -m faults``; it also runs within the README's test command. The fuzz tests
run a bounded, derandomised number of examples (repeatable in CI); set
``DATUMIO_FUZZ=long`` for a long random run (``fuzz_support.py``).
"""

from __future__ import annotations
