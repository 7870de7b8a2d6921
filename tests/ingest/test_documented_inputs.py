"""Documented input rules no other test pins: ``--min-side`` (docs/ingest.md, rejects) and
32-bit integer and float images (docs/format.md, "Decode rules" 4). Expected pixels are
worked out here from the documented formula, not by calling datumio's codec."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from console import console_argv
from PIL import Image

import datumio

#: 32-bit integers up to 65535: scaled by v * 255 / 65535 and rounded.
INT32_LOW = np.array([[0, 1, 128, 129, 257, 32767, 32768, 65535]], dtype=np.int32)
#: Some value above 65535: scaled by the image's own maximum, never clipped.
INT32_HIGH = np.array([[0, 1000, 70000, 140000, 1_000_000]], dtype=np.int32)


def _tiff(path: Path, pixels: np.ndarray, mode: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels, mode)
    assert img.mode == mode
    img.save(path, "TIFF")
    with Image.open(path) as back:
        assert back.mode == mode  # the file really is 32-bit
    return path


def _row(ds: datumio.Dataset, source: str) -> list[int]:
    [rid] = [i for i in range(len(ds)) if ds.source(i) == source]
    pixels = ds.image(rid)
    assert (pixels == pixels[..., :1]).all()  # gray stays gray
    return pixels[0, :, 0].astype(int).tolist()


def test_32_bit_integer_images_are_scaled_and_float_images_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tiff(src / "a" / "low.tif", INT32_LOW, "I")
    _tiff(src / "a" / "high.tif", INT32_HIGH, "I")
    _tiff(src / "a" / "float.tif", np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    report = datumio.ingest(src, tmp_path / "out.lmdb", datumio.IngestOptions(workers=1))
    assert [(r.path, r.reason) for r in report.rejects] == [("a/float.tif", "unsupported mode")]
    with datumio.open(tmp_path / "out.lmdb") as ds:
        # 1 * 255 / 65535 = 0.004 -> 0; 128 -> 0.498 -> 0; 129 -> 0.502 -> 1; 257 -> 1.0;
        # 32767 -> 127.498 -> 127; 32768 -> 127.502 -> 128.
        assert _row(ds, "a/low.tif") == [0, 0, 0, 1, 1, 127, 128, 255]
        # top = 1,000,000: 1000 -> 0.255 -> 0; 70000 -> 17.85 -> 18; 140000 -> 35.7 -> 36.
        assert _row(ds, "a/high.tif") == [0, 0, 18, 36, 255]


def test_min_side_rejects_images_with_a_shorter_side(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name, (w, h) in {
        "wide": (20, 7),
        "tall": (7, 20),
        "square": (8, 8),
        "big": (9, 30),
    }.items():
        (src / "a").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (10, 20, 30)).save(src / "a" / f"{name}.png")
    out = tmp_path / "out.lmdb"
    done = subprocess.run(
        console_argv(["datumio-ingest", str(src), str(out), "--min-side", "8", "--quiet"]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with datumio.open(out) as ds:
        assert sorted(ds.source(i) for i in range(len(ds))) == ["a/big.png", "a/square.png"]
    rows = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert sorted((r["path"], r["reason"]) for r in rows) == [
        ("a/tall.png", "too small"),
        ("a/wide.png", "too small"),
    ]
    # The default (1) accepts all four; the option checks its value.
    report = datumio.ingest(src, tmp_path / "all.lmdb", datumio.IngestOptions(workers=1))
    assert report.num_records == 4 and report.rejects == []
    with pytest.raises(datumio.OptionError, match="min_side"):
        datumio.IngestOptions(min_side=0)
