"""Readers of a dataset that changes under them: replaced (``--overwrite``) or appended to.

A Loader's workers (and each worker that replaces a dead one) unpickle the dataset the
Loader opened. They must read that very version or fail saying the dataset was replaced:
never the new dataset at the same path, never a mix of the two.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from builders import build_dataset, draw_classes

import datumio
from datumio.errors import DatasetReplacedError, LoaderError
from datumio.shards.verify import verify

pytestmark = pytest.mark.faults

OLD_CLASSES = {"cat": 12, "dog": 8, "eel": 5}
NEW_CLASSES = {"ant": 30, "bee": 3}


def _source(root: Path, classes: dict[str, int], seed: int) -> Path:
    return draw_classes(root, classes, size=range(24, 40), picture="gradient", seed=seed)


def _ingest(src: Path, out: Path, **options: object) -> Path:
    return build_dataset(src, out, encode="png", shard_records=6, **options)


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the dataset, a 2-class input to overwrite it with, a 3-class input to append)."""
    out = tmp_path / "data.lmdb"
    _ingest(_source(tmp_path / "old", OLD_CLASSES, 1), out)
    new = _source(tmp_path / "new", NEW_CLASSES, 2)
    more = _source(tmp_path / "more", {"cat": 4, "dog": 4, "eel": 4}, 3)
    return out, new, more


def _loader(path: Path) -> datumio.Loader:
    spec = datumio.Transform(size=(16, 16))
    return datumio.Loader(
        str(path), 4, transform=spec, workers=2, sampling="natural", extras=("ids",), seed=3
    )


def _labels(path: Path) -> np.ndarray:
    with datumio.open(str(path)) as ds:
        return np.asarray(ds.labels).copy()


def test_workers_started_after_an_overwrite_refuse_the_new_dataset(
    paths: tuple[Path, Path, Path],
) -> None:
    out, new, _ = paths
    with _loader(out) as loader:
        _ingest(new, out, overwrite=True)  # the Loader's workers have not started yet
        with pytest.raises(LoaderError, match="was replaced after it was opened"):
            for _ in loader:
                pass
        assert loader.dataset.class_names == list(OLD_CLASSES)


def test_a_replacement_worker_never_reads_the_dataset_that_replaced_the_old_one(
    paths: tuple[Path, Path, Path],
) -> None:
    out, new, _ = paths
    old_labels = _labels(out)
    seen = 0
    with _loader(out) as loader:
        it = iter(loader)
        _, labels, ids = next(it)
        np.testing.assert_array_equal(labels, old_labels[ids])
        _ingest(new, out, overwrite=True)
        os.kill(loader.worker_pids[0], signal.SIGKILL)
        # Batches of workers that were running may still come (from the shards they hold
        # open, the old dataset's); the replacement worker refuses the new dataset.
        with pytest.raises(LoaderError, match="replaced"):
            for _, labels, ids in it:
                np.testing.assert_array_equal(labels, old_labels[ids])
                seen += 1
    assert seen < len(loader)


def test_a_shard_of_the_new_dataset_is_refused_by_a_reader_of_the_old_one(
    paths: tuple[Path, Path, Path],
) -> None:
    out, new, _ = paths
    ds = datumio.open(str(out))
    first = ds[0]  # shard 0 open: it stays readable, the old dataset's
    _ingest(new, out, overwrite=True)
    np.testing.assert_array_equal(ds[0][0], first[0])
    with pytest.raises(DatasetReplacedError, match="belongs to dataset"):
        ds[len(ds) - 1]
    ds.close()


def test_an_append_under_a_loader_is_not_a_replacement(paths: tuple[Path, Path, Path]) -> None:
    out, _, more = paths
    old_labels = _labels(out)
    with _loader(out) as loader:
        it = iter(loader)
        next(it)
        _ingest(more, out, append=True)
        os.kill(loader.worker_pids[0], signal.SIGKILL)
        rest = list(it)
    assert len(rest) == len(loader) - 1
    for _, labels, ids in rest:
        assert int(ids.max()) < len(old_labels)  # the version the Loader opened
        np.testing.assert_array_equal(labels, old_labels[ids])
    with datumio.open(str(out)) as ds:
        assert len(ds) == len(old_labels) + 12


def test_a_dataset_moved_away_and_another_put_in_its_place_is_refused_at_unpickle(
    paths: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    import pickle

    out, new, _ = paths
    ds = datumio.open(str(out))
    data = pickle.dumps(ds)
    out.rename(tmp_path / "moved.lmdb")
    _ingest(new, out)
    with pytest.raises(DatasetReplacedError, match="now holds dataset"):
        pickle.loads(data)
    (tmp_path / "moved.lmdb").rename(tmp_path / "moved-again.lmdb")
    ds.close()


def test_a_shard_of_another_dataset_with_the_same_records_is_refused_and_verify_names_it(
    tmp_path: Path,
) -> None:
    src = _source(tmp_path / "src", OLD_CLASSES, 4)
    one, two = tmp_path / "one.lmdb", tmp_path / "two.lmdb"
    _ingest(src, one)
    _ingest(src, two)  # the same records: only the identity tells the shards apart
    shard = "shards/shard-00000.mdb"
    (one / shard).write_bytes((two / shard).read_bytes())
    with datumio.open(str(one)) as ds, pytest.raises(DatasetReplacedError, match="belongs to"):
        ds[0]
    report = verify(str(one))
    assert [p.shard for p in report.problems] == [shard]
    assert "written for another dataset" in report.problems[0].what
