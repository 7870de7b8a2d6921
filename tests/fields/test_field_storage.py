"""Version-1 datasets still open; resizes map geometric fields; damage in a field is caught."""

from __future__ import annotations

import json
from pathlib import Path

import lmdb
import numpy as np
import pytest
from builders import build_dataset, draw_file
from fields_support import ingest, write_jsonl
from PIL import Image

import datumio
from datumio.errors import RecordError
from datumio.shards.verify import verify


@pytest.mark.parametrize("backend", ["lmdb", "h5"])
def test_a_version_1_dataset_opens(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    for k in range(3):
        draw_file(src / f"c{k % 2}/i{k}.png", (9, 12), seed=k)
    out = tmp_path / f"v1.{backend}"
    build_dataset(src, out)
    path = out / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    assert "fields" not in manifest
    manifest["format_version"] = 1  # what datumio wrote before fields: the same files
    path.write_text(json.dumps(manifest), "utf-8")
    with datumio.open(out) as ds:
        assert ds.manifest.format_version == 1 and dict(ds.fields) == {}
        record = ds.record(2)
        assert set(record) == {"image", "label"} and record["image"].shape == (9, 12, 3)
    assert verify(out, decode=True).ok
    if backend == "lmdb":  # a version-1 shard has two databases, as before
        shard = out / manifest["shards"][0]["file"]
        env = lmdb.open(str(shard), subdir=False, readonly=True, lock=False, max_dbs=3)
        with env.begin() as txn:
            assert [k for k, _ in txn.cursor()] == [b"meta", b"records"]
        env.close()


@pytest.mark.parametrize(
    ("options", "stored"),
    [({"short_side": 20, "encode": "png"}, (40, 20)), ({"max_side": 10, "encode": "raw"}, (10, 5))],
)
def test_a_resize_scales_boxes_keypoints_and_masks(
    tmp_path: Path, options: dict[str, object], stored: tuple[int, int]
) -> None:
    src = tmp_path / "src"
    draw_file(src / "i.png", (10, 20))
    mask = np.zeros((10, 20), np.uint8)
    mask[:, 10:] = 3  # right half
    mask[5:, :] += 1  # bottom half
    Image.fromarray(mask, "L").save(src / "m.png")
    rows = [
        {
            "path": "i.png",
            "label": 0,
            "boxes": [[2, 1, 10, 5, 4]],
            "kps": [[10, 5, 2], [0, 0, 1]],
            "seg": "m.png",
        }
    ]
    out = tmp_path / "out.lmdb"
    labels = write_jsonl(tmp_path / "l.jsonl", rows)
    ingest(src, out, labels, fields={"seg": "mask"}, **options)
    sx, sy = stored[0] / 20, stored[1] / 10
    with datumio.open(out) as ds:
        assert ds.shape(0)[:2] == (stored[1], stored[0])
        record = ds.record(0)
    assert record["boxes"].boxes.tolist() == [[2 * sx, 1 * sy, 10 * sx, 5 * sy]]
    assert record["boxes"].classes.tolist() == [4]
    assert record["kps"].tolist() == [[10 * sx, 5 * sy, 2], [0, 0, 1]]
    expected = np.asarray(Image.fromarray(mask, "L").resize(stored, Image.Resampling.NEAREST))
    assert record["seg"].shape == (stored[1], stored[0])
    assert np.array_equal(record["seg"], expected)
    assert set(np.unique(record["seg"]).tolist()) == {0, 1, 3, 4}  # nearest: no new labels


def test_a_centre_crop_clips_boxes_and_hides_keypoints(tmp_path: Path) -> None:
    src = tmp_path / "src"
    draw_file(src / "i.png", (20, 40))
    rows = [
        {
            "path": "i.png",
            "label": 0,
            "boxes": [[0, 0, 5, 5], [5, 2, 20, 18], [35, 0, 40, 5]],
            "kps": [[2, 2, 2], [20, 10, 2]],
        }
    ]
    out = tmp_path / "out.lmdb"
    # size 10x10: the 40x20 image scales by 0.5 to 20x10, centre crop x 5..15 (source 10..30)
    ingest(src, out, write_jsonl(tmp_path / "l.jsonl", rows), size=(10, 10), encode="png")
    with datumio.open(out) as ds:
        record = ds.record(0)
    assert ds.shape(0)[:2] == (10, 10)
    assert record["boxes"].boxes.tolist() == [[0, 1, 5, 9]]  # one clipped, two dropped
    assert record["kps"].tolist() == [[-4, 1, 0], [5, 5, 2]]


@pytest.mark.parametrize("backend", ["lmdb", "h5"])
def test_verify_finds_a_flipped_byte_in_a_field(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    for k in range(3):
        draw_file(src / f"i{k}.png", (8, 8), seed=k)
    marker = "FIELD-MARKER-0123456789"
    rows = [{"path": f"i{k}.png", "label": 0, "note": f"{marker}{k}"} for k in range(3)]
    out = tmp_path / f"out.{backend}"
    ingest(src, out, write_jsonl(tmp_path / "l.jsonl", rows), encode="raw")
    assert verify(out, decode=True).ok
    (shard,) = (out / "shards").iterdir()
    data = bytearray(shard.read_bytes())
    at = data.index(f"{marker}1".encode())
    data[at + 3] ^= 0x01
    shard.write_bytes(bytes(data))
    report = verify(out)
    assert [(p.what, p.record) for p in report.problems] == [("fields CRC32 mismatch (bit rot)", 1)]
    with datumio.open(out) as ds:
        assert ds.field(0, "note") == f"{marker}0"
        with pytest.raises(RecordError, match=r"record 1 .*fields fail their CRC32 check"):
            ds.field(1, "note")
        with pytest.raises(RecordError, match="fields fail their CRC32"):
            ds.record(1)
        assert ds.stored(1)[1] == 0  # the image is fine
