"""The Hugging Face importer: ``save_to_disk`` folders, Parquet files and datasets objects.

Every dataset is built here with ``datasets`` from tiny drawn PNGs (as bytes, or as files
the rows name), then ingested for real and read back: classes, labels, pixels, fields,
splits and rejects.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import ingest_cli
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, List, Value
from image_helpers import read_rejects_jsonl
from PIL import Image as PILImage

import datumio
from datumio.errors import IngestError
from datumio.ingest.huggingface import from_huggingface, huggingface_source
from datumio.ingest.options import IngestOptions
from datumio.ingest.samples import Sample
from datumio.ingest.sources import Reject
from datumio.shards.dataset import Dataset as Stored

NAMES = ["cat", "dog", "eel"]
TAGS = ["indoor", "outdoor", "night"]
FEATURES = Features(
    {
        "image": Image(),
        "label": ClassLabel(names=NAMES),
        "count": Value("int32"),
        "score": Value("float32"),
        "note": Value("string"),
        "flag": Value("bool"),
        "tags": List(ClassLabel(names=TAGS)),
        "emb": List(Value("float32")),
        "pair": List(Value("int16"), length=2),
        "meta": {"x": Value("int32")},
    }
)
HF_OPTIONS = IngestOptions(importer="huggingface")


def _pixels(k: int) -> np.ndarray:
    """A distinct small RGB picture per ``k`` (sizes vary too)."""
    rng = np.random.default_rng(k)
    return rng.integers(0, 256, (5 + k % 3, 7 + k % 2, 3), dtype=np.uint8)


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _rows(count: int, labels: list[int], images: list[Any]) -> dict[str, list[Any]]:
    """Columns of ``count`` rows for :data:`FEATURES`."""
    return {
        "image": images,
        "label": labels,
        "count": [10 * k for k in range(count)],
        "score": [k + 0.5 for k in range(count)],
        "note": [f"row {k}" for k in range(count)],
        "flag": [k % 2 == 0 for k in range(count)],
        "tags": [[k % 3, 2] if k % 2 else [] for k in range(count)],
        "emb": [[float(k)] * (1 + k % 3) for k in range(count)],
        "pair": [[k, -k] for k in range(count)],
        "meta": [{"x": k} for k in range(count)],
    }


def _dataset(first: int, labels: list[int]) -> Dataset:
    """Rows ``first``, ``first + 1`` ... with images as PNG bytes and the given labels."""
    images = [{"bytes": _png(_pixels(first + k)), "path": None} for k in range(len(labels))]
    rows = _rows(len(labels), labels, images)
    rows["count"] = [10 * (first + k) for k in range(len(labels))]
    return Dataset.from_dict(rows, features=FEATURES)


def _ingest(src: Any, out: Path, **options: Any) -> tuple[datumio.IngestReport, Stored]:
    report = datumio.ingest(src, out, importer="huggingface", workers=1, **options)
    return report, datumio.open(out)


def _by_source(ds: Stored) -> dict[str, int]:
    return {ds.source(i): i for i in range(len(ds))}


def _samples(source: Any) -> tuple[list[Sample], list[Reject]]:
    samples: list[Sample] = []
    rejects: list[Reject] = []
    for item in source.samples():
        (rejects if isinstance(item, Reject) else samples).append(item)
    return samples, rejects


def test_a_saved_dataset_keeps_classes_labels_pixels_and_typed_fields(tmp_path: Path) -> None:
    labels = [0, 1, 2, 1, 0, 2]
    _dataset(0, labels).save_to_disk(tmp_path / "saved")

    report, ds = _ingest(tmp_path / "saved", tmp_path / "out.lmdb")

    assert report.rejects == []
    assert ds.class_names == NAMES
    assert ds.split_names == ()
    where = _by_source(ds)
    assert sorted(where) == [str(k) for k in range(6)]
    for k, label in enumerate(labels):
        i = where[str(k)]
        assert int(ds.labels[i]) == label
        np.testing.assert_array_equal(ds.image(i), _pixels(k))
        assert ds.read(i) == _png(_pixels(k))  # the encoded bytes, kept as they are
    kinds = {name: (spec.type, spec.dtype, spec.length) for name, spec in ds.fields.items()}
    assert kinds == {
        "count": ("int", "<i8", None),
        "score": ("float", "<f8", None),
        "note": ("text", "utf-8", None),
        "flag": ("int", "<i8", None),
        "tags": ("multilabel", "<i4", 3),
        "emb": ("array", "<f4", None),
        "pair": ("array", "<i2", 2),
    }  # the struct column "meta" is no field type: left out
    record = ds.record(where["3"])
    assert (record["count"], record["score"], record["note"], record["flag"]) == (
        30,
        3.5,
        "row 3",
        0,
    )
    vocabulary = ds.fields["tags"].vocabulary
    assert vocabulary is not None
    assert sorted(vocabulary[j] for j in record["tags"]) == ["indoor", "night"]
    np.testing.assert_array_equal(record["emb"], np.float32([3.0]))
    np.testing.assert_array_equal(record["pair"], np.int16([3, -3]))
    assert ds.record(where["0"])["flag"] == 1


def test_a_saved_dataset_dict_gives_splits_and_rejects_rows_without_label(
    tmp_path: Path,
) -> None:
    train, test = _dataset(0, [0, 1, 2, 0]), _dataset(4, [1, -1, 2])
    DatasetDict({"train": train, "test": test}).save_to_disk(tmp_path / "dict")

    report, ds = _ingest(tmp_path / "dict", tmp_path / "out.lmdb")

    assert [(r.path, r.reason) for r in report.rejects] == [("test/1", "no label")]
    assert [row["reason"] for row in read_rejects_jsonl(tmp_path / "out.lmdb")] == ["no label"]
    assert ds.split_names == ("train", "test")
    where = _by_source(ds)
    assert sorted(where) == ["test/0", "test/2", "train/0", "train/1", "train/2", "train/3"]
    np.testing.assert_array_equal(ds.image(where["test/2"]), _pixels(6))
    assert int(ds.labels[where["test/2"]]) == 2
    held = Stored(tmp_path / "out.lmdb", split="test")
    assert sorted(held.ids.tolist()) == sorted([where["test/0"], where["test/2"]])

    _, only = _ingest(tmp_path / "dict", tmp_path / "test.lmdb", splits=["test"])
    assert sorted(_by_source(only)) == ["test/0", "test/2"]
    assert only.split_names == ("test",)
    with pytest.raises(IngestError, match=r"no split 'val'.*the splits there are train, test"):
        huggingface_source(tmp_path / "dict", IngestOptions(splits=["val"]))
    assert not (tmp_path / "val.lmdb").exists()


def test_parquet_files_with_image_paths_take_their_split_from_the_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    (src / "img").mkdir(parents=True)
    for k in range(5):
        (src / "img" / f"{k}.png").write_bytes(_png(_pixels(k)))
    paths = [{"bytes": None, "path": f"img/{k}.png"} for k in range(5)]
    whole = Dataset.from_dict(_rows(5, [2, 0, 1, 1, 0], paths), features=FEATURES)
    (src / "data").mkdir()
    monkeypatch.chdir(src)  # where datasets looks up the paths while it writes
    whole.select(range(3)).to_parquet("data/train-00000-of-00001.parquet")
    whole.select(range(3, 5)).to_parquet("data/test-00000-of-00001.parquet")
    monkeypatch.chdir(tmp_path)
    (src / "img" / "3.png").unlink()

    report, ds = _ingest(src, tmp_path / "out.lmdb")

    assert [(r.path, r.reason, r.detail) for r in report.rejects] == [
        ("test/0", "file not found", "img/3.png")
    ]
    assert set(ds.split_names) == {"train", "test"}
    assert ds.class_names == NAMES
    where = _by_source(ds)
    rows = {"train/0": 0, "train/1": 1, "train/2": 2, "test/1": 4}
    assert sorted(where) == sorted(rows)
    for name, k in rows.items():
        np.testing.assert_array_equal(ds.image(where[name]), _pixels(k))
        assert int(ds.labels[where[name]]) == [2, 0, 1, 1, 0][k]
    train = Stored(tmp_path / "out.lmdb", split="train")
    assert sorted(train.ids.tolist()) == sorted(where[f"train/{k}"] for k in range(3))


def test_the_command_line_reads_a_saved_dataset_dict(tmp_path: Path) -> None:
    train, test = _dataset(0, [2, 1, 0]), _dataset(3, [0, -1])
    DatasetDict({"train": train, "test": test}).save_to_disk(tmp_path / "dict")
    flags = ["--from", "huggingface", "--split", "train", "--field", "count:float"]
    ingest_cli(tmp_path / "dict", tmp_path / "out.lmdb", "--workers", "1", flags=flags, check=True)

    ds = datumio.open(tmp_path / "out.lmdb")
    assert ds.split_names == ("train",)
    assert ds.class_names == NAMES
    where = _by_source(ds)
    assert sorted(where) == ["train/0", "train/1", "train/2"]
    assert [int(ds.labels[where[f"train/{k}"]]) for k in range(3)] == [2, 1, 0]
    assert ds.fields["count"].type == "float"
    assert ds.record(where["train/2"])["count"] == 20.0
    np.testing.assert_array_equal(ds.image(where["train/1"]), _pixels(1))


def test_dataset_objects_are_read_in_their_row_order(tmp_path: Path) -> None:
    shuffled = _dataset(0, [0, 1, 2, 2, 1]).select([4, 2, 0, 3, 1])
    report = from_huggingface(shuffled, tmp_path / "one.lmdb", workers=1)
    ds = datumio.open(tmp_path / "one.lmdb")
    assert report.rejects == []
    for row, k in enumerate([4, 2, 0, 3, 1]):
        i = _by_source(ds)[str(row)]
        np.testing.assert_array_equal(ds.image(i), _pixels(k))
        assert ds.record(i)["count"] == 10 * k

    pair = DatasetDict({"train": _dataset(0, [0, 1]), "val": _dataset(2, [2, -1])})
    from_huggingface(pair, tmp_path / "two.lmdb", workers=1, splits=["val"])
    val = datumio.open(tmp_path / "two.lmdb")
    assert list(_by_source(val)) == ["val/0"]
    assert val.split_names == ("val",)
    np.testing.assert_array_equal(val.image(0), _pixels(2))


def _roles_dataset() -> Dataset:
    features = Features(
        {
            "picture": Image(),
            "fine": ClassLabel(names=["a", "b"]),
            "coarse": ClassLabel(names=["x", "y", "z"]),
            "patient": Value("string"),
            "part": Value("string"),
            "bbox": List(List(Value("float32"))),
        }
    )
    rows = {
        "picture": [{"bytes": _png(_pixels(k)), "path": None} for k in range(4)],
        "fine": [0, 1, 1, 0],
        "coarse": [2, 0, 1, 2],
        "patient": ["p1", "p2", "p1", "p3"],
        "part": ["train", "val", "train", "test"],
        "bbox": [[[0.0, 0.0, 3.0, 2.0]], [], [[1.0, 1.0, 4.0, 4.0]], []],
    }
    return Dataset.from_dict(rows, features=features)


def test_columns_choose_image_label_group_and_split(tmp_path: Path) -> None:
    data = _roles_dataset()
    plain = huggingface_source(data, HF_OPTIONS)
    assert plain.class_names == ["a", "b"]  # the first ClassLabel is the label
    assert dict(plain.fields) == {"coarse": "int", "patient": "text", "part": "text"}

    columns = {"label": "coarse", "group": "patient", "split": "part"}
    options = IngestOptions(
        importer="huggingface", columns=columns, splits=["train", "test"], fields={"bbox": "boxes"}
    )
    source = huggingface_source(data, options)
    assert source.class_names == ["x", "y", "z"]
    assert dict(source.fields) == {"bbox": "boxes", "fine": "int"}
    assert source.total == 3
    samples, rejects = _samples(source)
    assert rejects == []
    got = [(s.name, s.label, s.group, s.split) for s in samples]
    assert got == [
        ("train/0", 2, "p1", "train"),
        ("train/2", 1, "p1", "train"),
        ("test/3", 2, "p3", "test"),
    ]
    assert samples[0].fields == {"bbox": [[0.0, 0.0, 3.0, 2.0]], "fine": 0}

    report = from_huggingface(data, tmp_path / "out.lmdb", options, workers=1)
    ds = datumio.open(tmp_path / "out.lmdb")
    assert report.rejects == []
    assert ds.class_names == ["x", "y", "z"]
    assert set(ds.split_names) == {"train", "test"}
    assert ds.fields["bbox"].type == "boxes"
    assert ds.manifest.groups is not None
    assert sorted(ds.manifest.groups.names) == ["p1", "p3"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": {"label": "nope"}}, r"no column 'nope' for the label .*picture, fine"),
        ({"columns": {"image": "patient"}}, None),
        ({"columns": {"group": "bbox"}}, r"column 'bbox' .* cannot be the group"),
        ({"fields": {"weight": "float"}}, r"field 'weight' \(--field\) is no column"),
        ({"splits": ["train"]}, r"no split 'train'.*it has no splits"),
    ],
)
def test_a_column_or_split_that_is_not_there_stops_before_any_row(
    options: dict[str, Any], message: str | None
) -> None:
    data = _roles_dataset()
    if message is None:  # a text column as the image: its texts are paths, here missing
        samples, rejects = _samples(
            huggingface_source(data, IngestOptions(importer="huggingface", **options))
        )
        assert samples == []
        assert [(r.path, r.reason) for r in rejects][:1] == [("0", "file not found")]
        return
    with pytest.raises(IngestError, match=message):
        huggingface_source(data, IngestOptions(importer="huggingface", **options))


def test_no_label_column_is_an_error_naming_the_columns() -> None:
    data = Dataset.from_dict(
        {"image": [{"bytes": _png(_pixels(0)), "path": None}], "kind": [1.5]},
        features=Features({"image": Image(), "kind": Value("float32")}),
    )
    with pytest.raises(IngestError, match=r"no label column .*--column label=NAME.*image, kind"):
        huggingface_source(data, HF_OPTIONS)
    with pytest.raises(IngestError, match=r"column 'kind' \(float\) cannot be the label"):
        huggingface_source(data, IngestOptions(columns={"label": "kind"}))


def test_the_fingerprint_follows_the_files_and_the_column_choice(tmp_path: Path) -> None:
    _dataset(0, [0, 1]).save_to_disk(tmp_path / "saved")
    first = huggingface_source(tmp_path / "saved", HF_OPTIONS)
    assert first.total == 2
    assert huggingface_source(str(tmp_path / "saved"), HF_OPTIONS).fingerprint == first.fingerprint
    other = huggingface_source(tmp_path / "saved", IngestOptions(columns={"group": "note"}))
    assert other.fingerprint != first.fingerprint
    data = next((tmp_path / "saved").glob("*.arrow"))
    os.utime(data, ns=(1, 1))
    assert huggingface_source(tmp_path / "saved", HF_OPTIONS).fingerprint != first.fingerprint


def test_a_missing_datasets_package_is_named_with_its_install_hint(tmp_path: Path) -> None:
    _dataset(0, [0, 1, 2]).save_to_disk(tmp_path / "saved")
    script = (
        "import sys\n"
        "sys.modules['datasets'] = None\n"
        "from datumio.errors import IngestError\n"
        "from datumio.ingest.huggingface import huggingface_source\n"
        "from datumio.ingest.options import IngestOptions\n"
        "source = huggingface_source(sys.argv[1], IngestOptions())\n"
        "print('rows', sum(1 for _ in source.samples()))\n"
        "try:\n"
        "    huggingface_source(object(), IngestOptions())\n"
        "except IngestError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "saved")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "rows 3"  # a path needs pyarrow only
    assert 'pip install "datumio[huggingface]"' in lines[1]
