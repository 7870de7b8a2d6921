"""Damaged datasets are refused where the damage is, never passed on to training.

Each case damages one thing on a real copy of a real dataset: a label outside the class
range, a group outside the group range, a pickled index array, index/shard disagreements,
manifest paths that leave the dataset, a missing or truncated shard. What must follow: a
:class:`datumio.FormatError` (or ``RecordError``) naming the file and the bad value, from
``datumio.open``, the Loader, ``inspect`` and ``verify`` alike, and no error text that
passes on numpy's advice to unpickle.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, Slot, build_dataset, noise

import datumio
from datumio.errors import FormatError, RecordError
from datumio.shards.verify import verify

pytestmark = pytest.mark.faults


def _tinted(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    pixels = noise(slot, rng)
    pixels[..., 1] = 80 * slot.label
    return pixels


#: 18 noise PNGs of 3 classes, a green level per class; the labels file puts them in 2 groups.
DRAWING = Drawing({"cat": 9, "dog": 6, "eel": 3}, picture=_tinted, names="{k}", seed=11)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corrupt")
    src = DRAWING.draw(root / "images")
    labels = DRAWING.write_labels(src / "labels.csv", groups=2)
    return build_dataset(
        src, root / "clean.lmdb", encode="png", shard_records=5, labels_file=str(labels)
    )


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    out = tmp_path / "damaged.lmdb"
    shutil.copytree(pristine, out)
    return out


def _set_index(path: Path, name: str, edit) -> None:  # type: ignore[no-untyped-def]
    file = path / "index" / name
    arr = np.load(file).copy()
    edit(arr)
    np.save(file, arr, allow_pickle=False)


def _inspect(path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from datumio.tools.inspect_cmd import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, str(path), "--quiet", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_label_outside_the_class_range_is_refused_at_open(copy: Path) -> None:
    _set_index(copy, "labels.npy", lambda a: a.__setitem__(4, 999))
    with pytest.raises(FormatError) as info:
        datumio.open(copy)
    text = str(info.value)
    assert "labels.npy" in text and "999" in text and "record 4" in text and "0..2" in text
    with pytest.raises(FormatError, match="999"):
        datumio.Loader(copy, 4, workers=1)
    proc = _inspect(copy, "--no-duplicates")
    assert proc.returncode == 1 and "999" in proc.stderr
    report = verify(copy)
    assert not report.ok and any("outside" in p.what for p in report.problems)


def test_a_negative_label_and_a_group_out_of_range_are_refused(copy: Path) -> None:
    _set_index(copy, "groups.npy", lambda a: a.__setitem__(0, 7))
    with pytest.raises(FormatError, match=r"groups\.npy.*group 7"):
        datumio.open(copy)
    _set_index(copy, "groups.npy", lambda a: a.__setitem__(0, 0))
    _set_index(copy, "labels.npy", lambda a: a.__setitem__(-1, -1))
    with pytest.raises(FormatError, match="label -1"):
        datumio.open(copy)


def test_a_label_changed_within_range_is_caught_when_the_record_is_read(copy: Path) -> None:
    """The index and the shard disagree: opening cannot see it cheaply, reading does."""
    with datumio.open(copy) as ds:
        victim = int(ds.class_index(0)[0])
    _set_index(copy, "labels.npy", lambda a: a.__setitem__(victim, 1))
    with datumio.open(copy) as ds:
        with pytest.raises(RecordError, match=f"record {victim}.*label 1.*label 0"):
            ds[victim]
        assert ds[victim + 1][1] == int(ds.labels[victim + 1])  # the others read on
    assert not verify(copy).ok


def test_a_pickled_index_array_is_refused_without_unpickling_advice(copy: Path) -> None:
    objects = np.array([{"x": 1}] * 18, dtype=object)
    with open(copy / "index" / "labels.npy", "wb") as fh:
        np.save(fh, objects, allow_pickle=True)
    for action in (lambda: datumio.open(copy), lambda: datumio.Loader(copy, 4, workers=1)):
        with pytest.raises(FormatError) as info:
            action()
        text = str(info.value)
        assert "labels.npy" in text and "Python objects" in text
        assert "allow_pickle" not in text and "unsafely" not in text
    messages = " ".join(p.what for p in verify(copy).problems)
    assert "Python objects" in messages and "allow_pickle" not in messages
    proc = _inspect(copy)
    assert proc.returncode == 1 and "allow_pickle" not in proc.stderr + proc.stdout


def test_an_index_of_another_dtype_or_length_is_refused(copy: Path) -> None:
    np.save(copy / "index" / "labels.npy", np.zeros(18, dtype=">i4"), allow_pickle=False)
    with pytest.raises(FormatError, match=r"labels\.npy holds >i4"):
        datumio.open(copy)
    np.save(copy / "index" / "shapes.npy", np.zeros((17, 3), dtype="<u4"), allow_pickle=False)
    np.save(copy / "index" / "labels.npy", np.zeros(18, dtype="<i4"), allow_pickle=False)
    with pytest.raises(FormatError, match=r"shapes\.npy holds uint32 \(17, 3\)"):
        datumio.open(copy)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["shards"][0].__setitem__("file", "../../etc/passwd"), "inside the dataset"),
        (lambda m: m["index"].__setitem__("labels", "/etc/passwd"), "inside the dataset"),
        (lambda m: m["shards"][1].__setitem__("first_id", 3), "first_id"),
        (lambda m: m.__setitem__("num_records", 19), "num_records"),
        (lambda m: m["shards"][0].pop("records_crc32"), "records_crc32"),
        (lambda m: m.__setitem__("class_names", "cat"), "class_names"),
        (lambda m: m.__setitem__("encoding", "gif"), "encoding"),
        (lambda m: m.__setitem__("shards", {}), "shards"),
    ],
    ids=["shard-escape", "index-escape", "first-id", "count", "no-crc", "names", "enc", "type"],
)
def test_a_manifest_that_readers_cannot_trust_is_refused(copy: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    path = copy / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match=message):
        datumio.open(copy)
    report = verify(copy)
    assert not report.ok and message in report.problems[0].what


def test_a_swapped_shard_is_caught_by_its_record_list(copy: Path) -> None:
    """Two shards of equal size exchanged: each CRC matches its own payloads, so only the
    manifest's checksum of the shard's record list tells."""
    shards = copy / "shards"
    a, b = shards / "shard-00000.mdb", shards / "shard-00001.mdb"
    tmp = shards / "swap"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    with datumio.open(copy) as ds, pytest.raises(FormatError, match="shard-00000"):
        ds[0]


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_inspect_exits_1_on_a_damaged_shard_whatever_the_flags(copy: Path, damage: str) -> None:
    shard = copy / "shards" / "shard-00001.mdb"
    if damage == "missing":
        shard.unlink()
    else:
        with open(shard, "r+b") as fh:
            fh.truncate(shard.stat().st_size // 2)
    for flags in ((), ("--no-duplicates",), ("--json", "--no-duplicates")):
        proc = _inspect(copy, *flags)
        assert proc.returncode == 1, (flags, proc.stdout, proc.stderr)
        assert "shard-00001" in proc.stderr and "integrity problem" in proc.stderr
        assert "Traceback" not in proc.stderr
    summary = json.loads(_inspect(copy, "--json", "--no-duplicates").stdout)
    assert summary["integrity"]["ok"] is False and summary["records"] == 18


def test_inspect_record_exits_1_on_its_bit_rot_or_a_damaged_shard(copy: Path) -> None:
    with datumio.open(copy) as ds:
        payload, shard = ds.read(2), ds.shard_path(ds.locate(2)[0])
    data = bytearray(Path(shard).read_bytes())
    at = data.find(payload) + len(payload) // 2
    data[at] ^= 0xFF
    Path(shard).write_bytes(bytes(data))
    proc = _inspect(copy, "--record", "2")
    assert proc.returncode == 1 and "MISMATCH" in proc.stdout and "CRC32" in proc.stderr
    assert _inspect(copy, "--record", "7").returncode == 0  # another record, sound shards
    (copy / "shards" / "shard-00003.mdb").unlink()
    proc = _inspect(copy, "--record", "7")
    assert proc.returncode == 1 and "shard-00003" in proc.stderr, proc.stderr


def test_a_sound_dataset_inspects_clean_and_pickles_as_its_path(copy: Path) -> None:
    proc = _inspect(copy, "--no-duplicates")
    assert proc.returncode == 0 and "integrity: sound" in proc.stdout
    ds = pickle.loads(pickle.dumps(datumio.open(copy)))
    assert len(ds) == 18 and ds[0][1] == int(ds.labels[0])
