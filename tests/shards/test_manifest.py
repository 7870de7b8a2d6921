"""The typed manifest: ``Manifest.from_json`` / ``to_json`` round trips on real datasets give
back the file the writer wrote, byte for byte, and a manifest readers cannot use is refused
naming the file and the path of the key that is wrong."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import draw_classes
from split_support import write_splits

import datumio
from datumio.errors import FormatError, FormatVersionError
from datumio.shards.manifest import (
    EmptyClass,
    Groups,
    IngestRun,
    ListedShard,
    Manifest,
    RejectSummary,
    Splits,
    Stats,
    StatsFiles,
    read_manifest,
)

DAMAGED = (
    "; the manifest is damaged (restore it from a copy or re-ingest; datumio verify lists what "
    "else is wrong)"
)


def _draw(root: Path, counts: dict[str, int], seed: int, height: int = 20) -> Path:
    """Noise PNGs ``CLASS/K.png``, 30 wide, ``height + k`` high."""
    return draw_classes(root, counts, size=lambda k: (height + k, 30), names="{k}", seed=seed)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets of every kind the writer makes: rejects and an empty class, groups from a
    labels file (gray HDF5), a dataset grown by an append (a second index generation),
    records with a typed field, and stored splits (train, val)."""
    root = tmp_path_factory.mktemp("manifests")
    src = _draw(root / "src", {"ant": 5, "bee": 3, "cow": 0}, seed=7)  # cow: an empty class
    (src / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    labels = root / "labels.csv"
    labels.write_text(
        "path,label,group\nant/0.png,ant,p1\nant/1.png,ant,p2\nbee/0.png,bee,p1\n"
        "bee/broken.png,bee,p2\n"
    )
    numbered = root / "numbered.csv"
    numbered.write_text("path,label,n\nant/0.png,ant,1\nant/1.png,ant,2\nbee/0.png,bee,3\n")
    more = _draw(root / "more", {"dog": 3}, seed=8, height=16)
    options = datumio.IngestOptions
    out = {
        "folders": root / "folders.lmdb",
        "labels": root / "labels.h5",
        "appended": root / "appended.lmdb",
        "fields": root / "fields.lmdb",
    }
    datumio.ingest(src, out["folders"], options(workers=1, encode="png", shard_records=2))
    datumio.ingest(src, out["labels"], options(workers=1, labels_file=str(labels), gray=True))
    datumio.ingest(src, out["appended"], options(workers=1, shard_records=3))
    datumio.ingest(more, out["appended"], options(workers=1, append=True))
    with_n = options(workers=1, labels_file=str(numbered), fields={"n": "int"}, shard_records=2)
    datumio.ingest(src, out["fields"], with_n)
    out["split"] = Path(shutil.copytree(out["folders"], root / "split.lmdb"))
    write_splits(out["split"], np.array([0, 1, 0, -1, 1, 0, 0, 1]), names=("train", "val"))
    return out


KINDS = ["folders", "labels", "appended", "fields", "split"]


def _text(path: Path) -> str:
    return (path / "manifest.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_gives_the_file_back_byte_for_byte(datasets: dict[str, Path], kind: str) -> None:
    text = _text(datasets[kind])
    manifest = Manifest.from_json(json.loads(text))
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.to_json() == json.loads(text)
    assert json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n" == text
    assert read_manifest(str(datasets[kind])) == manifest


def test_fields_are_typed(datasets: dict[str, Path]) -> None:
    with datumio.open(datasets["folders"]) as ds:
        m = ds.manifest
        assert m.class_names == ("ant", "bee", "cow") and m.num_classes == 3
        assert m.class_counts == (5, 3, 0) and m.num_records == len(ds) == 8
        # The last planned shard held only the broken file: it was not written.
        assert [s.num_records for s in m.shards] == [2, 2, 2, 2]
        assert all(isinstance(s, ListedShard) for s in m.shards)
        assert [s.first_id for s in m.shards] == ds.shard_offsets[:-1].tolist()
        assert m.class_rejected == (0, 1, 0) and m.generation == 0 and m.channels == 3
        assert [(e.id, e.name, e.why) for e in m.empty_classes] == [(2, "cow", "no files")]
        assert m.rejects is not None and m.rejects.count == 1
        assert sum(m.rejects.by_reason.values()) == 1 and m.rejects.file == "rejects.jsonl"
        assert m.stats is not None and m.stats.mean is not None and len(m.stats.mean) == 3
        assert m.ingest is not None and m.ingest.input == "folders"
        assert m.ingest.background == (255, 255, 255) == ds.background
        assert m.groups is None and m.extra == {}
    labelled = read_manifest(str(datasets["labels"]))
    assert labelled.groups is not None and labelled.groups.names == ("p1", "p2")
    assert labelled.channels == 1
    appended = read_manifest(str(datasets["appended"]))
    assert appended.generation == 1 and appended.class_names[-1] == "dog"
    assert appended.index_path("labels.npy") == "index/g00001/labels.npy"
    assert appended.rejects is not None and appended.rejects.file == "rejects-g00001.jsonl"


def test_the_report_holds_the_manifest_on_disk(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _draw(src, {"a": 2}, seed=1)
    report = datumio.ingest(src, tmp_path / "out.lmdb", datumio.IngestOptions(workers=1))
    assert report.manifest == read_manifest(report.out)
    assert report.manifest.to_json() == json.loads(_text(Path(report.out)))
    _draw(tmp_path / "more", {"b": 1}, seed=2)
    options = datumio.IngestOptions(workers=1, append=True)
    appended = datumio.ingest(tmp_path / "more", report.out, options)
    assert appended.manifest == read_manifest(report.out)  # as committed: its rejects file too
    assert appended.manifest.rejects is not None
    assert appended.manifest.rejects.file == "rejects-g00001.jsonl"


def test_a_manifest_is_frozen_and_its_json_is_a_copy(datasets: dict[str, Path]) -> None:
    manifest = read_manifest(str(datasets["folders"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.num_records = 3  # type: ignore[misc]
    obj = manifest.to_json()
    obj["stats"]["mean"][0] = -1.0
    obj["ingest"]["options"]["quality"] = 1
    assert manifest.to_json() == json.loads(_text(datasets["folders"]))


def _edit(path: Path, change: Any) -> dict[str, Any]:
    obj = json.loads(_text(path))
    change(obj)
    (path / "manifest.json").write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return obj


def _copy(datasets: dict[str, Path], tmp_path: Path, kind: str = "folders") -> Path:
    return Path(shutil.copytree(datasets[kind], tmp_path / f"copy-{kind}"))


def test_unknown_keys_of_a_newer_writer_are_kept(datasets: dict[str, Path], tmp_path: Path) -> None:
    copy = _copy(datasets, tmp_path)

    def newer(m: dict[str, Any]) -> None:
        m["added_later"] = {"any": [1, 2]}
        m["shards"][0]["checksum"] = "sha256:..."
        m["stats"]["p90"] = [1.0, 2.0, 3.0]
        m["rejects"]["note"] = "kept"
        m["ingest"]["host"] = "node-3"

    obj = _edit(copy, newer)
    with datumio.open(copy) as ds:  # a newer minor writer's manifest still opens
        manifest = ds.manifest
    assert manifest.extra == {"added_later": {"any": [1, 2]}}
    assert manifest.shards[0].extra == {"checksum": "sha256:..."}
    assert manifest.stats is not None and manifest.stats.extra == {"p90": [1.0, 2.0, 3.0]}
    assert manifest.rejects is not None and manifest.rejects.extra == {"note": "kept"}
    assert manifest.ingest is not None and manifest.ingest.extra == {"host": "node-3"}
    assert manifest.to_json() == obj
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_an_older_manifest_reads_with_the_defaults_readers_assume(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    copy = _copy(datasets, tmp_path)

    def older(m: dict[str, Any]) -> None:
        for key in ("generation", "channels", "index", "class_rejected", "empty_classes"):
            del m[key]
        del m["stats"]["files"], m["num_classes"]
        for entry in m["shards"]:
            del entry["payload_bytes"]

    _edit(copy, older)
    with datumio.open(copy) as ds:
        manifest = ds.manifest
        assert ds[0][1] == 0
    assert manifest.generation == 0 and manifest.channels is None and manifest.index is None
    assert manifest.index_path("labels.npy") == "index/labels.npy"
    assert all(s.payload_bytes == 0 for s in manifest.shards)
    assert manifest.stats is not None and manifest.stats.files is None
    assert Manifest.from_json(manifest.to_json()) == manifest


#: Damage, and the whole message after the file's path.
REFUSED = [
    (lambda m: m.__setitem__("format", "other"), "format is 'other', expected 'datumio'"),
    (lambda m: m.__setitem__("format_version", "1"), "format_version is '1', expected an integer"),
    (lambda m: m.__setitem__("num_records", -1), "num_records=-1; give an int >= 0" + DAMAGED),
    (
        lambda m: m["shards"][1].__setitem__("num_records", 3),
        "shards[2].first_id=4; give 5, where it starts" + DAMAGED,
    ),
    (
        lambda m: m["shards"][0].__setitem__("file", "../x.mdb"),
        "shards[0].file='../x.mdb'; give a relative path inside the dataset" + DAMAGED,
    ),
    (
        lambda m: m.__setitem__("backend", "zip"),
        "backend='zip'; give one of 'lmdb', 'hdf5'" + DAMAGED,
    ),
    (
        lambda m: m["ingest"]["options"].__setitem__("background", [1, 2]),
        "ingest.options.background=[1, 2]; give three ints from 0 to 255" + DAMAGED,
    ),
]


@pytest.mark.parametrize(("damage", "message"), REFUSED)
def test_a_bad_manifest_is_refused_naming_the_file_and_the_key(
    datasets: dict[str, Path], tmp_path: Path, damage: Any, message: str
) -> None:
    copy = _copy(datasets, tmp_path)
    obj = _edit(copy, damage)
    path = str(copy / "manifest.json")
    with pytest.raises(FormatError) as opened:
        datumio.open(copy)
    assert str(opened.value) == f"{path}: {message}"
    with pytest.raises(FormatError) as parsed:
        Manifest.from_json(obj, "here")
    assert str(parsed.value) == f"here: {message}"


def test_a_newer_version_or_a_non_object_is_refused(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    copy = _copy(datasets, tmp_path)
    _edit(copy, lambda m: m.__setitem__("format_version", 3))
    path = copy / "manifest.json"
    with pytest.raises(FormatVersionError) as info:
        datumio.open(copy)
    assert str(info.value) == (
        f"{path} uses datumio format version 3, but this datumio reads versions up to 2: "
        "upgrade datumio (pip install -U datumio)"
    )
    path.write_text("[1, 2]")
    with pytest.raises(FormatError, match=r"manifest\.json holds a JSON list, not an object$"):
        datumio.open(copy)
    with pytest.raises(FormatError, match=r"^manifest\.json holds a JSON str, not an object$"):
        Manifest.from_json("{}")


def _put(*path: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit that sets the key (or list item) at ``path`` to ``value``."""

    def edit(m: Any) -> None:
        for step in path[:-1]:
            m = m[step]
        m[path[-1]] = value

    return edit


def _drop(*path: str | int) -> Callable[[dict[str, Any]], None]:
    """An edit that removes the key at ``path``."""

    def edit(m: Any) -> None:
        for step in path[:-1]:
            m = m[step]
        del m[path[-1]]

    return edit


def _same_file_twice(m: dict[str, Any]) -> None:
    m["shards"][1]["file"] = "./" + m["shards"][0]["file"]


def _field_twice(m: dict[str, Any]) -> None:
    m["fields"].append(m["fields"][0])


def _more_in_splits_than_records(m: dict[str, Any]) -> None:
    m["splits"]["counts"]["val"] = 5
    m["splits"]["class_counts"]["val"] = [5, 0, 0]


#: (dataset, damage to one key, how the message starts after the file's name). ``folders``:
#: 8 records of 3 classes in 4 shards, RGB; ``labels``: gray, 2 groups; ``fields``: an int
#: field ``n``, 2 shards; ``split``: ``folders`` split train (4 records), val (3).
BROKEN = [
    # the top level
    ("folders", _put("backend", value=3), "backend=3; give one of 'lmdb', 'hdf5'"),
    ("folders", _drop("encoding"), "encoding=None; give one of 'keep', 'jpeg'"),
    ("folders", _put("encoding", value="gif"), "encoding='gif'; give one of"),
    ("folders", _put("num_records", value="8"), "num_records='8'; give an int >= 0"),
    ("folders", _drop("num_records"), "num_records=None; give an int >= 0"),
    ("folders", _put("num_classes", value=4), "num_classes=4; give 3, as class_names lists"),
    ("folders", _put("num_classes", value="3"), "num_classes='3'; give an int >= 0"),
    ("folders", _put("class_names", value=[]), "class_names=[]; give a non-empty list"),
    ("folders", _put("class_names", value="cat"), "class_names='cat'; give a non-empty list"),
    ("folders", _put("class_names", value=["ant", 2, "cow"]), "class_names[1]=2; give a text"),
    ("folders", _put("class_counts", value=[5, 3]), "class_counts=[5, 3]; give 3 counts"),
    (
        "folders",
        _put("class_counts", value=[5, 3, 1]),
        "class_counts=[5, 3, 1]; give 3 counts (one per class name) that add up to num_records=8",
    ),
    ("folders", _put("class_counts", value=[5, 3.0, 0]), "class_counts[1]=3.0; give an int >= 0"),
    ("folders", _drop("shards"), "shards=None; give a list"),
    ("folders", _put("shards", value={}), "shards={}; give a list"),
    ("folders", _put("shards", value=[5]), "shards[0]=5; give an object"),
    # shards[s]
    (
        "folders",
        _put("shards", 0, "file", value="/etc/passwd"),
        "shards[0].file='/etc/passwd'; give a relative path inside the dataset",
    ),
    ("folders", _put("shards", 0, "file", value=""), "shards[0].file=''; give a relative path"),
    ("folders", _drop("shards", 2, "file"), "shards[2].file=None; give a relative path"),
    ("folders", _same_file_twice, "shards[1].file='./shards/"),
    ("folders", _put("shards", 1, "first_id", value=3), "shards[1].first_id=3; give 2, where it"),
    ("folders", _put("shards", 1, "first_id", value=-2), "shards[1].first_id=-2; give an int >="),
    ("folders", _drop("shards", 0, "first_id"), "shards[0].first_id=None; give an int >= 0"),
    ("folders", _put("shards", 3, "num_records", value=True), "shards[3].num_records=True; give"),
    ("folders", _put("shards", 3, "num_records", value=3), "num_records=8; give 9, what the"),
    ("folders", _put("shards", 1, "payload_bytes", value=-5), "shards[1].payload_bytes=-5; give"),
    ("folders", _put("shards", 1, "payload_bytes", value="5"), "shards[1].payload_bytes='5';"),
    ("folders", _drop("shards", 0, "file_bytes"), "shards[0].file_bytes=None; give an int >= 0"),
    ("folders", _put("shards", 0, "file_bytes", value=1.5), "shards[0].file_bytes=1.5; give an"),
    ("folders", _drop("shards", 0, "records_crc32"), "shards[0].records_crc32=None; give an int"),
    ("folders", _put("shards", 0, "records_crc32", value="ab"), "shards[0].records_crc32='ab';"),
    ("folders", _put("shards", 0, "fields_crc32", value=-1), "shards[0].fields_crc32=-1; give"),
    (
        "fields",
        _drop("shards", 1, "fields_crc32"),
        "shards[1].fields_crc32=None; give the CRC32 of the shard's fields CRC32 list (the "
        "records have fields)",
    ),
    # index, writer, generation, channels, class_rejected
    ("folders", _put("index", value=[]), "index=[]; give an object"),
    (
        "folders",
        _put("index", "labels", value="/etc/passwd"),
        "index.labels='/etc/passwd'; give a relative path inside the dataset",
    ),
    ("folders", _put("index", "labels", value="index/../../x.npy"), "index.labels='index/../../"),
    ("folders", _put("index", "labels", value=5), "index.labels=5; give a relative path"),
    ("folders", _put("writer", value="me"), "writer='me'; give an object"),
    ("folders", _put("generation", value=-1), "generation=-1; give an int >= 0"),
    ("folders", _put("generation", value="1"), "generation='1'; give an int >= 0"),
    ("folders", _put("channels", value=5), "channels=5; give an int from 0 to 4"),
    ("folders", _put("channels", value="3"), "channels='3'; give an int from 0 to 4"),
    ("folders", _put("channels", value=0), "channels=0; give an int from 1 to 4 (the records"),
    ("folders", _put("class_rejected", value=[0]), "class_rejected=[0]; give 3 counts, one per"),
    ("folders", _put("class_rejected", value=[0, -1, 0]), "class_rejected[1]=-1; give an int"),
    ("folders", _put("class_rejected", value={}), "class_rejected={}; give a list"),
    # empty_classes[k]
    ("folders", _put("empty_classes", value={}), "empty_classes={}; give a list"),
    ("folders", _put("empty_classes", 0, "id", value=-1), "empty_classes[0].id=-1; give an int"),
    ("folders", _put("empty_classes", 0, "name", value=3), "empty_classes[0].name=3; give a text"),
    ("folders", _drop("empty_classes", 0, "why"), "empty_classes[0].why=None; give a text"),
    # groups
    ("labels", _put("groups", value=[]), "groups=[]; give an object"),
    ("labels", _put("groups", "names", value=[]), "groups.names=[]; give a non-empty list"),
    ("labels", _drop("groups", "names"), "groups.names=None; give a non-empty list"),
    ("labels", _put("groups", "names", value=["p1", None]), "groups.names[1]=None; give a text"),
    ("labels", _put("groups", "counts", value=[1]), "groups.counts=[1]; give 2 counts, one per"),
    ("labels", _put("groups", "counts", value=[1, -1]), "groups.counts[1]=-1; give an int >= 0"),
    # stats
    ("folders", _put("stats", value=5), "stats=5; give an object"),
    ("folders", _put("stats", "pixel_scale", value=255), "stats.pixel_scale=255; give a text"),
    ("folders", _put("stats", "mean", value=[1.0]), "stats.mean=[1.0]; give one number per"),
    ("folders", _put("stats", "mean", value=[1, "2", 3]), "stats.mean[1]='2'; give a finite"),
    ("folders", _put("stats", "std", value="x"), "stats.std='x'; give a list"),
    ("labels", _put("stats", "std", value=[1.0, 2.0]), "stats.std=[1.0, 2.0]; give one number"),
    ("folders", _put("stats", "source_size", value=[]), "stats.source_size=[]; give an object"),
    (
        "folders",
        _put("stats", "source_size", "width", "min", value="a"),
        "stats.source_size.width.min='a'; give a finite number",
    ),
    ("folders", _put("stats", "stored_size", value="big"), "stats.stored_size='big'; give an"),
    ("folders", _put("stats", "stored_size", "width", value=3), "stats.stored_size.width=3;"),
    ("folders", _put("stats", "source_formats", value=[]), "stats.source_formats=[]; give an"),
    (
        "folders",
        _put("stats", "source_formats", "PNG", value=-1),
        "stats.source_formats.PNG=-1; give an int >= 0",
    ),
    ("folders", _put("stats", "files", value=[]), "stats.files=[]; give an object"),
    ("folders", _put("stats", "files", "histogram", value="../h.npy"), "stats.files.histogram="),
    ("folders", _drop("stats", "files", "source_sizes"), "stats.files.source_sizes=None; give"),
    # rejects
    ("folders", _put("rejects", value="x"), "rejects='x'; give an object"),
    ("folders", _put("rejects", "count", value=-1), "rejects.count=-1; give an int >= 0"),
    ("folders", _put("rejects", "by_reason", value=[]), "rejects.by_reason=[]; give an object"),
    ("folders", _put("rejects", "by_reason", "odd", value="1"), "rejects.by_reason.odd='1'; give"),
    ("folders", _put("rejects", "file", value="/etc/passwd"), "rejects.file='/etc/passwd'; give"),
    # ingest
    ("folders", _put("ingest", value=[]), "ingest=[]; give an object"),
    ("folders", _put("ingest", "source", value=5), "ingest.source=5; give a text"),
    ("folders", _put("ingest", "input", value=["folders"]), "ingest.input=['folders']; give a"),
    ("folders", _put("ingest", "options", value="fast"), "ingest.options='fast'; give an object"),
    (
        "folders",
        _put("ingest", "options", "background", value=[1, 2, 300]),
        "ingest.options.background[2]=300; give an int from 0 to 255",
    ),
    # fields (their specs are the record fields' own rules) and dataset_id
    ("fields", _put("fields", value="n"), "fields is not a list"),
    ("fields", _put("fields", 0, "dtype", value="<i4"), "fields[0] n: dtype '<i4', expected"),
    ("fields", _field_twice, "fields names a field twice"),
    ("folders", _put("dataset_id", value=""), "dataset_id=''; give a non-empty text of at most 64"),
    ("folders", _put("dataset_id", value="x" * 65), "dataset_id='xxxxxxxx"),
    ("folders", _put("dataset_id", value=7), "dataset_id=7; give a non-empty text"),
    # splits
    ("split", _put("splits", value=[]), "splits=[]; give an object"),
    ("split", _put("splits", "names", value=[]), "splits.names=[]; give a non-empty list"),
    ("split", _put("splits", "names", 1, value="a/b"), "splits.names[1]='a/b'; give a split"),
    ("split", _put("splits", "names", 1, value="Train"), "splits.names=['train', 'Train']; give"),
    ("split", _put("splits", "dir", value="../up"), "splits.dir='../up'; give a relative path"),
    ("split", _drop("splits", "dir"), "splits.dir=None; give a relative path"),
    ("split", _put("splits", "counts", value=[4, 3]), "splits.counts=[4, 3]; give an object"),
    ("split", _put("splits", "counts", "val", value=-3), "splits.counts.val=-3; give an int >="),
    ("split", _drop("splits", "counts", "val"), "splits.counts={'train': 4}; give an entry per"),
    (
        "split",
        _put("splits", "class_counts", "val", value=[1, 1, 1, 0]),
        "splits.class_counts.val=[1, 1, 1, 0]; give at most 3 counts, one per class name",
    ),
    ("split", _put("splits", "class_counts", "val", value=[1, 1, 0]), "splits.class_counts.val"),
    ("split", _put("splits", "class_counts", value=3), "splits.class_counts=3; give an object"),
    ("split", _put("splits", "how", value=[]), "splits.how=[]; give an object"),
    (
        "split",
        _put("splits", "counts", "val", value=5),
        "splits.class_counts.val=[2, 1, 0]; give counts that add up to counts.val=5",
    ),
    (
        "split",
        _put("splits", "counts", "train", value=6),
        "splits.class_counts.train=[2, 2, 0]; give counts that add up to counts.train=6",
    ),
    (
        "split",
        _more_in_splits_than_records,
        "splits.counts={'train': 4, 'val': 5}; give counts that add up to at most num_records=8",
    ),
]


@pytest.mark.parametrize(
    ("kind", "damage", "message"), BROKEN, ids=[message for _, _, message in BROKEN]
)
def test_each_key_is_checked_and_named_by_its_path(
    datasets: dict[str, Path], kind: str, damage: Any, message: str
) -> None:
    obj = json.loads(_text(datasets[kind]))
    Manifest.from_json(obj)  # sound before the damage
    damage(obj)
    with pytest.raises(FormatError) as info:
        Manifest.from_json(obj)
    text = str(info.value)
    assert text.startswith(f"manifest.json: {message}") and text.endswith(DAMAGED)


#: Where each section sits in the manifest (``[]``: an item of a list).
SECTIONS = {
    "": Manifest,
    "shards[]": ListedShard,
    "empty_classes[]": EmptyClass,
    "groups": Groups,
    "stats": Stats,
    "stats.files": StatsFiles,
    "rejects": RejectSummary,
    "ingest": IngestRun,
    "splits": Splits,
}


def test_every_key_of_every_section_is_broken_above() -> None:
    messages = [message for _, _, message in BROKEN] + [message for _, message in REFUSED]
    broken = {re.sub(r"\[\d+\]", "[]", re.split(r"[= ]", message)[0]) for message in messages}
    keys = {
        f"{at}.{key}" if at else key for at, section in SECTIONS.items() for key in section.KEYS
    }
    assert keys - broken == set()


def test_numbers_stay_as_written_and_null_reads_as_absent(datasets: dict[str, Path]) -> None:
    obj = json.loads(_text(datasets["folders"]))
    obj["stats"]["mean"] = [120, 3.5, 7]  # ints where the writer writes floats
    obj["stats"]["source_size"]["width"]["min"] = 30
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    assert (
        json.dumps(Manifest.from_json(obj).to_json(), indent=2, ensure_ascii=False) + "\n" == text
    )
    for edit in (
        _put("generation", value=None),
        _put("empty_classes", value=None),
        _put("shards", 0, "payload_bytes", value=None),
        _put("stats", "pixel_scale", value=None),
        _put("stats", "source_formats", value=None),
        _put("rejects", "count", value=None),
        _put("rejects", "file", value=None),
        _put("ingest", "options", value=[]),  # any empty value: no options
    ):
        edit(obj)
    manifest = Manifest.from_json(obj)
    assert manifest.generation == 0 and manifest.empty_classes == ()
    assert manifest.shards[0].payload_bytes == 0
    assert manifest.stats is not None and manifest.stats.pixel_scale == "0-255"
    assert manifest.stats.source_formats == {}
    assert manifest.rejects == RejectSummary(by_reason=manifest.rejects.by_reason)
    assert manifest.ingest is not None and manifest.ingest.options is None


def _sections(manifest: Manifest) -> list[Any]:
    """The manifest and every section it holds."""
    stats = manifest.stats
    found = [manifest, *manifest.shards, *manifest.empty_classes, manifest.groups, stats]
    found += [None if stats is None else stats.files, manifest.rejects, manifest.ingest]
    return [section for section in found if section is not None]


@pytest.mark.parametrize("kind", KINDS)
def test_a_section_read_from_the_file_is_the_one_its_constructor_builds(
    datasets: dict[str, Path], kind: str
) -> None:
    for section in _sections(read_manifest(str(datasets[kind]))):
        twin = dataclasses.replace(section)  # built by __init__ from every attribute
        assert twin == section and vars(twin) == vars(section)
        with pytest.raises(dataclasses.FrozenInstanceError):
            section.extra = {}


def _many_shards(datasets: dict[str, Path], count: int) -> dict[str, Any]:
    """The ``folders`` manifest with its shards listed ``count`` times over (2 records
    each), as a dataset of many small shards lists them."""
    obj = json.loads(_text(datasets["folders"]))
    first = obj["shards"][0]
    obj["shards"] = [
        dict(first, file=f"shards/shard-{k:05d}.mdb", first_id=2 * k, num_records=2)
        for k in range(count)
    ]
    obj["num_records"] = 2 * count
    obj["class_counts"] = [2 * count - 3, 3, 0]
    return obj


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_put("shards", 2999, "records_crc32", value=-7), "shards[2999].records_crc32=-7; give"),
        (_put("shards", 1500, "fields_crc32", value="1"), "shards[1500].fields_crc32='1'; give"),
        (_put("shards", 2998, "file", value="../x.mdb"), "shards[2998].file='../x.mdb'; give"),
        (_put("shards", 1234, value=[]), "shards[1234]=[]; give an object"),
        (_put("shards", 2000, "first_id", value=1), "shards[2000].first_id=1; give 4000, where"),
    ],
)
def test_a_bad_key_deep_in_a_long_shard_list_is_named_by_its_path(
    datasets: dict[str, Path], damage: Any, message: str
) -> None:
    obj = _many_shards(datasets, 3000)
    manifest = Manifest.from_json(obj)
    assert len(manifest.shards) == 3000 and manifest.shards[2999].first_id == 5998
    assert manifest.shards[17] == ListedShard(**{**obj["shards"][17], "extra": {}})
    damage(obj)
    with pytest.raises(FormatError) as info:
        Manifest.from_json(obj)
    assert str(info.value).startswith(f"manifest.json: {message}")
    assert str(info.value).endswith(DAMAGED)


#: Another spelling of ``shards/shard-00001.mdb`` (normalised, the same file), or a path
#: with dots that stays inside the dataset (another file).
SPELLINGS = [
    ("./shards/shard-00001.mdb", True),
    ("shards//shard-00001.mdb", True),
    ("shards/./shard-00001.mdb", True),
    ("shards/x/../shard-00001.mdb", True),
    ("shards/shard-00001.mdb/", True),
    ("shards/.shard-00001.mdb", False),
    (".shards/shard-00001.mdb", False),
    ("shards/shard-00001.mdb.", False),
    ("shards/..shard-00001.mdb", False),
]


@pytest.mark.parametrize(("spelling", "same"), SPELLINGS)
def test_two_shards_that_name_one_file_are_refused_however_it_is_spelt(
    datasets: dict[str, Path], spelling: str, same: bool
) -> None:
    obj = _many_shards(datasets, 4)
    obj["shards"][3]["file"] = spelling
    if not same:
        assert Manifest.from_json(obj).shards[3].file == spelling
        return
    with pytest.raises(FormatError) as info:
        Manifest.from_json(obj)
    want = f"manifest.json: shards[3].file='{spelling}'; give a file no other shard names"
    assert str(info.value) == want + DAMAGED
