"""The command-line tools as a user runs them: real subprocesses, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders import draw_classes
from console import console_argv

import datumio


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A console script (``datumio ...``, ``datumio-ingest ...``) of the tree under test."""
    argv = list(args) if args[0] == sys.executable else console_argv(args)
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = draw_classes(tmp_path / "images", {"a": 4, "b": 2}, size=(24, 32), names="{k}")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return root


def test_help_has_examples() -> None:
    for cmd in (["datumio-ingest", "--help"], ["datumio", "ingest", "--help"]):
        result = run(*cmd)
        assert result.returncode == 0
        assert "examples:" in result.stdout and "--shard-size" in result.stdout
    top = run("datumio", "--help")
    assert top.returncode == 0 and "demo" in top.stdout and "ingest" in top.stdout
    assert run("datumio", "frobnicate").returncode == 2


def test_ingest_json_summary(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    result = run("datumio-ingest", str(src), str(out), "--json", "--shard-size", "3")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["records"] == 6 and summary["backend"] == "hdf5" and summary["shards"] == 2
    assert summary["classes"] == {"a": 4, "b": 2}
    assert summary["rejected"] == 1
    assert summary["rejects_sample"][0]["path"] == "b/broken.jpg"
    assert len(datumio.open(out)) == 6
    lines = (out / "rejects.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["reason"] in ("truncated", "corrupt header", "corrupt data")


def test_size_flag_is_width_x_height(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "wide.lmdb"
    result = run("datumio-ingest", str(src), str(out), "--size", "20x10", "--encode", "raw")
    assert result.returncode == 0, result.stderr
    with datumio.open(out) as ds:
        assert {ds.shape(i) for i in range(len(ds))} == {(10, 20, 3)}  # (height, width, C)
        assert ds.manifest.ingest is not None
        assert (ds.manifest.ingest.options or {})["size"] == [20, 10]  # stored as (W, H)


def test_text_summary_and_no_progress_bar_when_piped(src: Path, tmp_path: Path) -> None:
    result = run("datumio", "ingest", str(src), str(tmp_path / "o.lmdb"), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "6 records, 2 classes" in result.stdout and "rejected 1 file" in result.stdout
    assert "img/s" not in result.stderr  # tqdm stays off when stderr is not a terminal


@pytest.mark.parametrize("flags", [["--strict"], ["--on-error", "raise"], ["--max-errors", "0"]])
def test_bad_input_policies_exit_3_and_write_nothing(src: Path, tmp_path: Path, flags) -> None:
    out = tmp_path / "o.lmdb"
    result = run("datumio-ingest", str(src), str(out), *flags)
    assert result.returncode == 3
    assert "b/broken.jpg" in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["images"]


def test_usage_errors_exit_2(src: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.lmdb")
    for bad in (["--size", "big"], ["--shard-size", "12 parsecs"], ["--quality", "0"]):
        result = run("datumio-ingest", str(src), out, *bad)
        assert result.returncode == 2, bad
        assert "datumio-ingest:" in result.stderr
    assert (
        run("datumio-ingest", str(src), out, "--max-side", "9", "--encode", "keep").returncode == 2
    )


def test_existing_output_exit_1(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.lmdb"
    assert run("datumio-ingest", str(src), str(out)).returncode == 0
    result = run("datumio-ingest", str(src), str(out))
    assert result.returncode == 1 and "--overwrite" in result.stderr


def test_demo_runs_without_arguments(tmp_path: Path) -> None:
    result = run("datumio", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "632 records, 8 classes" in result.stdout
    ds = datumio.open(tmp_path / "datumio-demo" / "demo.lmdb")
    assert ds.counts.max() / ds.counts.min() == 24
    again = run(sys.executable, "-m", "datumio.tools.cli", "demo", "--json", cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["records"] == 632


def test_demo_never_deletes_images_it_did_not_draw(tmp_path: Path) -> None:
    mine = tmp_path / "images" / "holiday"
    mine.mkdir(parents=True)
    (mine / "beach.jpg").write_bytes(b"not the demo's")
    result = run(sys.executable, "-m", "datumio", "demo", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "was not drawn by datumio demo" in result.stderr
    assert (mine / "beach.jpg").read_bytes() == b"not the demo's"
    assert not (tmp_path / "demo.lmdb").exists()


@pytest.mark.parametrize(
    "module",
    [
        "datumio",
        "datumio.tools.cli",
        "datumio.tools.ingest_cmd",
        "datumio.tools.inspect_cmd",
        "datumio.tools.preview_cmd",
        "datumio.tools.split_cmd",
        "datumio.tools.verify_cmd",
    ],
)
def test_every_module_with_a_main_runs_under_python_m(module: str) -> None:
    result = run(sys.executable, "-m", module, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: "), result.stdout[:200]
