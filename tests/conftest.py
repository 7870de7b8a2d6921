"""Fixtures shared by the whole test suite (keep each one small and clearly named)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from image_helpers import MakeImage, draw_image, read_rejects_jsonl
from leaks import no_leaks  # noqa: F401 (autouse: the leak check after every test, suite-wide)


def pytest_configure(config: pytest.Config) -> None:
    """A run started in the background (``cmd &`` in a script, nohup) inherits SIGINT
    ignored, and so would every training script a test starts: its Ctrl-C tests would then
    wait for a signal that never counts. Give SIGINT back its default here; the children
    inherit that."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def make_image() -> MakeImage:
    """``make_image(path, size=(w, h), mode="RGB", fmt="PNG", colour=None) -> path``."""
    return draw_image


@pytest.fixture
def rejects_jsonl() -> Callable[[str | Path], list[dict[str, object]]]:
    """``rejects_jsonl(dataset_dir) -> [row, ...]`` from the dataset's rejects.jsonl."""
    return read_rejects_jsonl
