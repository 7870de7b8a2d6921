"""docs/format.md's field snippets read a real dataset's fields with plain lmdb and h5py."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from fields_support import MIXED_DECLARED, ingest, mixed_rows, write_jsonl

import datumio
from datumio.fields import decode

_DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"


def _functions() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", _DOC.read_text("utf-8"), flags=re.S)
    namespace: dict[str, Any] = {}
    for block in blocks:
        tree = ast.parse(block)
        kept = (ast.Import, ast.ImportFrom, ast.FunctionDef)
        tree.body = [node for node in tree.body if isinstance(node, kept)]
        exec(compile(tree, str(_DOC), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("backend", ["lmdb", "h5"])
def test_format_md_reads_fields(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    rows, _ = mixed_rows(src)
    out = tmp_path / f"out.{backend}"
    ingest(src, out, write_jsonl(tmp_path / "l.jsonl", rows), fields=MIXED_DECLARED)
    snippets = _functions()
    read = snippets["read_fields_lmdb" if backend == "lmdb" else "read_fields_h5"]
    plain = [read(str(out), i) for i in range(len(rows))]  # before datumio opens the shards
    with datumio.open(out) as ds:
        for i, stored in enumerate(plain):
            assert list(stored) == list(ds.fields)
            for name, data in stored.items():
                spec = ds.fields[name]
                mine = ds.field(i, name)
                if data is None:
                    assert mine is None
                elif spec.type == "boxes":
                    boxes, classes = snippets["box_array"](data, spec.length)
                    assert boxes.tolist() == mine.boxes.tolist()
                    assert (classes is None) == (mine.classes is None)
                else:
                    assert repr(decode(spec, data)) == repr(mine)
