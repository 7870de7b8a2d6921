"""Opening a 10M-record dataset reads the manifest and maps the index, and touches no record.

The dataset here is synthetic: a full-size global index (written straight to disk, in
chunks) and a manifest, but no shard file at all. If ``datumio.open`` read any record or
opened any shard it would fail; reading a record afterwards must name the missing shard.
Timing is measured by ``benchmarks/bench_open.py``, not asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import datumio
from datumio.shards import format as fmt

N = 10_000_000
NUM_CLASSES = 7  # N % 7 == 3: classes 0-2 get one record more than 3-6
NUM_SHARDS = 10
_CHUNK = 1 << 21


def _write_index(index: Path) -> None:
    index.mkdir()
    open_memmap = np.lib.format.open_memmap
    labels = open_memmap(index / fmt.LABELS, mode="w+", dtype=fmt.LABEL_DTYPE, shape=(N,))
    pattern = np.tile(np.arange(NUM_CLASSES, dtype=np.int32), _CHUNK // NUM_CLASSES + 1)
    for start in range(0, N, _CHUNK - _CHUNK % NUM_CLASSES):
        stop = min(N, start + _CHUNK - _CHUNK % NUM_CLASSES)
        labels[start:stop] = pattern[: stop - start]  # label of id i is i % NUM_CLASSES
    labels.flush()
    del labels
    counts = np.array([len(range(c, N, NUM_CLASSES)) for c in range(NUM_CLASSES)])
    offsets = np.zeros(NUM_CLASSES + 1, dtype=fmt.ID_DTYPE)
    np.cumsum(counts, out=offsets[1:])
    np.save(index / fmt.CLASS_OFFSETS, offsets, allow_pickle=False)
    class_ids = open_memmap(index / fmt.CLASS_IDS, mode="w+", dtype=fmt.ID_DTYPE, shape=(N,))
    for c in range(NUM_CLASSES):
        class_ids[offsets[c] : offsets[c + 1]] = np.arange(c, N, NUM_CLASSES, dtype=np.int64)
    class_ids.flush()
    del class_ids
    shard_offsets = np.linspace(0, N, NUM_SHARDS + 1).astype(fmt.ID_DTYPE)
    np.save(index / fmt.SHARD_OFFSETS, shard_offsets, allow_pickle=False)
    # Created but never written: sparse files of the right size and dtype (all zero, so
    # every record is 0x0x0 with an empty source path), costing no disk and no time.
    open_memmap(index / fmt.SHAPES, mode="w+", dtype=fmt.SHAPE_DTYPE, shape=(N, 3)).flush()
    open_memmap(index / fmt.SOURCE_OFFSETS, mode="w+", dtype=fmt.ID_DTYPE, shape=(N + 1,)).flush()
    np.save(index / fmt.SOURCES, np.zeros(0, dtype=np.uint8), allow_pickle=False)


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("scale") / fmt.INDEX_DIR
    _write_index(index)
    return index


def _make_dataset(root: Path, index: Path, backend: str) -> Path:
    root.mkdir()
    (root / fmt.INDEX_DIR).symlink_to(index, target_is_directory=True)
    offsets = np.load(index / fmt.SHARD_OFFSETS)
    counts = np.diff(np.load(index / fmt.CLASS_OFFSETS))
    manifest = {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "backend": backend,
        "encoding": "raw",
        "num_records": N,
        "num_classes": NUM_CLASSES,
        "class_names": [f"class_{c}" for c in range(NUM_CLASSES)],
        "class_counts": counts.tolist(),
        "shards": [
            {
                "file": f"{fmt.SHARDS_DIR}/{fmt.shard_name(s, backend)}",
                "first_id": int(offsets[s]),
                "num_records": int(offsets[s + 1] - offsets[s]),
                "payload_bytes": 0,
                "file_bytes": 0,
                "records_crc32": 0,
            }
            for s in range(NUM_SHARDS)
        ],
        "index": {
            name.removesuffix(".npy"): f"{fmt.INDEX_DIR}/{name}"
            for name in (
                fmt.LABELS,
                fmt.CLASS_OFFSETS,
                fmt.CLASS_IDS,
                fmt.SHARD_OFFSETS,
                fmt.SHAPES,
                fmt.SOURCE_OFFSETS,
                fmt.SOURCES,
            )
        },
    }
    (root / fmt.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return root


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_open_10m_records_reads_no_record(shared_index: Path, tmp_path: Path, backend: str) -> None:
    root = _make_dataset(tmp_path / f"big.{backend}", shared_index, backend)
    assert not (root / fmt.SHARDS_DIR).exists()

    ds = datumio.open(root)

    assert len(ds) == N
    assert ds.num_classes == NUM_CLASSES and ds.num_shards == NUM_SHARDS
    for arr in (ds.labels, ds.class_ids, ds.shapes, ds.shard_offsets):
        assert isinstance(arr, np.memmap), "the index must be memory-mapped, not loaded"
    assert ds.counts.tolist() == [1_428_572] * 3 + [1_428_571] * 4
    for c in (0, 3, NUM_CLASSES - 1):
        members = ds.class_index(c)
        assert np.array_equal(members, np.arange(c, N, NUM_CLASSES))
        assert np.all(ds.labels[members[::100_003]] == c)
    assert ds.locate(0) == (0, 0)
    assert ds.locate(N - 1) == (NUM_SHARDS - 1, N // NUM_SHARDS - 1)
    assert ds.locate(5_500_000) == (5, 500_000)
    assert ds.shape(N - 1) == (0, 0, 0) and ds.source(N - 1) == ""

    missing = fmt.shard_name(5, backend)
    with pytest.raises(datumio.FormatError, match=missing.replace(".", r"\.")) as info:
        ds[5_500_000]
    assert "missing" in str(info.value)
    with pytest.raises(IndexError):
        ds[N]
    ds.close()
