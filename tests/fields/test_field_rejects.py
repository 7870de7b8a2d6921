"""Field values that cannot be stored reject their row, with the reason, like bad images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import draw_file
from fields_support import ingest, write_jsonl
from image_helpers import read_rejects_jsonl
from PIL import Image

import datumio
from datumio.errors import BadInputError

#: (extra keys of the bad row, declared fields, reason, a phrase of the detail)
CASES: list[tuple[dict[str, Any], dict[str, str], str, str]] = [
    ({"boxes": [[1, 1, 21, 5]]}, {}, "box outside the image", "outside the 20x10 image"),
    ({"boxes": [[-1, 0, 5, 5]]}, {}, "box outside the image", "outside the 20x10 image"),
    ({"boxes": [[5, 1, 5, 4]]}, {}, "bad box", "x1 <= x0"),
    ({"boxes": [[1, 6, 5, 4]]}, {}, "bad box", "y1 <= y0"),
    ({"boxes": [[1, 1, 5, 4, 1.5]]}, {"boxes": "boxes"}, "bad box", "is not an id"),
    ({"boxes": [[1, 1, 5, 4], [1, 1, 5, 4, 0]]}, {"boxes": "boxes"}, "bad box", "expected 4"),
    ({"kps": [[21, 2, 2]]}, {}, "keypoint outside the image", "outside the 20x10 image"),
    ({"seg": "small.png"}, {"seg": "mask"}, "bad mask", "8x8, the image is 20x10"),
    ({"seg": "rgb.png"}, {"seg": "mask"}, "bad mask", "not a single-channel label image"),
    ({"seg": "junk.png"}, {"seg": "mask"}, "bad mask", "unreadable"),
    ({"seg": "../outside.png"}, {"seg": "mask"}, "bad mask path", "path contains '..'"),
    ({"seg": "/etc/hostname"}, {"seg": "mask"}, "bad mask path", "absolute path"),
    ({"seg": "missing.png"}, {"seg": "mask"}, "bad mask path", "file not found"),
    ({"n": "seven"}, {"n": "int"}, "bad field value", "expected an integer, got 'seven'"),
    ({"n": 1.5}, {"n": "int"}, "bad field value", "expected an integer"),
    ({"v": [1, 2]}, {"v": "array:float32:3"}, "bad field value", "2 numbers, the field has 3"),
    ({"v": [1, 70000]}, {"v": "array:int16"}, "bad field value", "outside int16"),
    ({"v": [1, "x"]}, {"v": "array:int16"}, "bad field value", "a list of numbers"),
    ({"tags": "cat"}, {"tags": "multilabel"}, "bad field value", "a list of class names"),
    ({"tags": [1, 2]}, {"tags": "multilabel"}, "bad field value", "class ids in a field of names"),
    ({"b": "not base64!"}, {"b": "bytes"}, "bad field value", "base64"),
]


def _input(tmp_path: Path, bad: dict[str, Any]) -> tuple[Path, Path]:
    src = tmp_path / "src"
    for k in range(3):
        draw_file(src / f"i{k}.png", (10, 20), seed=k)
    Image.fromarray(np.zeros((10, 20), np.uint8), "L").save(src / "good.png")
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(src / "small.png")
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(src / "rgb.png")
    (src / "junk.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((10, 20), np.uint8), "L").save(tmp_path / "outside.png")
    good = {
        "boxes": [[0, 0, 20, 10]],
        "kps": [[1, 1, 1]],
        "seg": "good.png",
        "n": 1,
        "v": [1, 2, 3],
        "tags": ["a"],
        "b": "AAE=",
    }
    keys = set(bad)
    rows = [
        {"path": "i0.png", "label": 0, **{k: good[k] for k in keys}},
        {"path": "i1.png", "label": 1, **bad},
        {"path": "i2.png", "label": 0, **{k: good[k] for k in keys}},
    ]
    return src, write_jsonl(tmp_path / "labels.jsonl", rows)


@pytest.mark.parametrize(("bad", "fields", "reason", "detail"), CASES, ids=[c[3] for c in CASES])
def test_a_bad_value_rejects_its_row(
    tmp_path: Path, bad: dict[str, Any], fields: dict[str, str], reason: str, detail: str
) -> None:
    src, labels = _input(tmp_path, bad)
    out = tmp_path / "out.lmdb"
    report = ingest(src, out, labels, fields=fields or None)
    assert [(r.path, r.reason) for r in report.rejects] == [("i1.png", reason)]
    assert detail in report.rejects[0].detail
    (row,) = read_rejects_jsonl(out)
    assert row["reason"] == reason and row["label"] == 1
    assert row.get("line", 2) == 2  # listing-time checks know the line
    with datumio.open(out) as ds:
        assert [ds.source(i) for i in range(len(ds))] == ["i0.png", "i2.png"]
        assert ds.manifest.class_rejected == (0, 1)


def test_strict_stops_at_a_bad_value(tmp_path: Path) -> None:
    src, labels = _input(tmp_path, {"boxes": [[1, 1, 21, 5]]})
    with pytest.raises(BadInputError, match="box outside the image"):
        ingest(src, tmp_path / "out.lmdb", labels, on_error="raise")
    assert not (tmp_path / "out.lmdb").exists()
