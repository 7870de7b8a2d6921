"""Folder listing: symlinks, names, hidden files and files outside class folders."""

from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

import awkward as aw
import numpy as np
import pytest
from image_helpers import MakeImage, read_rejects_jsonl

import datumio
from datumio.errors import IngestError


def _ingest(src: Path, out: Path, workers: int = 1) -> tuple[datumio.IngestReport, list[str]]:
    report = datumio.ingest(src, out, datumio.IngestOptions(workers=workers))
    ds = datumio.open(out)
    return report, [ds.source(i) for i in range(len(ds))]


@pytest.mark.parametrize("workers", [1, 2])
def test_symlinks_inside_are_followed_and_unsafe_ones_rejected(
    tmp_path: Path, make_image: MakeImage, workers: int
) -> None:
    src, outside = tmp_path / "src", tmp_path / "outside"
    make_image(src / "cats" / "a.png")
    make_image(src / "cats" / "sub" / "b.png")
    make_image(outside / "secret.png")
    dogs = src / "dogs"
    dogs.mkdir()
    os.symlink("../cats/a.png", dogs / "file_link.png")  # a file inside the root
    os.symlink("../cats/sub", dogs / "dir_link")  # a folder inside the root
    os.symlink(outside / "secret.png", dogs / "escape_file.png")
    os.symlink(outside, dogs / "escape_dir")
    os.symlink(src / "nowhere.png", dogs / "dangling.png")
    os.symlink("self_loop.png", dogs / "self_loop.png")
    os.symlink("loop_b.png", dogs / "loop_a.png")
    os.symlink("loop_a.png", dogs / "loop_b.png")
    (src / "cats" / "deep").mkdir()
    os.symlink("..", src / "cats" / "deep" / "up")  # a folder cycle: cats/deep/up -> cats
    os.symlink(outside, src / "escaping_class")  # a class folder outside the root

    report, sources = _ingest(src, tmp_path / "out", workers)

    assert sources == [
        "cats/a.png",
        "cats/sub/b.png",
        "dogs/dir_link/b.png",
        "dogs/file_link.png",
    ]
    expected = {
        "cats/deep/up": "symlink loop",
        "dogs/dangling.png": "dangling symlink",
        "dogs/escape_dir": "symlink escapes the input root",
        "dogs/escape_file.png": "symlink escapes the input root",
        "dogs/loop_a.png": "symlink loop",
        "dogs/loop_b.png": "symlink loop",
        "dogs/self_loop.png": "symlink loop",
        "escaping_class": "symlink escapes the input root",
    }
    assert {r.path: r.reason for r in report.rejects} == expected
    assert {r["path"]: r["reason"] for r in read_rejects_jsonl(tmp_path / "out")} == expected
    assert report.manifest.class_names == ("cats", "dogs")
    assert report.num_records + len(report.rejects) == report.files_seen == 12


def test_files_directly_in_src_and_hidden_entries(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    make_image(src / "loose.png")
    (src / "README.txt").write_text("not a class\n")
    make_image(src / ".hidden_class" / "x.png")
    make_image(src / "cats" / ".thumbs" / "x.png")
    make_image(src / "cats" / ".x.png")
    (src / "cats" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    make_image(src / "cats" / "ok.png")

    report, sources = _ingest(src, tmp_path / "out")

    assert sources == ["cats/ok.png"]
    assert report.manifest.class_names == ("cats",)
    assert [(r.path, r.reason) for r in report.rejects] == [
        ("README.txt", "not in a class folder"),
        ("loose.png", "not in a class folder"),
    ]
    assert report.files_seen == 3  # hidden entries are not seen at all


def test_unicode_and_spaces_in_names_are_kept_exactly(
    tmp_path: Path, make_image: MakeImage
) -> None:
    src = tmp_path / "src"
    nfc = unicodedata.normalize("NFC", "café au lait.png")
    nfd = unicodedata.normalize("NFD", "café au lait.png")
    names = [nfc, nfd, "日本 語.png", "emoji 🐱.PNG", " leading space.png", "tab\there.png"]
    for name in names:
        make_image(src / "chats noirs ü" / name)
    report, sources = _ingest(src, tmp_path / "out")
    assert report.rejects == []
    assert report.manifest.class_names == ("chats noirs ü",)
    assert sorted(sources) == sorted(f"chats noirs ü/{n}" for n in names)
    assert len(set(sources)) == len(names)  # NFC and NFD spellings are different files


@pytest.mark.skipif(sys.platform != "linux", reason="needs a filesystem of raw byte names")
def test_names_that_are_not_utf8_round_trip(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    make_image(src / "c" / "ok.png")
    raw_name = os.fsencode(src / "c") + b"/caf\xe9.png"
    with open(raw_name, "wb") as fh:
        fh.write((src / "c" / "ok.png").read_bytes())
    report, sources = _ingest(src, tmp_path / "out")
    assert report.rejects == []
    assert os.fsencode(sources[0]) == b"c/caf\xe9.png"


@pytest.mark.skipif(sys.platform != "linux", reason="needs a filesystem of raw byte names")
def test_rejected_name_that_is_not_utf8_is_reported(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    make_image(src / "c" / "ok.png")
    with open(os.fsencode(src / "c") + b"/bad\xff.png", "wb") as fh:
        fh.write(b"")
    report, _ = _ingest(src, tmp_path / "out")
    assert [r.reason for r in report.rejects] == ["empty file"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_special_files_are_rejected_not_read(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    make_image(src / "c" / "ok.png")
    os.mkfifo(src / "c" / "pipe.png")  # reading it would block forever
    report, sources = _ingest(src, tmp_path / "out")
    assert sources == ["c/ok.png"]
    assert [(r.path, r.reason) for r in report.rejects] == [("c/pipe.png", "not a regular file")]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_rejected(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    make_image(src / "c" / "ok.png")
    locked = make_image(src / "c" / "locked.png")
    locked.chmod(0)
    try:
        report, _ = _ingest(src, tmp_path / "out")
    finally:
        locked.chmod(0o644)
    assert [(r.path, r.reason) for r in report.rejects] == [("c/locked.png", "unreadable")]


def test_output_inside_the_input_is_refused(tmp_path: Path, make_image: MakeImage) -> None:
    make_image(tmp_path / "src" / "c" / "ok.png")
    with pytest.raises(IngestError, match="inside the input"):
        datumio.ingest(tmp_path / "src", tmp_path / "src" / "out.lmdb")


def test_empty_class_folders_keep_ids_stable(tmp_path: Path, make_image: MakeImage) -> None:
    src = tmp_path / "src"
    make_image(src / "a" / "1.png")
    (src / "b").mkdir()
    (src / "c" / "only_hidden").mkdir(parents=True)
    make_image(src / "c" / ".hidden.png")
    aw.zero_byte(src / "d" / "bad.png")
    make_image(src / "e" / "1.png")
    report, _ = _ingest(src, tmp_path / "out")
    ds = datumio.open(tmp_path / "out")
    assert ds.class_names == ["a", "b", "c", "d", "e"]
    np.testing.assert_array_equal(ds.labels, [0, 4])
    assert [e.to_json() for e in report.manifest.empty_classes] == [
        {"id": 1, "name": "b", "why": "no files"},
        {"id": 2, "name": "c", "why": "no files"},
        {"id": 3, "name": "d", "why": "all 1 file(s) rejected"},
    ]
