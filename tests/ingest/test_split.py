"""Stored splits written into real datasets (``datumio.split``): views of the records, read
back through ``datumio.open(path, split=...)``.

The splits are disjoint and cover the dataset, keep every class's proportions within one
record, never split a group, follow the seed, and are replaced whole by a new split (the
old directory goes; a reader of the old view reads on). One writer at a time: a split
meets an append that holds the dataset's lock as a second ingest does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import SEEDED_NAMES, Drawing, build_dataset
from leaks import session_members, wait_until

import datumio
from datumio.errors import IngestError, OptionError
from datumio.shards.splits import check_splits

#: Three classes of noise PNGs, 12x12.
COUNTS = {"ant": 14, "bee": 9, "cow": 5}
DRAWING = Drawing(COUNTS, size=(12, 12))


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    """A dataset without groups (28 records)."""
    return build_dataset(DRAWING.draw(tmp_path / "src"), tmp_path / "flat.lmdb")


@pytest.fixture
def grouped(tmp_path: Path) -> Path:
    """The same images with a labels file whose group column cuts each class into sites
    (``site0`` .. ``site6``: groups of 1-2 records of every class)."""
    src = DRAWING.draw(tmp_path / "src")
    labels = DRAWING.write_labels(tmp_path / "labels.csv", groups=7)
    return build_dataset(src, tmp_path / "grouped.h5", labels_file=str(labels))


def views(path: Path) -> dict[str, np.ndarray]:
    """Record ids of every stored split, read through ``datumio.open(path, split=...)``."""
    with datumio.open(path) as whole:
        names = whole.split_names
    out = {}
    for name in names:
        with datumio.open(path, split=name) as view:
            assert view.ids is not None
            out[name] = np.asarray(view.ids).copy()
    return out


def test_splits_are_disjoint_cover_the_dataset_and_keep_class_proportions(flat: Path) -> None:
    splits = datumio.split(flat, val=0.2, test=0.15, seed=1)
    assert splits.names == ("train", "val", "test")
    ids = views(flat)
    together = np.concatenate(list(ids.values()))
    assert sorted(together.tolist()) == list(range(sum(COUNTS.values())))  # once each
    with datumio.open(flat) as whole:
        labels = np.asarray(whole.labels)
        for name, share in (("val", 0.2), ("test", 0.15), ("train", 0.65)):
            got = np.bincount(labels[ids[name]], minlength=len(COUNTS))
            target = share * np.asarray(list(COUNTS.values()))
            assert np.all(np.abs(got - target) <= 1), (name, got, target)
            assert got.tolist() == list(splits.class_counts[name])
        with datumio.open(flat, split="val") as val:  # the view reads the split's records
            assert np.array_equal(val.labels, labels[ids["val"]])
            assert np.array_equal(val[0][0], whole[int(ids["val"][0])][0])
    assert check_splits(whole) == []


def test_groups_never_cross_splits(grouped: Path) -> None:
    splits = datumio.split(grouped, val=0.25, test=0.25)  # by group: the dataset has groups
    assert splits.how["by_group"] is True
    with datumio.open(grouped) as whole:
        groups = np.asarray(whole.groups)
    seen: dict[int, str] = {}
    for name, ids in views(grouped).items():
        for group in np.unique(groups[ids]).tolist():
            assert seen.setdefault(group, name) == name, f"group {group} in two splits"
    assert len(seen) == 7 and len(set(seen.values())) == 3


def test_the_same_seed_gives_the_same_splits_and_another_seed_others(flat: Path) -> None:
    datumio.split(flat, val=0.3, seed=5)
    first = views(flat)
    datumio.split(flat, val=0.3, seed=5)
    again = views(flat)
    datumio.split(flat, val=0.3, seed=6)
    other = views(flat)
    assert list(first) == ["train", "val"]
    assert all(np.array_equal(first[n], again[n]) for n in first)
    assert not np.array_equal(first["val"], other["val"])
    assert len(first["val"]) == len(other["val"])  # same counts per class, other records


def test_a_new_split_replaces_the_directory_and_an_open_view_reads_on(flat: Path) -> None:
    old = datumio.split(flat, val=0.25, seed=0)
    stray = flat / "index" / "splits-notmine"  # not named by the manifest: left alone
    stray.mkdir()
    reader = datumio.open(flat, split="val")
    before = [reader[i][0].copy() for i in range(len(reader))]
    new = datumio.split(flat, val=0.25, test=0.25, seed=1)
    assert new.dir != old.dir and (flat / old.dir).is_dir() and (flat / new.dir).is_dir()
    third = datumio.split(flat, val=0.25, test=0.25, seed=2)  # one back is kept, older go
    assert sorted(p.name for p in (flat / "index").glob("splits-*")) == sorted(
        [Path(new.dir).name, Path(third.dir).name, "splits-notmine"]
    )
    new = third
    manifest = json.loads((flat / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["splits"]["dir"] == new.dir and manifest["splits"]["names"][-1] == "test"
    after = [reader[i][0] for i in range(len(reader))]  # the old view, its files gone
    assert len(after) == len(before)
    assert all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))
    reader.close()


def test_a_loader_over_the_old_view_reads_on_after_a_new_split(flat: Path) -> None:
    """Its workers hold the old split's ids: every epoch still draws the old view's records."""
    datumio.split(flat, val=0.25, seed=0)  # 4 + 2 + 1 records: one batch of 7 per epoch
    with datumio.open(flat, split="val") as old:
        expected = sorted(np.asarray(old.labels).tolist())
    with datumio.Loader(flat, 7, split="val", sampling="natural", workers=1) as loader:
        first = sorted(next(iter(loader))[1].tolist())
        datumio.split(flat, val=0.5, seed=1)
        later = []
        for epoch in (1, 2):
            loader.set_epoch(epoch)
            later += [sorted(labels.tolist()) for _, labels in loader]
    assert first == expected and later == [expected, expected]
    with datumio.open(flat, split="val") as new:  # new readers see the new split
        assert len(new) == 7 + 5 + 3  # 0.5 of 14, 9, 5, half rounding up


def test_a_loader_started_after_a_new_split_reads_the_view_it_was_given(flat: Path) -> None:
    """Its workers start after the split: the replaced split's files are still there; two
    splits later they are gone, and the Loader says the splits were made again."""
    datumio.split(flat, val=0.25, seed=0)
    view = datumio.open(flat, split="val")
    expected = sorted(np.asarray(view.labels).tolist())
    datumio.split(flat, val=0.5, seed=1)
    with datumio.Loader(view, 7, sampling="natural", workers=1) as loader:
        assert sorted(next(iter(loader))[1].tolist()) == expected
    datumio.split(flat, val=0.5, seed=2)
    replaced = pytest.raises(datumio.DatumioError, match=r"splits of .* were made again")
    with replaced, datumio.Loader(view, 7, sampling="natural", workers=1) as loader:
        next(iter(loader))


def test_a_dataset_at_a_url_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="is a URL: splits are written into a local dataset"):
        datumio.split("s3://bucket/data.lmdb", val=0.1)


def test_refusals_name_the_value_and_what_to_do(flat: Path) -> None:
    with pytest.raises(OptionError, match=r"by_group=True, but .* has no groups"):
        datumio.split(flat, by_group=True)
    with pytest.raises(OptionError, match=r"val=1\.5; give a fraction"):
        datumio.split(flat, val=1.5)
    with pytest.raises(OptionError, match=r"add up to 1 \(val, test\); they must leave records"):
        datumio.split(flat, val=0.5, test=0.5)
    assert "splits" not in json.loads((flat / "manifest.json").read_text(encoding="utf-8"))
    assert not list((flat / "index").glob("splits-*"))


def test_a_split_meets_another_writer_as_an_ingest_does(flat: Path, tmp_path: Path) -> None:
    """An append holds the writer lock (held at its start by the test hook): a split stops
    at once naming it; with --wait it splits once the append is done, new records too."""
    new = Drawing({"ant": 3, "dog": 2}, size=(12, 12), names=SEEDED_NAMES, seed=1)
    ready, go = tmp_path / "ready", tmp_path / "go"
    argv = ["ingest", str(new.draw(tmp_path / "new")), str(flat), "--append", "--workers", "1"]
    append = subprocess.Popen(
        [sys.executable, "-m", "datumio", *argv],
        env={**os.environ, "DATUMIO_TEST_HOOK": f"ready={ready};hold={go}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    waiting = None
    try:
        assert wait_until(lambda: ready.exists() or append.poll() is not None, 60)
        assert ready.exists(), "the append never reached its start"
        with pytest.raises(IngestError, match=f"another datumio run \\(pid {append.pid}\\)"):
            datumio.split(flat, val=0.2)
        log = tmp_path / "waiting.log"
        with open(log, "w", encoding="utf-8") as err:
            waiting = subprocess.Popen(
                [sys.executable, "-m", "datumio", "split", str(flat), "--wait", "forever"],
                stderr=err,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert wait_until(lambda: "waiting for it to finish" in log.read_text(), 60)
        go.touch()
        assert append.wait(timeout=120) == 0
        assert waiting.wait(timeout=120) == 0, log.read_text()
    finally:
        for proc in (append, waiting):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=60)
    assert wait_until(lambda: session_members(append.pid) == [], 10)
    ids = views(flat)
    total = sum(COUNTS.values()) + 5
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(total))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no lock left


def test_an_append_keeps_the_splits_and_its_records_are_in_none(flat: Path, tmp_path: Path) -> None:
    datumio.split(flat, val=0.2, seed=0)
    before = views(flat)
    more = Drawing({"ant": 2, "dog": 3}, size=(12, 12), seed=5).draw(tmp_path / "more")
    datumio.ingest(more, flat, append=True, workers=1)
    ds = datumio.open(flat)
    assert len(ds) == sum(COUNTS.values()) + 5 and "dog" in ds.class_names
    after = views(flat)
    assert {name: ids.tolist() for name, ids in after.items()} == {
        name: ids.tolist() for name, ids in before.items()
    }
    assert check_splits(ds) == []
    datumio.split(flat, val=0.2, seed=0)  # splitting again takes the new records in
    assert sum(ids.size for ids in views(flat).values()) == len(ds)
