"""The typed manifest: ``Manifest.from_json`` / ``to_json`` round trips on real datasets give
back the file the writer wrote, byte for byte, and a manifest readers cannot use is refused
with the messages it always had."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import datumio
from datumio.errors import FormatError, FormatVersionError
from datumio.shards.manifest import ListedShard, Manifest, read_manifest

DAMAGED = (
    "; the manifest is damaged (restore it from a copy or re-ingest; datumio verify lists what "
    "else is wrong)"
)


def _draw(folder: Path, names: list[str], rng: np.random.Generator, height: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        pixels = rng.integers(0, 256, (height + k, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets of every kind the writer makes: rejects and an empty class, groups from a
    labels file (gray HDF5), and a dataset grown by an append (a second index generation)."""
    root = tmp_path_factory.mktemp("manifests")
    rng = np.random.default_rng(7)
    src = root / "src"
    _draw(src / "ant", [f"{i}.png" for i in range(5)], rng)
    _draw(src / "bee", [f"{i}.png" for i in range(3)], rng)
    (src / "cow").mkdir()
    (src / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    labels = root / "labels.csv"
    labels.write_text(
        "path,label,group\nant/0.png,ant,p1\nant/1.png,ant,p2\nbee/0.png,bee,p1\n"
        "bee/broken.png,bee,p2\n"
    )
    more = root / "more"
    _draw(more / "dog", [f"{i}.png" for i in range(3)], rng, height=16)
    options = datumio.IngestOptions
    out = {
        "folders": root / "folders.lmdb",
        "labels": root / "labels.h5",
        "appended": root / "appended.lmdb",
    }
    datumio.ingest(src, out["folders"], options(workers=1, encode="png", shard_records=2))
    datumio.ingest(src, out["labels"], options(workers=1, labels_file=str(labels), gray=True))
    datumio.ingest(src, out["appended"], options(workers=1, shard_records=3))
    datumio.ingest(more, out["appended"], options(workers=1, append=True))
    return out


KINDS = ["folders", "labels", "appended"]


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
    _draw(src / "a", ["0.png", "1.png"], np.random.default_rng(1))
    report = datumio.ingest(src, tmp_path / "out.lmdb", datumio.IngestOptions(workers=1))
    assert report.manifest == read_manifest(report.out)
    assert report.manifest.to_json() == json.loads(_text(Path(report.out)))
    _draw(tmp_path / "more" / "b", ["0.png"], np.random.default_rng(2))
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


#: Damage, and the message datumio gave for it before the manifest was typed.
REFUSED = [
    (lambda m: m.__setitem__("format", "other"), "format is 'other', expected 'datumio'"),
    (lambda m: m.__setitem__("format_version", "1"), "format_version is '1', expected an integer"),
    (lambda m: m.__setitem__("num_records", -1), "num_records is -1, expected a count" + DAMAGED),
    (
        lambda m: m["shards"][1].__setitem__("num_records", 3),
        "shards[2].first_id is 4, expected 5" + DAMAGED,
    ),
    (
        lambda m: m["shards"][0].__setitem__("file", "../x.mdb"),
        "shards[0].file is not a path inside the dataset" + DAMAGED,
    ),
    (
        lambda m: m.__setitem__("backend", "zip"),
        "backend is 'zip', expected one of lmdb, hdf5" + DAMAGED,
    ),
    (
        lambda m: m["ingest"]["options"].__setitem__("background", [1, 2]),
        "ingest.options.background is not three values 0..255" + DAMAGED,
    ),
]


@pytest.mark.parametrize(("damage", "message"), REFUSED)
def test_a_bad_manifest_is_refused_with_the_same_message(
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


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda m: m.__setitem__("generation", "1"), "generation is '1', expected a count"),
        (lambda m: m.__setitem__("class_rejected", [0]), "class_rejected is not 3 count(s)"),
        (lambda m: m["shards"][1].__setitem__("payload_bytes", -5), "shards[1].payload_bytes"),
        (lambda m: m["rejects"].__setitem__("file", "/etc/passwd"), "rejects.file is not a path"),
        (lambda m: m["stats"].__setitem__("files", []), "stats.files is neither null nor"),
    ],
)
def test_a_field_the_typed_manifest_cannot_hold_is_refused(
    datasets: dict[str, Path], tmp_path: Path, damage: Any, field: str
) -> None:
    copy = _copy(datasets, tmp_path)
    _edit(copy, damage)
    with pytest.raises(FormatError) as info:
        datumio.open(copy)
    assert field in str(info.value) and str(info.value).endswith(DAMAGED)
