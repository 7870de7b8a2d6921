"""Names that are not UTF-8 are decided when the input is listed, never after the shards.

A class folder whose name is not UTF-8 is a class named with ``\\xNN`` escapes for the bytes
that are not (``os.fsencode(name).decode("utf-8", "backslashreplace")``), unless another
folder has that name: then it is rejected (``class name collision``). Paths inside stay
byte-exact. A labels-file row whose label or group is not UTF-8 text is rejected. Every
JSON file and the ``--json`` report hold valid UTF-8. Real folders with raw byte names.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datumio
from datumio.shards.verify import verify

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform != "linux", reason="needs a filesystem of raw byte names"),
]

CODE = "import sys; from datumio.tools.ingest_cmd import main; sys.exit(main())"


def put(path: bytes, seed: int | None) -> None:
    """A small PNG at the byte path ``path`` (an empty file for ``seed=None``)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = b""
    if seed is not None:
        pixels = np.random.default_rng(seed).integers(0, 256, (9, 11, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        data = buffer.getvalue()
    with open(path, "wb") as fh:
        fh.write(data)


def ingest_cli(src: bytes, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CODE, os.fsdecode(src), str(out), "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=100,
    )


def json_file(path: Path) -> object:
    return json.loads(path.read_bytes().decode("utf-8"))  # strict: valid UTF-8 only


def raw_sources(out: Path) -> set[bytes]:
    with datumio.open(out) as ds:
        return {os.fsencode(ds.source(i)) for i in range(len(ds))}


def test_a_class_folder_that_is_not_utf8_is_a_class_with_an_escaped_name(tmp_path: Path) -> None:
    src = os.fsencode(tmp_path) + b"/in\xe9"  # SRC's own name is not UTF-8 either
    for k, rel in enumerate([b"caf\xe9/1.png", b"caf\xe9/ph\xf6to.png", b"caf\xe9/sub\xff/3.png"]):
        put(src + b"/" + rel, k)
    put(src + b"/caf\xe9/bad\xff.png", None)  # empty: rejected, its path in the report
    put(src + b"/ok/1.png", 7)
    put(src + b"/ok/2.png", 8)
    out = tmp_path / "out.lmdb"
    done = ingest_cli(src, out, "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["classes"] == {"caf\\xe9": 3, "ok": 2}
    assert [r["path"] for r in summary["rejects_sample"]] == ["caf\\xe9/bad\\xff.png"]
    manifest = json_file(out / "manifest.json")
    assert isinstance(manifest, dict) and manifest["class_names"] == ["caf\\xe9", "ok"]
    assert manifest["ingest"]["source"] == src.decode("utf-8", "backslashreplace")
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_bytes().splitlines()]
    assert [(r["path"], r["reason"]) for r in rejects] == [("caf\\xe9/bad\\xff.png", "empty file")]
    assert raw_sources(out) == {
        b"caf\xe9/1.png",
        b"caf\xe9/ph\xf6to.png",
        b"caf\xe9/sub\xff/3.png",
        b"ok/1.png",
        b"ok/2.png",
    }
    assert verify(out).ok
    text = ingest_cli(src, tmp_path / "text.lmdb")
    assert text.returncode == 0 and "caf\\xe9" in text.stdout, text.stderr


def test_a_folder_whose_escaped_name_is_taken_is_rejected(tmp_path: Path) -> None:
    src = tmp_path / "src"
    put(os.fsencode(src) + b"/caf\xe9/1.png", 1)
    put(os.fsencode(src / "caf\\xe9" / "1.png"), 2)  # the escaped spelling, as a real name
    put(os.fsencode(src / "caf\\xe9" / "2.png"), 3)
    out = tmp_path / "out.lmdb"
    report = datumio.ingest(src, out, datumio.IngestOptions(workers=1))
    assert report.manifest.class_names == ("caf\\xe9",)
    assert [(r.path, r.reason) for r in report.rejects] == [
        (os.fsdecode(b"caf\xe9"), "class name collision")
    ]
    assert raw_sources(out) == {b"caf\\xe9/1.png", b"caf\\xe9/2.png"}
    (line,) = (out / "rejects.jsonl").read_bytes().decode("utf-8").splitlines()
    assert json.loads(line)["path"] == "caf\\xe9" and "not UTF-8" in json.loads(line)["detail"]


def test_appending_a_class_folder_that_is_not_utf8_keeps_one_class(tmp_path: Path) -> None:
    base, new, again = (os.fsencode(tmp_path / name) for name in ("base", "new", "again"))
    put(base + b"/ok/1.png", 1)
    put(new + b"/caf\xe9/2.png", 2)
    put(again + b"/caf\xe9/3.png", 3)
    out = tmp_path / "out.lmdb"
    datumio.ingest(os.fsdecode(base), out, datumio.IngestOptions(workers=1))
    for src in (new, again):
        options = datumio.IngestOptions(workers=1, append=True)
        datumio.ingest(os.fsdecode(src), out, options)
    with datumio.open(out) as ds:
        assert list(ds.class_names) == ["ok", "caf\\xe9"]
        assert ds.labels.tolist() == [0, 1, 1]
    assert raw_sources(out) == {b"ok/1.png", b"caf\xe9/2.png", b"caf\xe9/3.png"}
    assert verify(out).ok


def test_labels_and_groups_that_are_not_utf8_are_rejected_rows(tmp_path: Path) -> None:
    src = tmp_path / "src"
    put(os.fsencode(src / "a.png"), 1)
    put(os.fsencode(src) + b"/d\xe9.png", 2)
    rows = [
        {"path": "a.png", "label": "cat", "group": "g1"},
        {"path": "a.png", "label": "caf\udce9", "group": "g1"},  # JSON "\udce9"
        {"path": "a.png", "label": "cat", "group": "\ud800"},
        {"path": "\ud800.png", "label": "cat", "group": "g1"},
        {"path": "d\udce9.png", "label": "dog", "group": "g2"},  # the file d\xe9.png
    ]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="ascii")
    out = tmp_path / "out.lmdb"
    options = datumio.IngestOptions(workers=1, labels_file=str(labels))
    report = datumio.ingest(src, out, options)
    assert report.manifest.class_names == ("cat", "dog")
    assert [(r.line, r.reason) for r in report.rejects] == [
        (2, "label or group not UTF-8"),
        (3, "label or group not UTF-8"),
        (4, "path not UTF-8"),
    ]
    assert raw_sources(out) == {b"a.png", b"d\xe9.png"}
    rejects = (out / "rejects.jsonl").read_bytes().decode("utf-8").splitlines()
    assert json.loads(rejects[2])["path"] == "\\ud800.png"
    assert verify(out).ok


def test_a_labels_file_that_is_not_utf8_stops_the_run_with_a_message(tmp_path: Path) -> None:
    src = tmp_path / "src"
    put(os.fsencode(src / "a.png"), 1)
    labels = tmp_path / "labels.csv"
    labels.write_bytes(b"path,label\na.png,caf\xe9\n")  # Latin-1
    out = tmp_path / "out.lmdb"
    failed = ingest_cli(os.fsencode(src), out, "--labels", str(labels))
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    assert f"{labels} is not UTF-8 text (byte 0xe9" in failed.stderr, failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "src"]
