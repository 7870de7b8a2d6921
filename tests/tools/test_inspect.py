"""datumio-inspect and its library parts on real datasets ingested from drawn images."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from builders import Drawing, Slot, build_dataset
from PIL import Image

import datumio
from datumio.inspect import duplicates as duplicates_mod
from datumio.inspect.duplicates import ClassPair, WithinClass
from datumio.inspect.sampling import ShardsPerBatch, sampling_report
from datumio.inspect.summary import SCHEMA, SUMMARY_KEYS, summarize
from datumio.sampling import Sampler
from datumio.tools import inspect_cmd
from datumio.tools.pictures import class_histogram_size, contact_sheet_size

COUNTS = {"apple": 6, "banana": 3, "cherry": 2}
#: apple/0.png is copied inside apple and into banana; durian's only file is broken.
EXPECTED = {"apple": 7, "banana": 4, "cherry": 2, "durian": 0}
DUPLICATED = {"apple/0.png", "apple/0_copy.png", "banana/from_apple.png"}


def _fruit(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    height, width = 16 + 4 * slot.label, 20 + 2 * (slot.k // 2)  # pairs share a shape
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def draw_tree(root: Path) -> Path:
    """COUNTS noise PNGs, three copies of one, and two files that are no image."""
    Drawing(COUNTS, picture=_fruit, names="{k}").draw(root)
    shutil.copy(root / "apple" / "0.png", root / "apple" / "0_copy.png")
    shutil.copy(root / "apple" / "0.png", root / "banana" / "from_apple.png")
    (root / "banana" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (root / "durian").mkdir()
    (root / "durian" / "notes.jpg").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("inspect")
    return build_dataset(draw_tree(tmp / "images"), tmp / "fruit.lmdb", rejects=2, shard_records=5)


def inspect(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = inspect_cmd.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_counts_equal_the_ingest_input(dataset: Path) -> None:
    s = summarize(datumio.open(dataset))
    assert {c.name: c.count for c in s.classes} == EXPECTED
    assert s.records == sum(EXPECTED.values()) == 13
    assert s.shards.count == 3 and s.backend == "lmdb"
    assert s.imbalance_ratio == 3.5
    assert [e.name for e in s.empty_classes] == ["durian"]
    assert s.rejects.count == 2 and sum(s.rejects.by_reason.values()) == 2
    assert {r.path for r in s.rejects.sample} == {"banana/broken.png", "durian/notes.jpg"}
    assert s.image.stored is not None and s.image.stored.height.min == 16
    assert s.image.channels == 3
    assert s.on_disk.total >= s.on_disk.shards > 0


def test_json_schema_is_stable(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = inspect(capsys, dataset, "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["schema"] == SCHEMA == "datumio.inspect/1"
    assert (
        set(obj)
        == set(SUMMARY_KEYS)
        == {
            "schema",
            "path",
            "format",
            "format_version",
            "backend",
            "encoding",
            "records",
            "num_classes",
            "classes",
            "imbalance_ratio",
            "empty_classes",
            "groups",
            "shards",
            "bytes",
            "image",
            "channel_stats",
            "rejects",
            "duplicates",
            "integrity",
            "sampling",
            "writer",
            "ingest",
            "fields",
            "splits",
        }
    )
    assert obj["sampling"] is None and obj["duplicates"] is not None and obj["splits"] is None
    assert obj["integrity"]["ok"] and not obj["integrity"]["records_read"]
    _, out, _ = inspect(capsys, dataset, "--json", "--no-duplicates", "--sampling", "natural")
    again = json.loads(out)
    assert set(again) == set(SUMMARY_KEYS) and again["duplicates"] is None
    assert again["sampling"]["mode"] == "natural"


@pytest.mark.parametrize("suffix", [".lmdb", ".h5"])
def test_duplicates_within_and_across_classes(tmp_path: Path, suffix: str) -> None:
    out = build_dataset(
        draw_tree(tmp_path / "images"), tmp_path / f"d{suffix}", rejects=2, shard_records=4
    )
    dup = summarize(datumio.open(out)).duplicates
    assert dup is not None and dup.groups == 1 and dup.duplicate_records == 2
    assert dup.within_class == WithinClass(groups=1, redundant_records=1)
    assert dup.across_classes.groups == 1 and dup.across_classes.records == 3
    assert dup.across_classes.class_pairs == (ClassPair(classes=("apple", "banana"), groups=1),)
    (example,) = dup.examples
    assert set(example.sources) == DUPLICATED and example.size == 3
    assert sorted(example.classes) == ["apple", "apple", "banana"]
    assert dup.records_read == 3  # only the records sharing a CRC32 were read


def test_crc_collisions_are_confirmed_by_bytes(dataset: Path, monkeypatch) -> None:
    ds = datumio.open(dataset)
    # Every record "collides": only payload comparison can tell the true duplicates apart.
    monkeypatch.setattr(duplicates_mod, "record_crc32", lambda d: np.zeros(len(d), np.uint32))
    dup = duplicates_mod.find_duplicates(ds)
    assert dup.groups == 1 and set(dup.examples[0].sources) == DUPLICATED
    assert dup.records_read == 12  # all but banana/2.png, the one unique shape


def test_text_summary_reads_well(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = inspect(capsys, dataset)
    assert code == 0 and err == ""
    assert "datumio format v2, lmdb backend, encoding keep" in out
    assert "13 in 3 shards" in out and "imbalance ratio 3.5" in out
    chart = [line for line in out.splitlines() if re.match(r"^  (apple|banana|cherry) ", line)]
    assert [line.split()[0] for line in chart] == ["apple", "banana", "cherry"]
    assert "class 'durian' has no records" in out
    assert "rejected at ingest: 2 files" in out
    assert "duplicates: 1 group of identical records" in out and "apple / banana: 1 group" in out


def test_sampling_report_numbers() -> None:
    labels = np.repeat(np.arange(4), [500, 300, 150, 50])
    names = ["a", "b", "c", "d"]
    data = SimpleNamespace(labels=labels, class_names=names)
    n, num_classes = labels.size, 4
    balanced = sampling_report(data, "balanced", epochs=3, world_size=4)
    draws = [c.draws_per_epoch for c in balanced.by_class]
    assert sum(draws) == n and all(abs(q - n / num_classes) < 1 for q in draws)
    small = balanced.by_class[3]  # 50 records drawn 250 times an epoch: 5 each, exactly
    assert small.repeats_per_epoch == 5.0 and small.repeats_range == (5, 5)
    assert small.max_draws_of_a_record == 15 and small.coverage == 1.0
    big = balanced.by_class[0]  # 500 records, 250 draws an epoch: each at most once
    assert big.unique_per_epoch == 250 and big.repeats_range == (0, 1)
    assert 250 < big.seen_after_epochs <= 500
    assert [r.draws for r in balanced.by_rank] == [3 * n // 4] * 4
    per_class = np.sum([r.by_class for r in balanced.by_rank], axis=0)
    assert per_class.tolist() == [3 * q for q in draws]

    natural = sampling_report(data, "natural", epochs=2, world_size=1)
    for c in natural.by_class:
        assert c.draws_per_epoch == c.records and c.repeats_range == (1, 1)
        assert c.max_draws_of_a_record == 2 and c.coverage == 1.0
    assert natural.fraction_seen_per_epoch == 1.0 and natural.exact

    est = sampling_report(data, "balanced", epochs=3, world_size=4, exact_limit=0)
    assert not est.exact and est.by_class[0].max_draws_of_a_record is None
    expected_seen = 500 * (1 - (1 - 250 / 500) ** 3)
    assert est.by_class[0].seen_after_epochs == pytest.approx(expected_seen, abs=0.1)
    assert est.by_rank[0].by_class[3] == pytest.approx(250 * 3 / 4, abs=0.1)


def test_sampling_report_counts_the_shards_each_batch_reads() -> None:
    """Distinct shards per batch, against a count by hand from the sampler's own ids."""
    labels = np.repeat(np.arange(3), [90, 60, 30])
    offsets = np.array([0, 40, 80, 120, 160, 180])  # 5 shards
    data = SimpleNamespace(labels=labels, class_names=["a", "b", "c"], shard_offsets=offsets)
    report = sampling_report(data, "balanced", batch_size=12, seed=5)
    spb = report.shards_per_batch
    ids = Sampler(data, "balanced", seed=5).epoch_ids(0)
    by_hand = [
        len({int(np.searchsorted(offsets, i, side="right")) - 1 for i in ids[b : b + 12]})
        for b in range(0, len(ids) - 11, 12)
    ]
    assert spb == ShardsPerBatch(
        batch_size=12,
        shards=5,
        mean=round(float(np.mean(by_hand)), 2),
        min=min(by_hand),
        max=max(by_hand),
    )
    assert sampling_report(SimpleNamespace(labels=labels), "balanced").shards_per_batch is None


