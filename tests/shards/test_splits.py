"""Stored splits: the files and the manifest section (``datumio.shards.splits``), split views
of real datasets (``datumio.open(path, split=...)``) read exactly their split's records with
an exact class index, damaged split files are refused naming the file, and ``check_splits``
finds every disagreement with the dataset's index."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, build_dataset, make_dataset
from split_support import NAMES, round_robin, write_splits

import datumio
from datumio.errors import FormatError, OptionError
from datumio.shards.field_index import select_field_index
from datumio.shards.manifest import Manifest, read_manifest, write_manifest
from datumio.shards.splits import check_splits, save_splits

#: 18 noise PNGs of 3 classes (8, 6, 4), 12x16: a view's pixels are compared exactly.
DRAWING = Drawing({"ant": 8, "bee": 6, "cow": 4}, size=(12, 16), picture="noise", seed=11)
N = 18
#: The split of each record of ``split_lmdb`` (train, val, test; -1: none) ...
LMDB_SPLITS = round_robin(N)
#: ... and of ``grouped_h5`` (train, val).
H5_SPLITS = round_robin(N, splits=2, skip=5)


@pytest.fixture(scope="module")
def split_lmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:data:`DRAWING` in 4 LMDB shards, split train/val/test by :data:`LMDB_SPLITS`."""
    path = make_dataset(tmp_path_factory.mktemp("split-lmdb"), DRAWING, shard_records=5)
    write_splits(path, LMDB_SPLITS, how={"seed": 3, "fractions": {"val": 0.3, "test": 0.3}})
    return path


