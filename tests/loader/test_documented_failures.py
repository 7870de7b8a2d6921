"""Documented loader behaviour (docs/loader.md) that no other test pins: iterating again
after a failed batch continues from it, a failing record gets at most 16 replacement tries,
and the ``groups`` extra."""

from __future__ import annotations

import functools
import json
import shutil
import struct
from pathlib import Path

import lmdb
import loader_hooks
import numpy as np
import pytest
from builders import Drawing, make_dataset
from PIL import Image

import datumio
from datumio.augment import Transform
from datumio.errors import WorkerError
from datumio.loader import Loader

pytestmark = pytest.mark.timeout(60)

SPEC = Transform(size=(8, 8), dtype="uint8", layout="HWC", flip=0.5)
BATCH = 3


def _batches(loader: Loader) -> list[tuple[np.ndarray, ...]]:
    return [tuple(a.copy() for a in batch) for batch in loader]


def test_iterating_again_after_a_failed_batch_continues_from_it(
    small_lmdb: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "failed"
    fail = functools.partial(
        loader_hooks.fail_once_at_call, call=2 * BATCH + 1, marker=str(marker)
    )  # the first image of batch 2: one worker fills the batches in order
    spec = Transform(size=(8, 8), dtype="uint8", layout="HWC", flip=0.5, user_fn=fail)
    kw = {"transform": spec, "workers": 1, "seed": 5, "extras": ("ids",)}
    marker.touch()
    with Loader(small_lmdb, BATCH, **kw) as loader:  # type: ignore[arg-type]
        expected = _batches(loader)
    marker.unlink()
    with Loader(small_lmdb, BATCH, **kw) as loader:  # type: ignore[arg-type]
        it = iter(loader)
        got = [tuple(a.copy() for a in next(it)) for _ in range(2)]
        with pytest.raises(WorkerError, match="boom once") as info:
            next(it)
        assert info.value.batch == 2 and marker.exists()
        assert (loader.epoch, loader.position) == (0, 2 * BATCH)
        got += _batches(loader)  # a new loop: batch 2 again, then the rest of the epoch
        assert (loader.epoch, loader.position) == (1, 0)
    assert len(got) == len(expected) == len(loader)
    for a, b in zip(got, expected, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


# -- the replacement limit -------------------------------------------------------------------

#: One class of 18 records: a failing record may try the next 16, not all 17 others.
CLASS_SIZE = 18


@pytest.fixture(scope="module")
def one_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    drawing = Drawing({"a": CLASS_SIZE}, size=(6, 6), names="{k:02d}", seed=8)
    return make_dataset(tmp_path_factory.mktemp("one-class"), drawing, encode="raw")


def _corrupt_first(one_class: Path, tmp_path: Path, count: int) -> str:
    """A copy whose records 0..count-1 (the class's first members) fail their CRC32: their
    bytes inverted in place through LMDB (docs/format.md: key = 8-byte big-endian id)."""
    copy = tmp_path / "copy.lmdb"
    shutil.copytree(one_class, copy)
    with datumio.open(copy) as ds:
        assert ds.num_shards == 1
        shard = ds.shard_path(0)
    env = lmdb.open(shard, subdir=False, max_dbs=4, lock=False)
    try:
        records = env.open_db(b"records", create=False)
        with env.begin(write=True, db=records) as txn:
            for record in range(count):
                key = struct.pack(">Q", record)
                txn.put(key, bytes(b ^ 0xFF for b in txn.get(key)))
    finally:
        env.close()
    return str(copy)


def test_a_failing_record_is_replaced_by_the_16th_next_one(one_class: Path, tmp_path: Path) -> None:
    """Records 0..15 fail: record 0 tries 1, 2, ... 16 and gets 16 (its 16th try)."""
    path = _corrupt_first(one_class, tmp_path, 16)
    with Loader(path, 6, sampling="natural", transform=SPEC, workers=1, extras=("ids",)) as ld:
        ids = np.concatenate([b[2] for b in _batches(ld)])
        # Each failed attempt counts: record k fails, then k+1 ... 15 fail in its place.
        assert ld.stats.replaced == sum(16 - k for k in range(16))
        assert sorted(ld.stats["replaced_ids"]) == list(range(16))
    assert len(ids) == CLASS_SIZE and set(ids.tolist()) == {16, 17}
    # Record k (k < 16) is replaced by the first sound record after it: 16.
    assert np.count_nonzero(ids == 16) == 17


def test_a_record_whose_16_next_records_fail_too_fails_its_batch(
    one_class: Path, tmp_path: Path
) -> None:
    """Records 0..16 fail: record 0 would need a 17th try (record 17), so its batch fails."""
    path = _corrupt_first(one_class, tmp_path, 17)
    with (
        Loader(path, 6, sampling="natural", transform=SPEC, workers=1) as loader,
        pytest.raises(WorkerError) as info,
    ):
        _batches(loader)
    assert info.value.record in range(17)
    assert "CRC32" in str(info.value)


# -- extras ----------------------------------------------------------------------------------


def test_groups_extra_holds_each_records_group(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for i in range(12):
        Image.new("RGB", (10, 10), (20 * i, 5, 5)).save(src / f"{i:02d}.png")
        rows.append({"path": f"{i:02d}.png", "label": i % 2, "group": f"patient-{i % 3}"})
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.lmdb"
    datumio.ingest(src, out, datumio.IngestOptions(workers=1, labels_file=str(labels)))
    with datumio.open(out) as ds:
        assert ds.groups is not None
        names = ds.manifest.groups.names  # type: ignore[union-attr]
        group_of_source = {ds.source(i): names[int(ds.groups[i])] for i in range(len(ds))}
    with Loader(
        str(out), 4, transform=SPEC, workers=1, sampling="natural", extras=("groups", "ids")
    ) as loader:
        batches = _batches(loader)
    assert all(len(b) == 4 for b in batches)  # images, labels, groups, ids: in that order
    groups = np.concatenate([b[2] for b in batches])
    ids = np.concatenate([b[3] for b in batches])
    assert sorted(ids.tolist()) == list(range(12))
    with datumio.open(out) as ds:
        expected = [group_of_source[ds.source(int(i))] for i in ids]
    assert [names[int(g)] for g in groups] == expected
    assert expected == [f"patient-{int(ds_i) % 3}" for ds_i in ids]
