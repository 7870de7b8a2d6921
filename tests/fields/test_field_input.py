"""CSV/TSV fields need declarations, JSONL types are inferred; what each refusal says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import draw_file
from fields_support import ingest, write_jsonl

import datumio
from datumio.errors import IngestError, OptionError
from datumio.tools.ingest_cmd import main


def _images(src: Path, n: int = 3) -> None:
    for k in range(n):
        draw_file(src / f"i{k}.png", (10, 20), seed=k)


def test_csv_fields_with_declarations_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    _images(src)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,label,age,weight,tags,emb,boxes,caption\n"
        'i0.png,a,3,1.5,x;y,1;2;3;4,"[[1, 1, 5, 5]]",hello\n'
        "i1.png,b,,2,y,0 0 0 0,[],\n"
        'i2.png,a,-7,-0.5,,4;3;2;1,"[[0, 0, 20, 10], [2, 2, 3, 3]]",world\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.h5"
    argv = [str(src), str(out), "--labels", str(labels), "--quiet", "--workers", "1"]
    for decl in ("age:int", "weight:float", "tags:multilabel", "emb:array:float32:4"):
        argv += ["--field", decl]
    argv += ["--field", "boxes:boxes", "--field", "caption:text"]
    assert main(argv) == 0, capsys.readouterr().err
    with datumio.open(out) as ds:
        assert list(ds.fields) == ["age", "weight", "tags", "emb", "boxes", "caption"]
        assert [ds.field(i, "age") for i in range(3)] == [3, None, -7]
        assert ds.field_index("age")[1] == datumio.shards.format.INT_ABSENT
        assert [ds.field(i, "weight") for i in range(3)] == [1.5, 2.0, -0.5]
        assert ds.fields["tags"].vocabulary == ("x", "y")
        assert [ds.field(i, "tags").tolist() for i in range(2)] == [[0, 1], [1]]
        assert ds.field(2, "tags") is None
        assert ds.field(2, "emb").tolist() == [4, 3, 2, 1]
        assert ds.field(1, "boxes").boxes.shape == (0, 4)
        assert ds.field(2, "boxes").boxes.tolist() == [[0, 0, 20, 10], [2, 2, 3, 3]]
        assert ds.field(1, "caption") is None and ds.field(2, "caption") == "world"


def test_an_undeclared_csv_column_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _images(src)
    labels = tmp_path / "labels.tsv"
    labels.write_text("path\tlabel\tage\ni0.png\ta\t3\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"column 'age' has no declared type.*--field age:"):
        ingest(src, tmp_path / "out.lmdb", labels)


def test_jsonl_types_are_inferred(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _images(src)
    rows = [
        {"path": "i0.png", "label": 0, "n": 1, "x": 2, "t": ["a"], "v": [1, 2], "b": [], "k": []},
        {"path": "i1.png", "label": 1, "n": 2, "x": 2.5, "t": [], "v": [0.5], "b": [[1, 1, 4, 4]]},
        {"path": "i2.png", "label": 0, "k": [[1, 2, 1]], "s": "text"},
    ]
    ingest(src, tmp_path / "out.lmdb", write_jsonl(tmp_path / "l.jsonl", rows))
    with datumio.open(tmp_path / "out.lmdb") as ds:
        types = {name: (spec.type, spec.dtype) for name, spec in ds.fields.items()}
        assert types == {
            "n": ("int", "<i8"),
            "x": ("float", "<f8"),  # ints and floats in one column: float
            "t": ("multilabel", "<i4"),
            "v": ("array", "<f4"),
            "b": ("boxes", "<f4"),
            "k": ("keypoints", "<f4"),
            "s": ("text", "utf-8"),
        }
        assert ds.field(0, "x") == 2.0 and ds.field(2, "n") is None
        assert np.array_equal(ds.field(0, "b").boxes, np.zeros((0, 4), np.float32))
        assert ds.field(1, "v").tolist() == [0.5]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1, "one"], r"column 'c' holds int values \(line 1\) and text values \(line 2\)"),
        ([{"a": 1}, None], r"column 'c' holds .* which is no field type"),
        ([None, []], r"column 'c' has no value to infer a type from"),
    ],
)
def test_columns_that_fit_no_type_are_refused(
    tmp_path: Path, values: list[object], message: str
) -> None:
    src = tmp_path / "src"
    _images(src, 2)
    rows = [{"path": f"i{k}.png", "label": 0, "c": v} for k, v in enumerate(values)]
    with pytest.raises(IngestError, match=message):
        ingest(src, tmp_path / "out.lmdb", write_jsonl(tmp_path / "l.jsonl", rows))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"label": "int"}, "none of path, label, group, image"),
        ({"x": "vector"}, "type 'vector' is unknown"),
        ({"x": "array:float128"}, "array dtype 'float128' is unknown"),
        ({"x": "array:int8:0"}, "not a positive count"),
        ({"x": "int:4"}, "takes no ':' options"),
    ],
)
def test_bad_declarations_are_option_errors(fields: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        datumio.IngestOptions(labels_file="l.csv", fields=fields)


def test_fields_need_a_labels_file(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="give labels_file"):
        datumio.IngestOptions(fields={"x": "int"}, importer="folders")
    src = tmp_path / "src"  # class folders, told from SRC: no columns for fields
    _images(src / "a", 1)
    with pytest.raises(OptionError, match="give labels_file"):
        datumio.ingest(src, tmp_path / "out.lmdb", fields={"x": "int"})
    assert not (tmp_path / "out.lmdb").exists()


def test_parquet_labels(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "src"
    _images(src, 2)
    table = pa.table(
        {
            "path": ["i0.png", "i1.png"],
            "label": ["a", "b"],
            "n": [1, 2],
            "raw": [b"\x00\x01", b""],
        }
    )
    pq.write_table(table, tmp_path / "l.parquet")
    ingest(src, tmp_path / "out.lmdb", tmp_path / "l.parquet")
    with datumio.open(tmp_path / "out.lmdb") as ds:
        assert ds.field(1, "n") == 2 and ds.field(0, "raw") == b"\x00\x01"


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyarrow is installed")
    src = tmp_path / "src"
    _images(src, 1)
    (tmp_path / "l.parquet").write_bytes(b"PAR1")
    with pytest.raises(IngestError, match=r"needs pyarrow \(pip install pyarrow\)"):
        ingest(src, tmp_path / "out.lmdb", tmp_path / "l.parquet")
