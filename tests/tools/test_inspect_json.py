"""``datumio inspect --json`` is the typed summary's ``to_json()``, with its keys in a fixed order.

The dataset has every field type, groups, a rejected file and a duplicate across classes, so
every object of the JSON is there; the keys of each are pinned in order (a reader that
compares outputs byte for byte sees the same text from one version to the next).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import datumio
from datumio.inspect.field_stats import BoxValues, IntValues, LabelValues, MaskValues
from datumio.inspect.record import describe_record
from datumio.inspect.sampling import sampling_report
from datumio.inspect.summary import SUMMARY_KEYS, summarize
from datumio.shards.verify import verify
from datumio.tools import inspect_cmd
from datumio.tools.render import json_text

#: (width, height) of each record's image; record 2 lacks every field.
SIZES = [(20, 10), (16, 24), (12, 12), (30, 15)]
DECLARED = {
    "kind": "int",
    "tags": "multilabel",
    "score": "float",
    "emb": "array:float32",
    "note": "text",
    "blob": "bytes",
    "boxes": "boxes",
    "kps": "keypoints",
    "seg": "mask",
}
MARKER = "FIELD-MARKER-0123456789"

BASE = ["name", "type", "dtype", "records"]
FROM_INDEX = ["from", "records_read"]
FROM_RECORDS = ["from", "records_read", "seen"]
FIELD_KEYS = {
    "kind": [*BASE, *FROM_INDEX, "top", "distinct", "min", "max"],
    "tags": [*BASE, "per_record", *FROM_INDEX, "top", "distinct", "no_labels"],
    "score": [*BASE, *FROM_RECORDS, "min", "mean", "max"],
    "emb": [*BASE, "per_record", *FROM_RECORDS, "min", "mean", "max", "length"],
    "note": [*BASE, *FROM_RECORDS, "length"],
    "blob": [*BASE, *FROM_RECORDS, "length"],
    "boxes": [*BASE, "per_record", *FROM_RECORDS, "boxes", "per_image", "area", "classes"],
    "kps": [
        *BASE,
        "per_record",
        *FROM_RECORDS,
        "points",
        "per_record_max",
        "visible_fraction",
        "visibility",
    ],
    "seg": [*BASE, *FROM_RECORDS, "pixels", "pixel_share"],
}
RECORD_KEYS = [
    "id",
    "label",
    "class",
    "source",
    "shard",
    "shard_file",
    "local_id",
    "shape",
    "payload_bytes",
    "payload_format",
    "crc32",
    "crc32_ok",
    "group",
    "fields",
]


def _row(k: int, width: int, height: int) -> dict[str, Any]:
    if k == 2:
        return {"path": f"{k}.png", "label": "cat", "group": "g0"}
    return {
        "path": f"{k}.png",
        "label": ["cat", "dog"][k % 2],
        "group": f"g{k % 2}",
        "kind": k % 2,
        "tags": [["x", "y"], ["y"], [], ["z"]][k],
        "score": k / 4,
        "emb": [1.0, float(k)],
        "note": f"{MARKER}{k}",
        "blob": base64.b64encode(bytes([k, 255])).decode(),
        "boxes": [[0, 0, width / 2, height / 2, k]],
        "kps": [[1, 1, 2], [2, 2, 0]],
        "seg": f"m{k}.png",
    }


def _build(root: Path) -> Path:
    src = root / "src"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for k, (w, h) in enumerate(SIZES):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(src / f"{k}.png")
        Image.fromarray(np.full((h, w), k, np.uint8), "L").save(src / f"m{k}.png")
        rows.append(_row(k, w, h))
    shutil.copy(src / "0.png", src / "copy.png")  # record 0's bytes again, as a dog
    rows.append({**_row(0, *SIZES[0]), "path": "copy.png", "label": "dog", "note": "copy"})
    rows.append({"path": "missing.png", "label": "cat", "group": "g0"})
    labels = root / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = root / "data.lmdb"
    options = datumio.IngestOptions(
        workers=1, shard_records=2, labels_file=str(labels), fields=DECLARED
    )
    report = datumio.ingest(src, out, options)
    assert [r.reason for r in report.rejects] == ["file not found"]
    return out


def _flip_note_bits(shards: Path, local: int) -> None:
    """Flip one bit of every copy of record ``local``'s note in the shard files, in place:
    the value the reader reads, and any stale copy in a free page (a writer that does not
    clear its pages leaves such copies, so the first one found need not be the live one)."""
    note = f"{MARKER}{local}".encode()
    for shard in shards.iterdir():
        data = bytearray(shard.read_bytes())
        at = data.find(note)
        while at >= 0:
            data[at + 3] ^= 0x01
            at = data.find(note, at + 1)
        shard.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("inspect-json"))


def _inspect(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, Any, str]:
    code = inspect_cmd.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _timeless(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without the run time of the integrity check (the one key that varies)."""
    obj["integrity"].pop("seconds")
    return obj


