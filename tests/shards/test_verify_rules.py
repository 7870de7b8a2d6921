"""Each comparison `datumio verify` makes reports its disagreement, by name, on a real dataset
damaged in that one place: the index against the manifest and itself, a shard's record list
against the index and the manifest, the records a shard holds, the payload of a record
without an image."""

from __future__ import annotations

import io
import json
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pytest
from builders import Drawing, build_dataset

from datumio.shards import format as fmt
from datumio.shards.base import npy_bytes, records_crc32
from datumio.shards.manifest import Manifest, read_manifest
from datumio.shards.verify import VerifyReport, verify

#: 12 noise PNGs of 2 classes; with a labels file of 2 groups and an int field ``n``, in
#: shards of 5, 5 and 2 records.
DRAWING = Drawing({"a": 6, "b": 6}, size=(16, 20), seed=3)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("verify-rules")
    src = DRAWING.draw(root / "src")
    rows = ["path,label,group,n"]
    rows += [f"{rel},{name},site{k % 2},{k}" for _, name, k, rel in DRAWING.files()]
    labels = root / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = build_dataset(
        src, root / "data.lmdb", labels_file=str(labels), fields={"n": "int"}, shard_records=5
    )
    assert verify(out, decode=True).ok
    return out


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "data.lmdb"))


# -- damage, each in one place -------------------------------------------------------------


def _edit_index(name: str, change: Callable[[np.ndarray], Any]) -> Callable[[Path], None]:
    """Damage index file ``name`` (``labels.npy`` ...): ``change`` edits its array in place."""

    def damage(root: Path) -> None:
        path = root / read_manifest(str(root)).index_path(name)
        array = np.load(path, allow_pickle=False)
        change(array)
        np.save(path, array, allow_pickle=False)

    return damage


