"""Records without an image: a labels file with no path column is a table of labels and
fields, ingested (LMDB and HDF5), read, verified and loaded through real workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fields_support import ingest, write_jsonl

import datumio
from datumio.errors import IngestError, NoImageError, OptionError
from datumio.shards import format as fmt
from datumio.shards.verify import verify

pytestmark = pytest.mark.timeout(180)

N = 24
TAGS = ["red", "green", "blue"]


def table_rows() -> list[dict[str, Any]]:
    """Rows of a label, an int, a float, an array (any length) and tags; some lack some."""
    rows: list[dict[str, Any]] = []
    for k in range(N):
        row: dict[str, Any] = {
            "label": ["lo", "mid", "hi"][k % 3],
            "n": 10**12 + k,
            "y": k / 8 - 1,
            "emb": [k * 0.5, -k, 3.25][: 1 + k % 3],
            "tags": [TAGS[k % 3], TAGS[(k + 1) % 3]] if k % 4 else [],
        }
        if k % 5 == 4:
            row["y"] = None  # a record without this field
        rows.append(row)
    return rows


def expected(row: dict[str, Any]) -> dict[str, Any]:
    """What ``ds.record(i)`` gives for ``row`` (tags numbered by name: blue 0, green 1, red 2)."""
    vocab = sorted(TAGS)
    tags = sorted({vocab.index(t) for t in row["tags"]})
    return {
        "label": ["hi", "lo", "mid"].index(row["label"]),
        "n": row["n"],
        "y": row["y"],
        "emb": np.asarray(row["emb"], np.float32),
        "tags": np.asarray(tags, np.int32),  # [] is a value: no tag
    }


def same(got: dict[str, Any], want: dict[str, Any]) -> bool:
    if got.keys() != want.keys():
        return False
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            if not (np.array_equal(got[key], value) and got[key].dtype == value.dtype):
                return False
        elif got[key] != value or type(got[key]) is not type(value):
            return False
    return True


@pytest.fixture(scope="module", params=["lmdb", "h5"])
def table(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("table")
    rows = table_rows()
    labels = write_jsonl(root / "table.jsonl", rows)
    (root / "rows.json").write_text(json.dumps(rows))
    out = root / f"table.{request.param}"  # inside SRC: a table reads nothing there
    report = ingest(root, out, labels, shard_records=7)
    assert report.num_records == N
    return out


def rows_of(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((out.parent / "rows.json").read_text())
    return rows


def test_manifest_says_no_images(table: Path) -> None:
    ds = datumio.open(table)
    m = ds.manifest
    assert not ds.has_images and not m.has_images
    assert (m.encoding, m.channels, m.format_version) == ("none", 0, fmt.FORMAT_VERSION)
    assert m.ingest is not None and m.ingest.input == "table"
    assert m.stats is not None and m.stats.mean is None and m.stats.std is None
    assert all(s.payload_bytes == 0 for s in m.shards) and len(m.shards) == 4
    assert np.array_equal(ds.shapes, np.zeros((N, 3)))
    assert [ds.source(i) for i in (0, N - 1)] == ["line 1", f"line {N}"]
    assert [f.type for f in ds.fields.values()] == ["int", "float", "array", "multilabel"]


def test_records_round_trip_exactly(table: Path) -> None:
    ds = datumio.open(table)
    for i, row in enumerate(rows_of(table)):
        assert same(ds.record(i), expected(row)), i
        assert ds.field(i, "n") == row["n"]
    assert ds.read(0) == b""


def test_image_is_refused(table: Path) -> None:
    ds = datumio.open(table)
    with pytest.raises(NoImageError, match=r"has no images.*ds\.record\(i\)"):
        ds.image(0)
    with pytest.raises(TypeError, match=r"ds\.field"):
        ds[0]


@pytest.mark.parametrize("decode", [False, True])
def test_verify_is_ok(table: Path, decode: bool) -> None:
    report = verify(table, decode=decode)
    assert report.ok, report.problems
    assert report.records_checked == N


def test_loader_batches_hold_the_stored_values(table: Path) -> None:
    ds = datumio.open(table)
    want = [expected(row) for row in rows_of(table)]
    names = ("n", "y", "emb", "tags")
    with datumio.Loader(
        ds, 5, workers=2, fields=names, extras=("ids",), sampling="natural", drop_last=False
    ) as loader:
        assert loader.batch_names == (
            "labels", "n", "y", "emb", "emb_count", "tags", "ids",
        )  # fmt: skip
        seen = []
        for labels, n, y, emb, emb_count, tags, ids in loader:
            for k, i in enumerate(ids.tolist()):
                w = want[i]
                assert labels[k] == w["label"] and n[k] == w["n"]
                assert np.isnan(y[k]) if w["y"] is None else y[k] == w["y"]
                count = len(w["emb"])
                assert emb_count[k] == count and np.array_equal(emb[k, :count], w["emb"])
                hot = np.zeros(len(TAGS), np.uint8)
                hot[w["tags"]] = 1
                assert np.array_equal(tags[k], hot)
            seen += ids.tolist()
        assert sorted(seen) == list(range(N))


def test_loader_balances_and_refuses_a_transform(table: Path) -> None:
    with datumio.Loader(table, 6, workers=1, extras=("ids",), balance_by="n") as loader:
        assert loader.batch_names == ("labels", "ids")
        drawn = [(labels.copy(), ids.copy()) for labels, ids in loader]
        labels = np.concatenate([b[0] for b in drawn])
        ids = np.concatenate([b[1] for b in drawn])
        assert np.array_equal(labels, loader.dataset.labels[ids])
        assert len(ids) == N and np.bincount(ids).max() == 1  # one per distinct "n"
    with pytest.raises(OptionError, match="no images"):
        datumio.Loader(table, 4, transform=datumio.Transform(size=(8, 8)))


def test_adapters_follow_batch_names(table: Path) -> None:
    from datumio.adapters.tf import output_shapes

    with datumio.Loader(table, 4, workers=1, fields=("n", "emb")) as loader:
        shapes = output_shapes(loader)
        assert [s for s, _ in shapes] == [(4,), (4,), (4, 3), (4,)]
        torch_adapter = pytest.importorskip("datumio.adapters.torch")
        batch = next(iter(torch_adapter.TorchIterable(loader, as_dict=True)))
        assert list(batch) == ["labels", "n", "emb", "emb_count"]


def test_csv_with_a_header_and_no_path(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("label,x,v\n1,3,1.5;2\n0,4,5;6\n1,,7;8\n2,x,0;0\n")
    out = tmp_path / "t.lmdb"
    fields = {"x": "int", "v": "array:float32:2"}
    report = ingest(tmp_path, out, tmp_path / "t.csv", fields=fields)
    assert report.num_records == 3
    assert [(r.path, r.line) for r in report.rejects] == [("line 5", 5)]
    ds = datumio.open(out)
    got = [ds.record(i) for i in range(3)]
    assert [(r["label"], r["x"]) for r in got] == [(1, 3), (0, 4), (1, None)]
    assert np.array_equal(got[0]["v"], np.asarray([1.5, 2], np.float32))
    assert ds.class_names == ["0", "1", "2"] and verify(out, decode=True).ok


def test_geometric_fields_and_image_options_are_refused(tmp_path: Path) -> None:
    rows = [{"label": "a", "box": [[0, 0, 4, 4]]}]
    labels = write_jsonl(tmp_path / "t.jsonl", rows)
    with pytest.raises(IngestError, match=r"'box' is a boxes field.*no path column"):
        ingest(tmp_path, tmp_path / "a.lmdb", labels)
    plain = write_jsonl(tmp_path / "p.jsonl", [{"label": "a", "v": 1}])
    with pytest.raises(IngestError, match=r"no image.*short_side"):
        ingest(tmp_path, tmp_path / "b.lmdb", plain, short_side=8)
    mixed = write_jsonl(tmp_path / "m.jsonl", [{"label": "a"}, {"label": "b", "path": "x.png"}])
    with pytest.raises(IngestError, match=r"m\.jsonl:2: this row has a path"):
        ingest(tmp_path, tmp_path / "c.lmdb", mixed)
    assert not any(p.name.endswith(".lmdb") for p in tmp_path.iterdir())


def test_inspect_says_there_are_no_images(table: Path, tmp_path: Path) -> None:
    import subprocess

    from console import console_argv

    done = subprocess.run(
        console_argv(["datumio", "inspect", str(table)]), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "images    none" in done.stdout and "duplicates: not checked (no images)" in done.stdout
    assert "pixels" not in done.stdout
    grid = subprocess.run(
        console_argv(["datumio", "inspect", str(table), "--grid", str(tmp_path / "g.png")]),
        capture_output=True,
        text=True,
    )
    assert grid.returncode == 2 and "has no images" in grid.stderr
    assert not (tmp_path / "g.png").exists()