def test_the_json_is_the_summary_to_json(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--json", "--sampling", "balanced", "--epochs", "2", "--world-size", "2"]
    code, printed, _ = _inspect(capsys, dataset, *argv, "--batch-size", "2")
    assert code == 0
    with datumio.open(dataset) as ds:
        report = sampling_report(ds, "balanced", epochs=2, world_size=2, batch_size=2)
        summary = summarize(ds, sampling=report, integrity=verify(str(dataset), records=False))
    made = json.loads(json_text(summary.to_json()))
    assert _timeless(made) == _timeless(printed)
    # The typed summary is what the JSON says, read by attribute.
    assert [(c.name, c.count) for c in summary.classes] == [
        (c["name"], c["count"]) for c in printed["classes"]
    ]
    assert summary.on_disk.total == printed["bytes"]["total"]
    assert summary.groups is not None and list(summary.groups.names) == ["g0", "g1"]
    # A fresh copy: changing it changes nothing in the summary.
    first = summary.to_json()
    first["classes"][0]["count"] = -1
    first["image"]["source_formats"]["PNG"] = -1
    assert summary.to_json()["classes"][0]["count"] == summary.classes[0].count >= 0
    assert summary.image.source_formats["PNG"] == 5


def test_every_object_has_its_keys_in_order(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--json", "--sampling", "balanced", "--world-size", "2", "--batch-size", "2"]
    code, obj, _ = _inspect(capsys, dataset, *argv)
    assert code == 0 and list(obj) == list(SUMMARY_KEYS)
    assert list(obj["classes"][0]) == ["id", "name", "count", "rejected"]
    assert list(obj["shards"]) == ["count", "records_min", "records_max", "payload_bytes"]
    assert list(obj["bytes"]) == ["total", "shards", "index", "other"]
    assert list(obj["image"]) == ["channels", "stored", "source", "source_formats"]
    assert list(obj["image"]["stored"]) == ["width", "height", "aspect"]
    assert list(obj["image"]["source"]["aspect"]) == ["min", "max", "mean", "median"]
    assert list(obj["channel_stats"]) == ["scale", "mean", "std"]
    assert list(obj["rejects"]) == ["count", "by_reason", "file", "sample"]
    assert obj["rejects"]["sample"][0]["path"] == "missing.png"
    assert list(obj["groups"]) == ["names", "counts"]
    assert list(obj["ingest"])[:3] == ["source", "input", "options"]
    dup = obj["duplicates"]
    assert list(dup) == [
        "method",
        "records_read",
        "unreadable",
        "unreadable_count",
        "groups",
        "duplicate_records",
        "within_class",
        "across_classes",
        "examples",
    ]
    assert list(dup["within_class"]) == ["groups", "redundant_records"]
    assert list(dup["across_classes"]) == [
        "groups",
        "records",
        "class_pairs",
        "groups_over_two_classes",
    ]
    assert dup["across_classes"]["class_pairs"] == [{"classes": ["cat", "dog"], "groups": 1}]
    assert list(dup["examples"][0]) == ["size", "ids", "classes", "sources", "shape"]
    assert list(obj["integrity"])[:3] == ["schema", "path", "ok"]
    sp = obj["sampling"]
    assert list(sp) == [
        "mode",
        "weights",
        "power",
        "seed",
        "epochs",
        "world_size",
        "epoch_size",
        "rank_size",
        "dropped_per_epoch",
        "exact",
        "fraction_seen_per_epoch",
        "fraction_seen_total",
        "classes",
        "per_rank",
        "notes",
        "shards_per_batch",
    ]
    assert list(sp["classes"][0]) == [
        "id",
        "name",
        "records",
        "draws_per_epoch",
        "share",
        "repeats_per_epoch",
        "repeats_range",
        "unique_per_epoch",
        "seen_after_epochs",
        "coverage",
        "max_draws_of_a_record",
    ]
    assert list(sp["per_rank"][0]) == ["rank", "draws", "by_class"]
    assert list(sp["shards_per_batch"]) == ["batch_size", "shards", "mean", "min", "max"]
    assert {f["name"]: list(f) for f in obj["fields"]} == FIELD_KEYS


def test_field_statistics_are_typed_by_field_type(dataset: Path) -> None:
    with datumio.open(dataset) as ds:
        fields = {f.name: f for f in summarize(ds, duplicates=False).fields}
    kind, tags, boxes, seg = fields["kind"], fields["tags"], fields["boxes"], fields["seg"]
    assert kind.counted_from == "index" and kind.seen is None and kind.per_record is None
    assert isinstance(kind.values, IntValues) and kind.values.top == ((0, 2), (1, 2))
    assert isinstance(tags.values, LabelValues) and tags.values.no_labels == 1
    assert isinstance(boxes.values, BoxValues) and boxes.counted_from == "records"
    assert boxes.seen == 4 and boxes.values.boxes == 4 and boxes.values.classes is not None
    assert isinstance(seg.values, MaskValues)
    pixels = {0: 2 * 20 * 10, 1: 16 * 24, 3: 30 * 15}  # record 0's mask twice
    total = sum(pixels.values())
    assert seg.values.pixels == total
    assert seg.values.pixel_share == tuple((v, round(n / total, 6)) for v, n in pixels.items())


def test_a_record_whose_fields_fail_their_crc32(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, obj, _ = _inspect(capsys, dataset, "--record", 1, "--json")
    assert code == 0 and list(obj) == RECORD_KEYS and obj["group"] == "g1"
    with datumio.open(dataset) as ds:
        info = describe_record(ds, 1)
    assert info.to_json() == obj and info.class_name == obj["class"] == "dog"

    damaged = tmp_path / "damaged.lmdb"
    shutil.copytree(dataset, damaged)
    _flip_note_bits(damaged / "shards", 1)  # one bit of record 1's note
    code, obj, err = _inspect(capsys, damaged, "--record", 1, "--json")
    assert code == 1 and "record 1" in err and "CRC32" in err
    assert list(obj) == [*RECORD_KEYS, "fields_error"] and obj["fields"] is None
    assert "CRC32" in obj["fields_error"]
    code, summary, _ = _inspect(capsys, damaged, "--json", "--no-duplicates")
    note = next(f for f in summary["fields"] if f["name"] == "note")
    assert code == 0 and note["unreadable"] == 1 and note["records_read"] == 4
    assert list(note) == [*BASE, "from", "records_read", "unreadable", "seen", "length"]