def test_sampling_cli(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = inspect(
        capsys,
        dataset,
        "--sampling",
        "balanced",
        "--epochs",
        "2",
        "--world-size",
        "2",
        "--no-duplicates",
        "--batch-size",
        "4",
    )
    assert code == 0 and "sampling: balanced, 2 epochs, world size 2" in out
    assert re.search(r"a batch of 4 reads from [\d.]+ of the 3 shards on average", out)
    assert "class(es) have no records and are skipped" in out  # durian
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps({"apple": 1, "2": 3}))  # by name and by id (cherry)
    code, out, _ = inspect(capsys, dataset, "--json", "--sampling", f"weights={weights}")
    sp = json.loads(out)["sampling"]
    assert code == 0 and sp["weights"] == {"0": 1.0, "2": 3.0}
    assert {c["name"]: c["draws_per_epoch"] for c in sp["classes"]} == {
        "apple": 3,
        "banana": 0,
        "cherry": 10,
        "durian": 0,
    }
    code, out, _ = inspect(capsys, dataset, "--json", "--sampling", "power=0.5")
    assert code == 0 and json.loads(out)["sampling"]["power"] == 0.5
    weights.write_text(json.dumps({"kiwi": 1}))
    for bad in (
        ["--sampling", "sometimes"],
        ["--sampling", "power=x"],
        ["--epochs", "2"],
        ["--sampling", f"weights={weights}"],
        ["--sampling", "balanced", "--epochs", "0"],
    ):
        code, out, err = inspect(capsys, dataset, *bad)
        assert code == 2 and out == "" and err.startswith("datumio-inspect: "), bad
    assert (
        "'kiwi' is neither a class name nor a class id"
        in inspect(capsys, dataset, "--sampling", f"weights={weights}")[2]
    )