@pytest.fixture(scope="module")
def grouped_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:data:`DRAWING` from a labels file with 3 groups, in 5 HDF5 shards, split train/val
    by :data:`H5_SPLITS`."""
    root = tmp_path_factory.mktemp("grouped-h5")
    src = DRAWING.draw(root / "src")
    labels = DRAWING.write_labels(root / "labels.csv", groups=3)
    path = build_dataset(src, root / "data.h5", labels_file=str(labels), shard_records=4)
    write_splits(path, H5_SPLITS, names=("train", "val"))
    return path


def _members(split: int) -> np.ndarray:
    """The record ids of split number ``split`` of ``split_lmdb``."""
    return np.flatnonzero(np.equal(LMDB_SPLITS, split))


def _copy(path: Path, tmp_path: Path) -> Path:
    out = tmp_path / path.name
    shutil.copytree(path, out)
    return out


CASES = [("split_lmdb", LMDB_SPLITS, NAMES), ("grouped_h5", H5_SPLITS, ("train", "val"))]


@pytest.mark.parametrize(("fixture", "split_of", "names"), CASES, ids=["lmdb", "h5-groups"])
def test_a_split_view_reads_its_records_at_their_positions(
    request: pytest.FixtureRequest, fixture: str, split_of: np.ndarray, names: tuple[str, ...]
) -> None:
    path = request.getfixturevalue(fixture)
    whole = datumio.open(path)
    assert whole.split is None and whole.ids is None and whole.split_names == names
    assert whole.whole() is whole
    for k, name in enumerate(names):
        ds = datumio.open(path, split=name)
        expected = np.flatnonzero(split_of == k)
        assert ds.split == name and ds.split_names == names and len(ds) == len(expected)
        np.testing.assert_array_equal(ds.ids, expected)
        np.testing.assert_array_equal(ds.labels, whole.labels[expected])
        np.testing.assert_array_equal(ds.shapes, whole.shapes[expected])
        if whole.groups is not None:
            np.testing.assert_array_equal(ds.groups, whole.groups[expected])
        for i, record in enumerate(expected.tolist()):
            image, label = ds[i]
            np.testing.assert_array_equal(image, whole.image(record))
            np.testing.assert_array_equal(ds.image(i), image)
            assert label == int(whole.labels[record])
            assert ds.source(i) == whole.source(record)
            assert ds.shape(i) == whole.shape(record)
            assert ds.locate(i) == whole.locate(record)
            assert ds.read(i) == whole.read(record)
            assert {k: v for k, v in ds.record(i).items() if k != "image"} == {
                k: v for k, v in whole.record(record).items() if k != "image"
            }
        np.testing.assert_array_equal(ds[-1][0], whole.image(int(expected[-1])))
        with pytest.raises(IndexError, match=f"split '{name}' has {len(expected)} records"):
            ds[len(expected)]
        assert ds.whole().split is None and len(ds.whole()) == N


def test_a_split_class_index_is_exact_and_a_sampler_balances_the_split(split_lmdb: Path) -> None:
    ds = datumio.open(split_lmdb, split="val")
    members = set(np.flatnonzero(LMDB_SPLITS == 1).tolist())
    for c in range(ds.num_classes):
        np.testing.assert_array_equal(ds.class_index(c), np.flatnonzero(ds.labels == c))
    np.testing.assert_array_equal(ds.counts, np.bincount(ds.labels, minlength=3))
    assert tuple(ds.counts) == ds.manifest.splits.class_counts["val"]
    assert all(ds.counts > 0)

    drawn = datumio.Sampler(ds, "balanced", epoch_size=30, seed=1).epoch_ids(0)
    assert drawn.min() >= 0 and drawn.max() < len(ds)
    assert set(ds.ids[drawn].tolist()) <= members
    np.testing.assert_array_equal(np.bincount(ds.labels[drawn], minlength=3), [10, 10, 10])
    natural = datumio.Sampler(ds, "natural", seed=1).epoch_ids(0)
    np.testing.assert_array_equal(np.sort(natural), np.arange(len(ds)))

    # Shards hold runs of the split's positions: the locality order reads them by shard.
    for i in range(len(ds)):
        shard = ds.locate(i)[0]
        assert ds.shard_offsets[shard] <= i < ds.shard_offsets[shard + 1]
    local = datumio.Sampler(ds, "balanced", epoch_size=12, locality=2, batch_size=3, seed=2)
    assert set(ds.ids[local.epoch_ids(0)].tolist()) <= members


def test_the_files_and_the_section_are_the_documented_format(
    split_lmdb: Path, tmp_path: Path
) -> None:
    data = json.loads((split_lmdb / "manifest.json").read_text(encoding="utf-8"))
    section = data["splits"]
    assert list(data)[-1] == "splits" and re.fullmatch(r"index/splits-[0-9a-f]{8}", section["dir"])
    assert section["names"] == list(NAMES)
    assert section["counts"] == {n: len(_members(k)) for k, n in enumerate(NAMES)}
    assert section["how"] == {"seed": 3, "fractions": {"val": 0.3, "test": 0.3}}
    labels = datumio.open(split_lmdb).labels
    for k, name in enumerate(NAMES):
        folder = split_lmdb / section["dir"] / name
        assert sorted(p.name for p in folder.iterdir()) == [
            "class_ids.npy",
            "class_offsets.npy",
            "ids.npy",
            "labels.npy",
        ]
        load = {p.stem: np.load(p, allow_pickle=False) for p in folder.iterdir()}
        ids = _members(k)
        assert {p: a.dtype.str for p, a in load.items()} == {
            "ids": "<i8",
            "labels": "<i4",
            "class_offsets": "<i8",
            "class_ids": "<i8",
        }
        np.testing.assert_array_equal(load["ids"], ids)
        np.testing.assert_array_equal(load["labels"], labels[ids])
        counts = np.bincount(labels[ids], minlength=3)
        assert section["class_counts"][name] == counts.tolist()
        np.testing.assert_array_equal(load["class_offsets"], np.r_[0, np.cumsum(counts)])
        np.testing.assert_array_equal(load["class_ids"], np.argsort(labels[ids], kind="stable"))

    text = (split_lmdb / "manifest.json").read_text(encoding="utf-8")
    manifest = read_manifest(str(split_lmdb))
    assert json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n" == text
    assert Manifest.from_json(manifest.to_json()) == manifest

    # Splits made again go to a new directory; a reader of the old ones keeps reading them.
    copy = _copy(split_lmdb, tmp_path)
    old = datumio.open(copy, split="val")
    again = write_splits(copy, np.where(LMDB_SPLITS == 1, 0, 1), names=("train", "val"))
    assert again.dir != section["dir"] and (copy / section["dir"]).is_dir()
    reopened = pickle.loads(pickle.dumps(old))
    np.testing.assert_array_equal(reopened.ids, np.flatnonzero(LMDB_SPLITS == 1))
    np.testing.assert_array_equal(
        datumio.open(copy, split="train").ids, np.flatnonzero(LMDB_SPLITS == 1)
    )


def test_a_dataset_without_splits_keeps_its_manifest_byte_for_byte(
    small_lmdb: Path, tmp_path: Path
) -> None:
    text = (small_lmdb / "manifest.json").read_text(encoding="utf-8")
    assert "splits" not in json.loads(text)
    copy = _copy(small_lmdb, tmp_path)
    write_manifest(str(copy), read_manifest(str(copy)))
    assert (copy / "manifest.json").read_text(encoding="utf-8") == text
    ds = datumio.open(small_lmdb)
    assert ds.split_names == () and ds.split is None and ds.ids is None
    assert ds.manifest.splits is None


def test_unknown_splits_and_a_dataset_without_splits_are_refused(
    split_lmdb: Path, small_lmdb: Path
) -> None:
    with pytest.raises(OptionError) as unknown:
        datumio.open(split_lmdb, split="valid")
    assert str(unknown.value) == (
        f"split='valid': {split_lmdb} has no split of that name; its splits: 'train', 'val', 'test'"
    )
    with pytest.raises(OptionError) as none:
        datumio.Dataset(small_lmdb, split="val")
    assert "has no stored splits; make them with `datumio split" in str(none.value)
    assert "--val 0.1`" in str(none.value)
    with pytest.raises(OptionError, match="give the name of a stored split"):
        datumio.open(split_lmdb, split=1)  # type: ignore[arg-type]


def _edit(file: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], str]:
    """A damage: ``file`` of split val rewritten as ``change`` makes it; the damaged path."""

    def damage(root: Path) -> str:
        path = root / read_manifest(str(root)).splits.dir / "val" / file  # type: ignore[union-attr]
        np.save(path, change(np.load(path)), allow_pickle=True)
        return str(path)

    return damage


def _remove(root: Path) -> str:
    path = root / read_manifest(str(root)).splits.dir / "val" / "ids.npy"  # type: ignore[union-attr]
    path.unlink()
    return str(path)


def _bump(arr: np.ndarray, at: int, by: int) -> np.ndarray:
    out = arr.copy()
    out[at] += by
    return out


DAMAGES = {
    "missing": (_remove, "is missing: the dataset is incomplete"),
    "dtype": (
        _edit("labels.npy", lambda a: a.astype("<i8")),
        "holds int64 (5,), expected int32 (5,)",
    ),
    "short": (_edit("ids.npy", lambda a: a[:-1]), "holds int64 (4,), expected int64 (5,)"),
    "objects": (
        _edit("class_ids.npy", lambda a: a.astype(object)),
        "cannot load index array",
    ),
    "offsets": (
        _edit("class_offsets.npy", lambda a: _bump(a, 1, 1)),
        "disagrees with the manifest's counts",
    ),
    "id range": (_edit("ids.npy", lambda a: _bump(a, -1, 100)), "has id 116, outside 0..17"),
    "label range": (_edit("labels.npy", lambda a: _bump(a, 0, 7)), "has label 7, outside 0..2"),
}


@pytest.mark.parametrize(("damage", "message"), DAMAGES.values(), ids=list(DAMAGES))
def test_a_damaged_split_file_is_a_format_error_naming_it(
    split_lmdb: Path, tmp_path: Path, damage: Callable[[Path], str], message: str
) -> None:
    copy = _copy(split_lmdb, tmp_path)
    path = damage(copy)
    with pytest.raises(FormatError) as info:
        datumio.open(copy, split="val")
    assert str(info.value).startswith(path) and message in str(info.value)
    assert len(datumio.open(copy, split="train")) == int(np.sum(LMDB_SPLITS == 0))
    assert len(datumio.open(copy)) == N
    assert any(message in problem for problem in check_splits(datumio.open(copy)))


def _overlap(root: Path) -> None:
    """Split ``val`` made a copy of ``train``: files and manifest counts."""
    manifest = read_manifest(str(root))
    splits = manifest.splits
    assert splits is not None
    shutil.rmtree(root / splits.dir / "val")
    shutil.copytree(root / splits.dir / "train", root / splits.dir / "val")
    data = manifest.to_json()
    for key in ("counts", "class_counts"):
        data["splits"][key]["val"] = data["splits"][key]["train"]
    (root / "manifest.json").write_text(json.dumps(data), encoding="utf-8")


def _swap(file: str, a: int, b: int) -> Callable[[Path], None]:
    """A damage: entries ``a`` and ``b`` of val's ``file`` swapped."""

    def swapped(arr: np.ndarray) -> np.ndarray:
        out = arr.copy()
        out[[a, b]] = out[[b, a]]
        return out

    def damage(root: Path) -> None:
        _edit(file, swapped)(root)

    return damage


