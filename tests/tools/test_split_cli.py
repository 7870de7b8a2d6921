"""``datumio split`` on the command line, and the stored splits in ``datumio inspect`` and
``datumio verify``: per-split counts in text, JSON and HTML, a group that crosses splits
(made by hand) reported as a problem, a damaged split file found by verify."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from builders import Drawing, build_dataset
from tool_helpers import run_tool

import datumio
from datumio.shards.manifest import read_manifest, write_manifest
from datumio.shards.splits import save_splits
from datumio.tools import inspect_cmd, split_cmd, verify_cmd

COUNTS = {"ant": 10, "bee": 6, "cow": 4}
DRAWING = Drawing(COUNTS, size=(12, 12))


@pytest.fixture
def grouped(tmp_path: Path) -> Path:
    """20 records of 3 classes, with groups ``site0`` .. ``site4`` (a labels file's column)."""
    src = DRAWING.draw(tmp_path / "src")
    labels = DRAWING.write_labels(tmp_path / "labels.csv", groups=5)
    return build_dataset(src, tmp_path / "data.lmdb", labels_file=str(labels))


def _run(
    main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_gives_records_per_split_and_class_and_the_largest_deviation(
    grouped: Path,
) -> None:
    done = run_tool("datumio", "split", str(grouped), "--val", "0.2", "--test", "0.2", "--json")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    manifest = read_manifest(str(grouped))
    assert manifest.splits is not None
    assert obj["schema"] == "datumio.split/1" and obj["dir"] == manifest.splits.dir
    assert obj["how"] == {
        "method": "stratified by label, whole groups",
        "fractions": {"val": 0.2, "test": 0.2},
        "seed": 0,
        "by_group": True,
    }
    assert [s["name"] for s in obj["splits"]] == ["train", "val", "test"]
    for entry in obj["splits"]:
        assert entry["records"] == manifest.splits.counts[entry["name"]]
        assert list(entry["classes"].values()) == list(manifest.splits.class_counts[entry["name"]])
        assert list(entry["classes"]) == list(COUNTS)
    per_class = {s["name"]: s["classes"] for s in obj["splits"]}
    shares = {"train": 0.6, "val": 0.2, "test": 0.2}
    misses = [
        (abs(per_class[s][c] - shares[s] * n), s, c) for s in shares for c, n in COUNTS.items()
    ]
    worst = obj["largest_deviation"]
    assert worst["records"] == pytest.approx(max(misses)[0])
    assert worst["target"] == pytest.approx(shares[worst["split"]] * COUNTS[worst["class"]])
    assert per_class[worst["split"]][worst["class"]] == worst["count"]


def test_text_output_and_the_same_splits_from_the_alias(
    grouped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(split_cmd.main, capsys, str(grouped), "--val", "0.25", "--no-by-group")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{grouped}: 2 splits in index/splits-")
    assert "(stratified by label, seed 0)" in lines[0]
    assert lines[1].split()[:3] == ["train", "14", "records"]  # 10, 6, 4 less 3, 2, 1
    assert lines[2].split()[:3] == ["val", "6", "records"]  # 2.5, 1.5, 1 rounded
    assert lines[3].startswith("largest deviation from a target: 0.5 records (")
    first = read_manifest(str(grouped)).splits
    alias = run_tool("datumio_split", str(grouped), "--val", "0.25", "--no-by-group", "--quiet")
    assert alias.returncode == 0 and alias.stdout == "", alias.stderr
    again = read_manifest(str(grouped)).splits
    assert first is not None and again is not None and again.dir != first.dir
    assert again.class_counts == first.class_counts


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--val", "1.5"], 2, "val=1.5; give a fraction of each class from 0 to below 1"),
        (["--val", "0.6", "--test", "0.4"], 2, "add up to 1 (val, test)"),
        (["--seed", "-3"], 2, "seed=-3; give an int >= 0"),
    ],
)
def test_bad_values_exit_2_naming_them(
    grouped: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, out, err = _run(split_cmd.main, capsys, str(grouped), *argv)
    assert got == code and out == "", err
    assert message in err and "Traceback" not in err
    assert read_manifest(str(grouped)).splits is None


def test_what_cannot_be_split_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flat = build_dataset(DRAWING.draw(tmp_path / "src"), tmp_path / "flat.lmdb")
    code, _, err = _run(split_cmd.main, capsys, str(flat), "--by-group")
    assert code == 2 and "has no groups" in err and "--no-by-group" in err
    code, _, err = _run(split_cmd.main, capsys, str(tmp_path / "nothing.lmdb"))
    assert code == 1 and "no such directory" in err
    code, _, err = _run(split_cmd.main, capsys, "s3://bucket/data.lmdb?token=secret")
    assert code == 1 and "is a URL" in err and "secret" not in err
    with pytest.raises(SystemExit) as usage:
        split_cmd.main([str(flat), "--wait", "soon"])
    assert usage.value.code == 2
    assert "'soon' is not seconds or 'forever'" in capsys.readouterr().err


def test_inspect_counts_each_split_in_text_json_and_html(
    grouped: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    splits = datumio.split(grouped, val=0.2, test=0.2)
    code, out, err = _run(inspect_cmd.main, capsys, str(grouped), "--no-duplicates")
    assert code == 0, err
    lines = out.splitlines()
    at = next(k for k, line in enumerate(lines) if line.startswith("splits: "))
    head = ", ".join(f"{n} {splits.counts[n]} ({splits.counts[n] / 20:.1%})" for n in splits.names)
    assert lines[at] == f"splits: {head}; stratified by label, whole groups, seed 0, {splits.dir}"
    assert lines[at + 1].split() == ["class", "train", "val", "test"]
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in lines[at + 2 : at + 5]}
    assert rows == {
        name: [splits.class_counts[s][k] for s in splits.names] for k, name in enumerate(COUNTS)
    }
    assert lines[at + 5] == "  groups: none has records in more than one split"
    code, out, _ = _run(inspect_cmd.main, capsys, str(grouped), "--json", "--no-duplicates")
    obj = json.loads(out)["splits"]
    assert code == 0 and list(obj) == [
        "dir",
        "how",
        "by_split",
        "unassigned",
        "groups_checked",
        "crossing_groups",
        "crossing_examples",
        "problems",
    ]
    assert [(s["name"], s["records"], s["classes"]) for s in obj["by_split"]] == [
        (n, splits.counts[n], list(splits.class_counts[n])) for n in splits.names
    ]
    assert obj["unassigned"] == 0 and obj["crossing_groups"] == 0 and obj["problems"] == []
    page = tmp_path / "report.html"
    code, _, err = _run(inspect_cmd.main, capsys, str(grouped), "--html", str(page), "--quiet")
    html = page.read_text(encoding="utf-8")
    assert code == 0 and "<h2>Splits</h2>" in html, err
    assert f'<td>all classes</td><td class="n">{splits.counts["train"]} (' in html


def test_a_group_in_two_splits_is_a_problem_for_inspect(
    grouped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-made split: the first half of the records (by id) to train, the rest to val,
    whatever their groups."""
    with datumio.open(grouped) as ds:
        labels, groups = np.asarray(ds.labels), np.asarray(ds.groups)
        manifest, n = ds.manifest, len(ds)
    split_of = (np.arange(n) >= n // 2).astype(np.int8)
    made = save_splits(
        str(grouped), split_of, ["train", "val"], labels, 3, groups, {"given": "by hand"}
    )
    write_manifest(str(grouped), dataclasses.replace(manifest, splits=made))
    crossing = sorted(set(groups[: n // 2].tolist()) & set(groups[n // 2 :].tolist()))
    assert crossing  # the drawing puts every site in both halves
    code, out, err = _run(inspect_cmd.main, capsys, str(grouped), "--json", "--no-duplicates")
    obj = json.loads(out)["splits"]
    assert code == 1 and "1 problem in the stored splits" in err, err
    assert obj["crossing_groups"] == len(crossing)
    example = obj["crossing_examples"][0]
    assert example["name"] == f"site{crossing[0]}" and example["splits"] == ["train", "val"]
    assert sum(example["records"]) == int(np.count_nonzero(groups == crossing[0]))
    assert obj["problems"][-1].startswith(
        f"groups with records in more than one split: {len(crossing)} of 5 ('site"
    )
    code, out, _ = _run(inspect_cmd.main, capsys, str(grouped), "--no-duplicates")
    assert code == 1 and "  problem: " in out
    code, _, err = _run(verify_cmd.main, capsys, str(grouped), "--quiet")
    assert code == 0, err  # the files are sound: only inspect judges the groups


def test_verify_finds_a_damaged_split_file(
    grouped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    splits = datumio.split(grouped, val=0.3)
    code, out, err = _run(verify_cmd.main, capsys, str(grouped), "--quiet")
    assert code == 0 and "splits: 2 (train, val), checked against the index" in out, err
    labels = grouped / splits.dir / "val" / "labels.npy"
    wrong = np.load(labels)
    wrong[0] = (wrong[0] + 1) % 3
    np.save(labels, wrong)
    code, out, _ = _run(verify_cmd.main, capsys, str(grouped), "--json", "--quiet")
    problems = json.loads(out)["problems"]
    assert code == 1 and any(
        str(Path(splits.dir) / "val" / "labels.npy") in p["what"] for p in problems
    ), problems
