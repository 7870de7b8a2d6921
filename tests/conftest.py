"""Fixtures shared by the whole test suite (keep each one small and clearly named)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from builders import SHAPES, SMALL, TINY, DatasetFactory, Drawing, make_dataset
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


# -- datasets (tests/builders.py): session-wide ones are read-only, copy one to damage it ---


@pytest.fixture(scope="session")
def small_lmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``builders.SMALL`` as LMDB: 21 JPEG records of cat, dog, eel (12, 6, 3), mixed sizes."""
    return make_dataset(tmp_path_factory.mktemp("small-lmdb"), SMALL)


@pytest.fixture(scope="session")
def tiny_lmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``builders.TINY`` as LMDB: 8 JPEG records of red, blue (5, 3), mixed sizes; its drawn
    input is ``tiny_lmdb.parent / "src"``."""
    return make_dataset(tmp_path_factory.mktemp("tiny-lmdb"), TINY)


@pytest.fixture(scope="session")
def shapes_lmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``builders.SHAPES`` as LMDB: 46 PNG records of 4 shapes (24, 12, 6, 4), 32x32."""
    return make_dataset(tmp_path_factory.mktemp("shapes-lmdb"), SHAPES)


@pytest.fixture
def dataset_factory(tmp_path_factory: pytest.TempPathFactory) -> DatasetFactory:
    """``dataset_factory(drawing or counts, suffix=".lmdb", **ingest options) -> path``: a
    dataset of the test's own, in a fresh folder (``builders.make_dataset``)."""

    def build(drawing: Drawing | dict[str, int], suffix: str = ".lmdb", **options: object) -> Path:
        return make_dataset(tmp_path_factory.mktemp("dataset"), drawing, suffix=suffix, **options)

    return build