def _relabel(root: Path) -> None:
    """Val's labels and class index agree with each other, not with the dataset."""
    splits = read_manifest(str(root)).splits
    assert splits is not None
    folder = root / splits.dir / "val"
    labels = np.load(folder / "labels.npy")
    swapped = np.where(labels == 0, 1, np.where(labels == 1, 0, labels)).astype("<i4")
    np.save(folder / "labels.npy", swapped)


SPLIT_PROBLEMS = {
    "overlap": (_overlap, "is in split 'train' and in split 'val': a record is in one split"),
    "order": (_swap("ids.npy", 1, 2), "val/ids.npy: ids do not ascend at position 2"),
    "labels": (_relabel, "val/labels.npy: position 0 (record 1) has label 1, the dataset's"),
    "class ids": (_swap("class_ids.npy", 0, 1), "val/class_ids.npy: entry 0 is 1, the split's"),
}


@pytest.mark.parametrize(("damage", "message"), SPLIT_PROBLEMS.values(), ids=list(SPLIT_PROBLEMS))
def test_check_splits_finds_what_opening_cannot_afford_to(
    split_lmdb: Path, tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    assert check_splits(datumio.open(split_lmdb)) == []
    copy = _copy(split_lmdb, tmp_path)
    damage(copy)
    problems = check_splits(datumio.open(copy))
    assert problems and any(message in p for p in problems), problems
    assert all(p.endswith("make the splits again (datumio split)") for p in problems)


def test_check_splits_compares_groups(grouped_h5: Path, tmp_path: Path) -> None:
    assert check_splits(datumio.open(grouped_h5, split="val")) == []
    copy = _copy(grouped_h5, tmp_path)
    splits = read_manifest(str(copy)).splits
    assert splits is not None
    path = copy / splits.dir / "train" / "groups.npy"
    groups = np.load(path)
    np.save(path, np.where(groups == 0, 1, 0).astype("<i4"))
    (problem,) = check_splits(datumio.open(copy))
    assert problem.startswith(f"{copy / splits.dir / 'train'}/groups.npy: position 0 (record ")


def test_a_view_pickles_with_its_split_and_reads_the_same_records(split_lmdb: Path) -> None:
    view = datumio.open(split_lmdb, split="test")
    copy = pickle.loads(pickle.dumps(view))
    assert copy.split == "test" and len(copy) == len(view)
    np.testing.assert_array_equal(copy.ids, view.ids)
    np.testing.assert_array_equal(copy[2][0], view[2][0])
    other = view.with_split("train")
    np.testing.assert_array_equal(other.ids, np.flatnonzero(LMDB_SPLITS == 0))
    whole = view.whole()
    for i, record in enumerate(view.ids.tolist()):
        np.testing.assert_array_equal(whole[record][0], view[i][0])
    assert "split 'test'" in repr(view)


def test_save_splits_refuses_what_it_cannot_store(split_lmdb: Path, tmp_path: Path) -> None:
    labels = np.zeros(4, np.int32)
    bad = [
        ((np.zeros(4, int), ["train", "Train"], labels), "name a split twice"),
        ((np.zeros(4, int), ["../x"], labels), "names[0]='../x'; give a split name"),
        ((np.full(4, 2), ["a", "b"], labels), "split_of holds 2 .. 2; give values from -1 to 1"),
        ((np.zeros(3, int), ["a"], labels), "labels is int32 (4,); give one int per record (3"),
        ((np.zeros(4, int), ["a"], labels + 5), "labels holds 5 .. 5; give values from 0 to 2"),
    ]
    for (split_of, names, given), message in bad:
        with pytest.raises(OptionError, match=re.escape(message)):
            save_splits(str(tmp_path), split_of, names, given, 3, None, {})
    with pytest.raises(OptionError, match="how is not a JSON object"):
        save_splits(str(tmp_path), np.zeros(4, int), ["a"], labels, 3, None, {"x": np.int64(1)})
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").iterdir())


def test_a_split_made_before_an_append_added_classes_still_reads(tmp_path: Path) -> None:
    path = make_dataset(tmp_path, Drawing({"ant": 3, "bee": 3}, size=(8, 8)), shard_records=4)
    made = write_splits(path, np.array([0, 1, 0, 0, 1, -1]), names=("train", "val"))
    Drawing({"cow": 2}, size=(8, 8), seed=5).draw(tmp_path / "more")
    build_dataset(tmp_path / "more", path, append=True)
    appended = read_manifest(str(path))  # the splits carried over: the new records in none
    write_manifest(str(path), dataclasses.replace(appended, splits=made))
    whole, val = datumio.open(path), datumio.open(path, split="val")
    assert whole.class_names == ["ant", "bee", "cow"] and len(whole) == 8
    assert made.class_counts["val"] == (1, 1) and val.num_classes == 3
    np.testing.assert_array_equal(val.class_offsets, [0, 1, 2, 2])
    np.testing.assert_array_equal(val.ids, [1, 4])
    assert check_splits(whole) == []
    with pytest.warns(UserWarning, match="have no records"):
        drawn = datumio.Sampler(val, "balanced", epoch_size=4).epoch_ids(0)
    np.testing.assert_array_equal(np.bincount(val.labels[drawn], minlength=3), [2, 2, 0])


def test_splits_given_to_an_ingest_are_read_back_as_views(tmp_path: Path) -> None:
    out = tmp_path / "given.lmdb"
    given = ["val" if k % 4 == 1 else "train" if k % 4 else None for k in range(14)]
    with datumio.Writer(out, workers=2, shard_records=4) as writer:
        for k, split in enumerate(given):
            image = np.full((6, 6, 3), k, np.uint8)
            writer.add(image, k % 3, group=k % 2, name=f"r{k}", split=split)
    whole = datumio.open(out)
    assert sorted(whole.split_names) == ["train", "val"]
    assert check_splits(whole) == []
    for name in whole.split_names:
        view = datumio.open(out, split=name)
        wanted = [f"r{k}" for k, split in enumerate(given) if split == name]
        assert [view.source(i) for i in range(len(view))] == wanted
        assert [int(view.image(i)[0, 0, 0]) for i in range(len(view))] == [
            int(w[1:]) for w in wanted
        ]
        np.testing.assert_array_equal(view.labels, [int(w[1:]) % 3 for w in wanted])
        np.testing.assert_array_equal(view.groups, whole.groups[view.ids])


def test_field_indexes_of_a_split_are_its_records(tmp_path: Path) -> None:
    root = tmp_path / "fields"
    src = DRAWING.draw(root / "src")
    rows = ["path,label,n,tags"]
    for k, (_, name, _, rel) in enumerate(DRAWING.files()):
        tags = ";".join(t for t, on in (("x", k % 2), ("y", k % 3)) if on)
        rows.append(f"{rel},{name},{k * 10 if k % 4 else ''},{tags}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    fields = {"n": "int", "tags": "multilabel"}
    path = build_dataset(src, root / "d.lmdb", labels_file=str(root / "labels.csv"), fields=fields)
    write_splits(path, LMDB_SPLITS)
    whole, view = datumio.open(path), datumio.open(path, split="val")
    np.testing.assert_array_equal(view.field_index("n"), whole.field_index("n")[view.ids])
    offsets, values = view.field_index("tags")
    for i, record in enumerate(view.ids.tolist()):
        assert values[offsets[i] : offsets[i + 1]].tolist() == view.field(i, "tags").tolist()
        assert view.field(i, "tags").tolist() == whole.field(record, "tags").tolist()
        assert view.field(i, "n") == whole.field(record, "n")
    # Records without values and an empty selection.
    empty = select_field_index(whole.field_index("tags"), np.zeros(0, np.int64))
    assert empty[0].tolist() == [0] and empty[1].size == 0
