"""Ingest from a labels file (CSV, TSV, JSONL): formats, classes, groups and bad rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from builders import build_dataset, draw_file
from image_helpers import MakeImage, read_rejects_jsonl

import datumio
from datumio.errors import IngestError
from datumio.shards.manifest import EmptyClass, Groups


def _images(src: Path, make_image: MakeImage, names: list[str]) -> None:
    for k, name in enumerate(names):
        make_image(src / name, size=(4 + k, 3))


def _run(
    src: Path, labels: Path, out: Path, **options: object
) -> tuple[datumio.IngestReport, datumio.Dataset]:
    opts = datumio.IngestOptions(labels_file=str(labels), **{"workers": 1, **options})
    report = datumio.ingest(src, out, opts)
    return report, datumio.open(out)


def _records(ds: datumio.Dataset) -> list[tuple[str, str]]:
    return [(ds.source(i), ds.class_names[int(ds.labels[i])]) for i in range(len(ds))]


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("labels.csv", "path,label\na.png,cat\nsub/b.png,dog\nc.png,cat\n"),
        ("labels.csv", "a.png,cat\nsub/b.png,dog\nc.png,cat\n"),
        ("labels.csv", "Label , Path\ncat,a.png\ndog,sub/b.png\ncat,c.png\n"),
        ("labels.tsv", "path\tlabel\na.png\tcat\nsub/b.png\tdog\nc.png\tcat\n"),
        ("labels.tsv", "a.png\tcat\nsub/b.png\tdog\n\nc.png\tcat\n"),
        (
            "labels.jsonl",
            '{"path": "a.png", "label": "cat"}\n{"path": "sub/b.png", "label": "dog"}\n\n'
            '{"label": "cat", "path": "c.png"}\n',
        ),
    ],
    ids=["csv-header", "csv-no-header", "csv-header-reordered", "tsv-header", "tsv", "jsonl"],
)
def test_formats_give_the_same_dataset(
    tmp_path: Path, make_image: MakeImage, filename: str, text: str
) -> None:
    src = tmp_path / "src"
    _images(src, make_image, ["a.png", "sub/b.png", "c.png"])
    labels = tmp_path / filename
    labels.write_text(text, encoding="utf-8")
    report, ds = _run(src, labels, tmp_path / "out")
    assert report.rejects == []
    assert ds.class_names == ["cat", "dog"]
    assert _records(ds) == [("a.png", "cat"), ("sub/b.png", "dog"), ("c.png", "cat")]
    assert ds.groups is None
    assert report.manifest.ingest is not None
    assert report.manifest.ingest.input == "labels-file"


@pytest.mark.parametrize("workers", [1, 2])
def test_jsonl_with_groups(tmp_path: Path, make_image: MakeImage, workers: int) -> None:
    src = tmp_path / "src"
    _images(src, make_image, ["p1_a.png", "p1_b.png", "p2_a.png", "p10_a.png"])
    rows = [
        {"path": "p1_a.png", "label": 0, "group": "patient-1"},
        {"path": "p1_b.png", "label": 1, "group": "patient-1"},
        {"path": "p2_a.png", "label": 1, "group": "patient-2"},
        {"path": "p10_a.png", "label": 0, "group": "patient-10"},
    ]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report, ds = _run(src, labels, tmp_path / "out", workers=workers, shard_records=1)
    groups = report.manifest.groups
    assert groups == Groups(names=("patient-1", "patient-10", "patient-2"), counts=(2, 1, 1))
    assert ds.groups is not None
    by_source = {ds.source(i): groups.names[int(ds.groups[i])] for i in range(len(ds))}
    assert by_source == {r["path"]: r["group"] for r in rows}
    assert ds.class_names == ["0", "1"]
    np.testing.assert_array_equal(ds.labels, [0, 1, 1, 0])


def test_integer_labels_sort_numerically(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    _images(src, make_image, ["a.png", "b.png", "c.png", "d.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\na.png,10\nb.png,2\nc.png,-1\nd.png,1\n", encoding="utf-8")
    _, ds = _run(src, labels, tmp_path / "out")
    assert ds.class_names == ["-1", "1", "2", "10"]
    np.testing.assert_array_equal(ds.labels, [3, 2, 0, 1])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["b", "10", "2"], ["10", "2", "b"]),  # not all integers: code point order
        (["--1", "2"], ["--1", "2"]),  # not an integer (used to crash int())
        (["²", "1"], ["1", "²"]),  # a digit to str.isdigit, not to int()
    ],
)
def test_labels_that_only_look_like_integers(
    tmp_path: Path, make_image: MakeImage, values: list[str], expected: list[str]
) -> None:
    src = tmp_path / "src"
    names = [f"{k}.png" for k in range(len(values))]
    _images(src, make_image, names)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "".join(f"{n},{v}\n" for n, v in zip(names, values, strict=True)), encoding="utf-8"
    )
    _, ds = _run(src, labels, tmp_path / "out")
    assert ds.class_names == expected


def test_bad_rows_are_rejected_with_their_line(tmp_path: Path, make_image: MakeImage) -> None:
    src, outside = tmp_path / "src", tmp_path / "outside"
    _images(src, make_image, ["a.png", "b.png", "sub/c.png"])
    make_image(outside / "secret.png")
    os.symlink(outside / "secret.png", src / "escape.png")
    os.symlink("gone.png", src / "dangling.png")
    os.symlink("loop.png", src / "loop.png")
    (src / "broken.png").write_bytes(b"")
    lines = [
        "path,label",  # 1
        "a.png,cat",  # 2
        f"{src / 'b.png'},cat",  # 3 absolute
        "../outside/secret.png,cat",  # 4
        "sub/../a.png,cat",  # 5
        "missing.png,cat",  # 6
        "a.png,cat",  # 7 duplicate
        "./a.png,dog",  # 8 the same file, spelled differently
        "b.png,",  # 9
        ",cat",  # 10
        "escape.png,cat",  # 11
        "dangling.png,cat",  # 12
        "loop.png,cat",  # 13
        "sub,cat",  # 14 a folder
        "broken.png,cat",  # 15 rejected when decoded
        "sub//c.png,dog",  # 16
        "C:/data/x.png,cat",  # 17
        "sub\\..\\b.png,cat",  # 18
    ]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report, ds = _run(src, labels, tmp_path / "out")

    assert _records(ds) == [("a.png", "cat"), ("sub/c.png", "dog")]
    expected = [
        (3, "absolute path"),
        (4, "path contains '..'"),
        (5, "path contains '..'"),
        (6, "file not found"),
        (7, "duplicate path (first on line 2)"),
        (8, "duplicate path (first on line 2)"),
        (9, "missing label"),
        (10, "missing path"),
        (11, "symlink escapes the input root"),
        (12, "dangling symlink"),
        (13, "symlink loop"),
        (14, "not a regular file"),
        (17, "absolute path"),
        (18, "path contains '..'"),
        (None, "empty file"),  # decode rejects come after the listing's
    ]
    assert [(r.line, r.reason) for r in report.rejects] == expected
    rows = read_rejects_jsonl(tmp_path / "out")
    assert [(r.get("line"), r["reason"]) for r in rows] == expected
    assert rows[-1]["path"] == "broken.png"
    assert report.files_seen == len(lines) - 1 == report.num_records + len(report.rejects)


def test_class_names_fix_the_classes_and_reject_unknown_labels(
    tmp_path: Path, make_image: MakeImage
) -> None:
    src = tmp_path / "src"
    _images(src, make_image, ["a.png", "b.png", "c.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("a.png,dog\nb.png,cow\nc.png,cat\n", encoding="utf-8")
    report, ds = _run(src, labels, tmp_path / "out", class_names=("dog", "cat", "eel"))
    assert ds.class_names == ["dog", "cat", "eel"]
    assert _records(ds) == [("a.png", "dog"), ("c.png", "cat")]
    assert [(r.path, r.reason, r.line, r.detail) for r in report.rejects] == [
        ("b.png", "unknown label", 2, "label='cow'")
    ]
    assert report.manifest.empty_classes == (EmptyClass(id=2, name="eel", why="no files"),)


def test_a_label_whose_files_are_all_missing_keeps_ids_stable(
    tmp_path: Path, make_image: MakeImage
) -> None:
    src = tmp_path / "src"
    _images(src, make_image, ["a.png", "c.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("a.png,ant\nb.png,bee\nc.png,cow\n", encoding="utf-8")
    report, ds = _run(src, labels, tmp_path / "out")
    assert ds.class_names == ["ant", "bee", "cow"]
    np.testing.assert_array_equal(ds.labels, [0, 2])
    assert [e.name for e in report.manifest.empty_classes] == ["bee"]


def test_on_error_raise_names_the_row(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    _images(src, make_image, ["a.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("a.png,cat\n/etc/passwd,cat\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"/etc/passwd \(line 2\): absolute path"):
        _run(src, labels, tmp_path / "out", on_error="raise")
    assert not (tmp_path / "out").exists()


def test_unreadable_labels_files_are_errors(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    _images(src, make_image, ["a.png"])
    with pytest.raises(IngestError, match="does not exist"):
        _run(src, tmp_path / "nope.csv", tmp_path / "out")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.png", "label": "x"}\n{not json\n', encoding="utf-8")
    with pytest.raises(IngestError, match=r"bad\.jsonl:2: not valid JSON"):
        _run(src, bad, tmp_path / "out")


def test_a_split_column_stores_the_splits_and_splits_picks_some(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rows = ["path,label,split"]
    for k in range(9):
        draw_file(src / f"i{k}.png", (6, 6), seed=k)
        rows.append(f"i{k}.png,{'ab'[k % 2]},{['train', 'val', 'test'][k % 3] if k else ''}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = build_dataset(src, tmp_path / "all.lmdb", labels_file=str(labels))
    ds = datumio.open(out)
    assert ds.split_names == ("val", "test", "train") and "split" not in ds.fields
    val = datumio.open(out, split="val")
    assert [val.source(i) for i in range(len(val))] == ["i1.png", "i4.png", "i7.png"]
    assert len(datumio.open(out, split="train")) == 2  # i0 (no split) is in none
    some = build_dataset(src, tmp_path / "val.lmdb", labels_file=str(labels), splits=["val"])
    picked = datumio.open(some)
    assert len(picked) == 3 and picked.split_names == ("val",)
    with pytest.raises(datumio.IngestError, match="an append cannot store splits"):
        datumio.ingest(src, out, labels_file=str(labels), append=True, workers=1)
