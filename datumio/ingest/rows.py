"""The rows of a labels file: CSV/TSV (text cells), JSONL or Parquet (typed values).

Rows are streamed (a file of millions of lines is never held as text), each a dict of
column -> value with its line number (a Parquet file's row number, from 1). Parquet needs
``pyarrow``, imported only for a ``.parquet`` file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from datumio.errors import IngestError

Row = dict[str, Any]
_PARQUET_BATCH_ROWS = 65536


def is_text_table(labels_file: str) -> bool:
    """Whether the file's values are text cells (CSV/TSV) rather than typed values."""
    return not labels_file.lower().endswith((".jsonl", ".ndjson", ".parquet", ".pq"))


def read_rows(labels_file: str) -> Iterator[tuple[int, Row]]:
    """(line number, row) pairs of a .csv/.tsv/.jsonl/.parquet labels file, streamed.

    A CSV/TSV file may start with a header row naming its columns (a first row with a cell
    ``label`` is one; a header without ``path`` describes records without an image);
    without one the columns are ``path,label[,group]``.

    Raises:
        IngestError: a JSONL line that is not a JSON object, text that is not UTF-8, or
            Parquet without pyarrow.
    """
    lower = labels_file.lower()
    if lower.endswith((".parquet", ".pq")):
        yield from _parquet_rows(labels_file)
        return
    number = 0
    try:
        for number, row in _text_rows(labels_file, lower):
            yield number, row
    except UnicodeDecodeError as exc:
        where = f" after line {number}" if number else ""
        raise IngestError(
            f"{labels_file} is not UTF-8 text (byte {exc.object[exc.start]:#04x}{where}): save "
            "it as UTF-8"
        ) from None


def _text_rows(labels_file: str, lower: str) -> Iterator[tuple[int, Row]]:
    with open(labels_file, encoding="utf-8-sig", newline="") as fh:
        if lower.endswith((".jsonl", ".ndjson")):
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise IngestError(f"{labels_file}:{number}: not valid JSON ({exc})") from exc
                if not isinstance(obj, dict):
                    raise IngestError(f"{labels_file}:{number}: expected a JSON object per line")
                yield number, obj
            return
        delimiter = "\t" if lower.endswith(".tsv") else ","
        reader = csv.reader(fh, delimiter=delimiter)
        header: list[str] | None = None
        for number, cells in enumerate(reader, start=1):
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                names = [c.strip() for c in cells]
                if "label" in {c.lower() for c in names}:
                    # path/label/group in any case; field names as written
                    standard = ("path", "label", "group")
                    header = [c.lower() if c.lower() in standard else c for c in names]
                    continue
                header = ["path", "label", "group"][: len(cells)]
            yield number, dict(zip(header, (c.strip() for c in cells), strict=False))


def has_path_column(labels_file: str) -> bool:
    """Whether the file's first row has a ``path``: without one, the records are a label and
    fields only (a table, no image). A file without rows counts as having paths."""
    for _, row in read_rows(labels_file):
        return "path" in row
    return True


def _parquet_rows(labels_file: str) -> Iterator[tuple[int, Row]]:
    try:
        import pyarrow.parquet as pq  # optional: only Parquet labels files need it
    except ImportError:
        raise IngestError(
            f"{labels_file}: reading a Parquet labels file needs pyarrow (pip install pyarrow); "
            "or write the labels as JSONL"
        ) from None
    try:
        table = pq.ParquetFile(labels_file)
        number = 0
        for batch in table.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (OSError, ValueError) as exc:
        raise IngestError(f"{labels_file}: not a readable Parquet file ({exc})") from exc
