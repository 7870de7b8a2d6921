"""A JSONL labels file with a field of every type comes back exactly, from both backends."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fields_support import MIXED_DECLARED, ingest, mixed_rows, write_jsonl

import datumio
from datumio.fields import Boxes
from datumio.shards import format as fmt


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_every_type_round_trips(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    rows, masks = mixed_rows(src)
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    out = tmp_path / f"out.{'lmdb' if backend == 'lmdb' else 'h5'}"
    report = ingest(src, out, labels, encode="png", fields=MIXED_DECLARED, shard_records=3)
    assert report.rejects == []
    with datumio.open(out) as ds:
        assert ds.manifest.format_version == fmt.FORMAT_VERSION == 2
        kinds = {name: spec.type for name, spec in ds.fields.items()}
        assert kinds == {
            "vec": "array",
            "ids": "multilabel",
            "seg": "mask",
            "count": "int",
            "score": "float",
            "tags": "multilabel",
            "emb": "array",
            "note": "text",
            "blob": "text",  # base64 is text unless declared bytes
            "boxes": "boxes",
            "plain_boxes": "boxes",
            "kps": "keypoints",
        }
        assert ds.fields["tags"].vocabulary == ("indoor", "night", "person")
        assert ds.fields["ids"].vocabulary is None and ds.fields["ids"].length == 8
        assert ds.fields["vec"].dtype == "<i2" and ds.fields["vec"].length == 3
        assert ds.fields["boxes"].length == 5 and ds.fields["plain_boxes"].length == 4
        assert ds.fields["seg"].records == 3 and ds.fields["boxes"].items == 6
        for i, row in enumerate(rows):
            record = ds.record(i)
            assert record["label"] == ds.class_names.index(row["label"])
            assert record["image"].shape == ds.shape(i)
            _check_record(record, row, masks[i])
            assert ds.field(i, "note") == record["note"]
        count_index = ds.field_index("count")
        assert count_index.tolist() == [r["count"] for r in rows]
        offsets, ids = ds.field_index("tags")
        assert [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(4)] == [
            [0, 1],
            [2],
            [],
            [0, 2],
        ]
        with pytest.raises(KeyError, match=r"no field 'nope'.*count"):
            ds.field(0, "nope")
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert [f["name"] for f in manifest["fields"]] == list(kinds)
    assert all("fields_crc32" in s for s in manifest["shards"])
    assert manifest["index"]["field_tags_values"].endswith("field_tags_values.npy")


def _check_record(record: dict, row: dict, mask: np.ndarray) -> None:
    assert record["count"] == row["count"] and isinstance(record["count"], int)
    assert record["score"] == row["score"]
    names = ("indoor", "night", "person")
    assert record["tags"].dtype == np.int32
    assert [names[t] for t in record["tags"]] == sorted(set(row["tags"]))
    assert record["ids"].tolist() == sorted(set(row["ids"]))
    assert record["emb"].dtype == np.float32
    assert record["emb"].tolist() == row["emb"]
    assert record["vec"].dtype == np.int16 and record["vec"].tolist() == row["vec"]
    assert record["note"] == row["note"]
    assert record["blob"] == row["blob"]
    if row["boxes"] is None:
        assert record["boxes"] is None and record["seg"] is None and record["kps"] is None
        return
    boxes = record["boxes"]
    assert isinstance(boxes, Boxes) and boxes.boxes.dtype == np.float32
    assert boxes.boxes.tolist() == [b[:4] for b in row["boxes"]]
    assert boxes.classes is not None and boxes.classes.tolist() == [b[4] for b in row["boxes"]]
    plain = record["plain_boxes"]
    assert plain.classes is None and plain.boxes.shape == (len(row["plain_boxes"]), 4)
    assert record["kps"].dtype == np.float32 and record["kps"].tolist() == row["kps"]
    assert record["seg"].dtype == np.uint8 and np.array_equal(record["seg"], mask)


def test_declared_bytes_and_float_win_over_inference(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rows, _ = mixed_rows(src)
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    fields = {**MIXED_DECLARED, "blob": "bytes", "count": "float"}
    ingest(src, tmp_path / "out.lmdb", labels, fields=fields)
    with datumio.open(tmp_path / "out.lmdb") as ds:
        assert ds.fields["blob"].type == "bytes"
        assert ds.field(1, "blob") == bytes([1, 0, 255])
        assert ds.field(1, "count") == float(10**12 + 1)
        with pytest.raises(KeyError, match="not an int or multilabel"):
            ds.field_index("count")


def test_a_dataset_without_fields_is_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rows, _ = mixed_rows(src)
    plain = [{"path": r["path"], "label": r["label"]} for r in rows]
    labels = write_jsonl(tmp_path / "labels.jsonl", plain)
    ingest(src, tmp_path / "out.lmdb", labels)
    manifest = json.loads((tmp_path / "out.lmdb" / "manifest.json").read_text("utf-8"))
    assert "fields" not in manifest
    assert not any("fields_crc32" in s for s in manifest["shards"])
    assert not any(k.startswith("field_") for k in manifest["index"])
    with datumio.open(tmp_path / "out.lmdb") as ds:
        assert dict(ds.fields) == {}
        assert set(ds.record(0)) == {"image", "label"}


def test_inspect_lists_the_fields(tmp_path: Path) -> None:
    from datumio.inspect.field_stats import LabelValues
    from datumio.inspect.summary import summarize
    from datumio.tools.inspect_text import render_summary

    src = tmp_path / "src"
    rows, _ = mixed_rows(src)
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    ingest(src, tmp_path / "out.lmdb", labels, fields=MIXED_DECLARED)
    with datumio.open(tmp_path / "out.lmdb") as ds:
        summary = summarize(ds, duplicates=False)
    fields = {f.name: f for f in summary.fields}
    boxes, tags = fields["boxes"], fields["tags"]
    assert (boxes.name, boxes.type, boxes.dtype, boxes.records, boxes.per_record) == (
        "boxes",
        "boxes",
        "<f4",
        3,
        1.5,
    )
    assert isinstance(tags.values, LabelValues)
    assert tags.values.top == (("indoor", 2), ("person", 2), ("night", 1))
    text = render_summary(summary)
    assert "fields: 12" in text and "top: indoor 2, person 2, night 1" in text
