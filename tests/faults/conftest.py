"""The fault suite: kills, corruption and fuzzing, with the leak check after every test.

Every test module here sets ``pytestmark = pytest.mark.faults`` so the suite runs alone with
``python -m pytest -m faults``; it also runs within the README's test command. The fuzz tests
run a bounded, derandomised number of examples (repeatable in CI); set
``DATUMIO_FUZZ=long`` for a long random run (``fuzz_support.py``).
"""

from __future__ import annotations

from leaks import no_leaks  # noqa: F401 (autouse: the leak check after every test)