def test_pictures_open_with_expected_sizes(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid, hist, page = tmp_path / "g.png", tmp_path / "h.png", tmp_path / "r.html"
    code, _, err = inspect(
        capsys,
        dataset,
        "--grid",
        grid,
        "--per-class",
        "3",
        "--histogram",
        hist,
        "--html",
        page,
        "--sampling",
        "balanced",
    )
    assert code == 0 and "wrote" in err
    with Image.open(grid) as img:
        assert img.format == "PNG" and img.size == contact_sheet_size(4, 3)
    with Image.open(hist) as img:
        assert img.format == "PNG" and img.size == class_histogram_size(4, paired=True)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "apple" in text and 'src="http' not in text
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(embedded) == 2
    sizes = {Image.open(io.BytesIO(base64.b64decode(b))).size for b in embedded}
    assert sizes == {contact_sheet_size(4, 3), class_histogram_size(4, paired=True)}


def test_record_and_save_record(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = datumio.open(dataset)
    i = next(k for k in range(len(ds)) if ds.source(k) == "banana/from_apple.png")
    code, out, _ = inspect(capsys, dataset, "--record", i, "--json")
    info = json.loads(out)
    assert code == 0 and info["id"] == i and info["class"] == "banana"
    assert info["source"] == "banana/from_apple.png" and info["payload_format"] == "PNG"
    assert (info["shard"], info["local_id"]) == ds.locate(i) and info["crc32_ok"] is True
    assert info["shape"] == [16, 20, 3] and info["payload_bytes"] == len(ds.read(i))
    code, out, _ = inspect(capsys, dataset, "--record", i)
    assert code == 0 and "banana/from_apple.png" in out and "local id" in out
    png = tmp_path / "r.png"
    code, _, err = inspect(capsys, dataset, "--save-record", i, png)
    assert code == 0 and str(png) in err
    with Image.open(png) as img:
        assert np.array_equal(np.asarray(img), ds.image(i))
    for bad in (
        ["--record", "99"],
        ["--save-record", "-99", png],
        ["--save-record", "x", png],
        ["--record", "1", "--grid", png],
    ):
        code, _, err = inspect(capsys, dataset, *bad)
        assert code == 2 and "datumio-inspect:" in err, bad


def test_not_a_dataset_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "folder").mkdir()
    code, out, err = inspect(capsys, tmp_path / "folder")
    assert code == 1 and out == ""
    assert "not a datumio dataset" in err and err.startswith("datumio-inspect: ")
    code, _, err = inspect(capsys, tmp_path / "missing.lmdb")
    assert code == 1 and "no such directory" in err


def test_module_entry_point_and_help(dataset: Path) -> None:
    cmd = [sys.executable, "-m", "datumio.tools.inspect_cmd"]
    result = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "examples:" in result.stdout
    assert "--sampling" in result.stdout and "--save-record" in result.stdout
    result = subprocess.run([*cmd, str(dataset)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "13 in 3 shards" in result.stdout