def _edit_manifest(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        obj = json.loads((root / fmt.MANIFEST).read_text(encoding="utf-8"))
        change(obj)
        (root / fmt.MANIFEST).write_text(json.dumps(obj, indent=2), encoding="utf-8")

    return damage


def _edit_shard(change: Callable[[Any, Any, Any], Any]) -> Callable[[Path], None]:
    """Damage the first shard: ``change(txn, records_db, meta_db)`` in one write transaction
    (no lock file: it would be a stray file in shards/). The manifest then lists the file's
    new size, so that the records are the one thing wrong."""

    def damage(root: Path) -> None:
        path = root / read_manifest(str(root)).shards[0].file
        env = lmdb.open(str(path), subdir=False, max_dbs=4, lock=False)
        try:
            records, meta = env.open_db(b"records"), env.open_db(b"meta")
            with env.begin(write=True) as txn:
                change(txn, records, meta)
        finally:
            env.close()
        size = path.stat().st_size
        _edit_manifest(lambda m: m["shards"][0].__setitem__("file_bytes", size))(root)

    return damage


def _swap_two_labels(labels: np.ndarray) -> None:
    """The last record of class 0 and the first of class 1 (5 and 6, both in shard 1)
    exchange labels: the counts stay."""
    last_a, first_b = int(np.flatnonzero(labels == 0)[-1]), int(np.flatnonzero(labels == 1)[0])
    labels[last_a], labels[first_b] = 1, 0


def _count_records_twice(array: np.ndarray) -> None:
    array[1] = array[-1] + 1  # then down again to the next offset


def _shorten_crc_list(txn: Any, records: Any, meta: Any) -> None:
    crcs = np.load(_npy(txn.get(b"crc32", db=meta)), allow_pickle=False)
    txn.put(b"crc32", npy_bytes(crcs[:-1]), db=meta)


def _drop_record_1(txn: Any, records: Any, meta: Any) -> None:
    assert txn.delete(fmt.record_key(1), db=records)


def _npy(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def _flip_fields_crc32(m: dict[str, Any]) -> None:
    m["shards"][0]["fields_crc32"] ^= 1


def _flip_records_crc32(m: dict[str, Any]) -> None:
    m["shards"][0]["records_crc32"] ^= 1


def _move_a_count(m: dict[str, Any]) -> None:
    m["class_counts"] = [m["class_counts"][0] + 1, m["class_counts"][1] - 1]


#: (damage, the problem verify reports, the shard it names or None).
DAMAGES = [
    (
        _edit_index(fmt.CLASS_OFFSETS, lambda a: a.__setitem__(1, a[1] + 1)),
        "index/class_offsets.npy disagrees with the labels' class counts",
        None,
    ),
    (_edit_manifest(_move_a_count), "manifest class_counts disagree with index/labels.npy", None),
    (
        _edit_index(fmt.CLASS_IDS, lambda a: a.__setitem__(slice(None), a[::-1].copy())),
        "index/class_ids.npy does not group record ids by class",
        None,
    ),
    (
        _edit_index(fmt.GROUPS, lambda a: a.__setitem__(0, 2)),
        "index/groups.npy holds groups outside 0..1",
        None,
    ),
    (
        _edit_index(fmt.SHARD_OFFSETS, lambda a: a.__setitem__(1, a[1] - 1)),
        "index/shard_offsets.npy disagrees with the manifest's shard list",
        None,
    ),
    (
        _edit_index(fmt.SOURCE_OFFSETS, _count_records_twice),
        "index/source_offsets.npy does not run from 0 without decreasing",
        None,
    ),
    (
        _edit_index(fmt.LABELS, _swap_two_labels),
        "shard labels disagree with index/labels.npy",
        1,
    ),
    (
        _edit_index(fmt.SHAPES, lambda a: a.__setitem__((0, 0), a[0, 0] + 1)),
        "shard shapes disagree with index/shapes.npy",
        0,
    ),
    (
        _edit_manifest(_flip_records_crc32),
        "shard's CRC32 list disagrees with the manifest's records_crc32",
        0,
    ),
    (
        _edit_manifest(_flip_fields_crc32),
        "shard's fields CRC32 list disagrees with the manifest's fields_crc32",
        0,
    ),
    (
        _edit_shard(_shorten_crc_list),
        "shard metadata holds 4 records, the manifest says 5",
        0,
    ),
    # The reader looks the records up by id (0 .. entries-1): with one key gone, the last
    # id is not looked up either.
    (_edit_shard(_drop_record_1), "record is missing", 0),
]


def _found(report: VerifyReport, what: str) -> list[str | None]:
    """The shards named by the problems that say ``what``."""
    return [p.shard for p in report.problems if p.what == what]


@pytest.mark.parametrize(("damage", "what", "shard"), DAMAGES, ids=[what for _, what, _ in DAMAGES])
def test_each_disagreement_is_reported_by_name(
    copy: Path, damage: Callable[[Path], None], what: str, shard: int | None
) -> None:
    damage(copy)
    report = verify(copy)
    assert not report.ok
    named = None if shard is None else read_manifest(str(copy)).shards[shard].file
    assert set(_found(report, what)) == {named}, report.problems


def test_the_quick_check_reads_shard_metadata_but_no_record(copy: Path) -> None:
    _edit_shard(_drop_record_1)(copy)
    _edit_manifest(_flip_records_crc32)(copy)
    quick = verify(copy, records=False)
    assert not quick.records_read and quick.records_checked == 0
    assert [p.what for p in quick.problems] == [
        "shard's CRC32 list disagrees with the manifest's records_crc32"
    ]
    full = verify(copy)
    assert 1 in [p.record for p in full.problems if p.what == "record is missing"]
    assert full.records_checked < 12


def test_a_record_without_an_image_that_holds_a_payload_is_reported(tmp_path: Path) -> None:
    labels = tmp_path / "table.csv"
    labels.write_text("label,n\nx,1\ny,2\nx,3\n", encoding="utf-8")
    out = build_dataset(
        tmp_path, tmp_path / "table.lmdb", labels_file=str(labels), fields={"n": "int"}
    )
    assert verify(out).ok
    payload = b"pixels?"

    def put_a_payload(txn: Any, records: Any, meta: Any) -> None:
        txn.put(fmt.record_key(2), payload, db=records)
        crcs = np.load(_npy(txn.get(b"crc32", db=meta)), allow_pickle=False)
        crcs[2] = zlib.crc32(payload)  # a sound CRC32: the payload itself is what is wrong
        txn.put(b"crc32", npy_bytes(crcs), db=meta)
        _edit_manifest(lambda m: m["shards"][0].__setitem__("records_crc32", records_crc32(crcs)))(
            out
        )

    _edit_shard(put_a_payload)(out)
    assert Manifest.from_json(json.loads((out / fmt.MANIFEST).read_text())).encoding == "none"
    [problem] = verify(out).problems
    assert problem.record == 2
    assert problem.what == "holds a 7-byte payload in a dataset without images"
