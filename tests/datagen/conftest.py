"""After every datagen test: no shared-memory segment of this process, no child process."""

from __future__ import annotations

from leaks import no_leaks  # noqa: F401 (autouse: the leak check after every test)
