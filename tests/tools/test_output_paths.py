"""Every output path of every tool is checked before the work starts: exit 2 with a message
naming the option and the path, nothing printed on stdout, nothing written.

A dataset path that does not exist proves the order: the output error (2) comes before the
dataset would fail to open (1).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tool_helpers import run_tool

SPEC = '{"size": 16}'


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    """A plain file where a folder is expected."""
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


def assert_usage_error(done, option: str, path: str, why: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "", "the work started before the output was checked"
    assert option in done.stderr and path in done.stderr and why in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr


def test_the_reported_case(pets: Path) -> None:
    """``datumio inspect out.lmdb --grid /nonexistent/dir/g.png``: no summary, no bare Errno."""
    target = "/nonexistent/dir/g.png"
    assert not os.path.exists("/nonexistent")
    done = run_tool("datumio", "inspect", str(pets), "--grid", target)
    assert_usage_error(done, "--grid", target, "/nonexistent/dir does not exist")


@pytest.mark.parametrize(
    ("option", "name"), [("--grid", "g.png"), ("--histogram", "h.png"), ("--html", "r.html")]
)
def test_inspect_pictures_need_an_existing_folder(tmp_path: Path, option: str, name: str) -> None:
    target = str(tmp_path / "missing" / name)
    done = run_tool("datumio_inspect", str(tmp_path / "no-dataset"), option, target)
    assert_usage_error(done, option, target, "does not exist")
    assert not (tmp_path / "missing").exists()


def test_inspect_save_record_is_checked_first(pets: Path, afile: Path) -> None:
    target = str(afile / "r.png")
    done = run_tool("datumio_inspect", str(pets), "--save-record", "0", target)
    assert_usage_error(done, "--save-record", target, "is a file, not a folder")


def test_inspect_output_that_is_a_folder(pets: Path, tmp_path: Path) -> None:
    done = run_tool("datumio_inspect", str(pets), "--html", str(tmp_path))
    assert_usage_error(done, "--html", str(tmp_path), "is a folder")


def test_inspect_picture_suffix_pillow_cannot_write(pets: Path, tmp_path: Path) -> None:
    target = str(tmp_path / "grid.xyz")
    done = run_tool("datumio_inspect", str(pets), "--grid", target)
    assert_usage_error(done, "--grid", target, "Pillow cannot write .xyz")


def test_inspect_two_options_one_file(pets: Path, tmp_path: Path) -> None:
    target = str(tmp_path / "same.png")
    done = run_tool("datumio_inspect", str(pets), "--grid", target, "--histogram", target)
    assert_usage_error(done, "--histogram", target, "both write")
    assert not Path(target).exists()


def test_inspect_writes_relative_paths_in_the_working_folder(pets: Path, tmp_path: Path) -> None:
    done = run_tool(
        "datumio_inspect", str(pets), "--grid", "g.png", "--html", "r.html", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "g.png").stat().st_size > 0 and (tmp_path / "r.html").stat().st_size > 0


def test_preview_output_is_checked_before_the_dataset(tmp_path: Path, afile: Path) -> None:
    for target, why in (
        (tmp_path / "missing" / "p.png", "does not exist"),
        (afile / "p.png", "is a file"),
    ):
        done = run_tool(
            "datumio_preview", str(tmp_path / "no-dataset"), "--transform", SPEC, "-o", str(target)
        )
        assert_usage_error(done, "-o/--output", str(target), why)


def test_ingest_out_under_a_file_stops_before_reading(pets: Path, afile: Path) -> None:
    src = pets.parent / "src"
    target = str(afile / "sub" / "out.lmdb")
    done = run_tool("datumio_ingest", str(src), target)
    assert_usage_error(done, "OUT", target, "is a file, not a folder")
    assert sorted(p.name for p in afile.parent.iterdir()) == ["afile"]  # no temporary


def test_ingest_out_with_missing_parents_creates_them(pets: Path, tmp_path: Path) -> None:
    """The documented behaviour stays: OUT's missing parent folders are created."""
    target = tmp_path / "new" / "deeper" / "out.lmdb"
    done = run_tool("datumio_ingest", str(pets.parent / "src"), str(target), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert (target / "manifest.json").is_file()


def test_demo_out_that_is_a_file(afile: Path) -> None:
    done = run_tool("datumio_demo", "--out", str(afile))
    assert_usage_error(done, "--out", str(afile), "is a file, not a folder")
    assert afile.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_read_only_folder_is_refused(pets: Path, tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        target = str(folder / "g.png")
        done = run_tool("datumio_inspect", str(pets), "--grid", target)
        assert_usage_error(done, "--grid", target, "is not writable")
    finally:
        folder.chmod(0o755)
