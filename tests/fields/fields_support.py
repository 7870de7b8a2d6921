"""Inputs with record fields, drawn per test: images (``builders.draw_file``), masks and a
labels file."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from builders import draw_file
from PIL import Image

import datumio

#: (width, height) of each drawn image.
SIZES = [(30, 20), (16, 24), (40, 40), (25, 10)]


def draw_mask(src: Path, name: str, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(100 + seed)
    labels = rng.integers(0, 7, (size[1], size[0]), dtype=np.uint8)
    Image.fromarray(labels, "L").save(src / name)
    return labels


def mixed_rows(src: Path) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Images, masks and JSONL rows with a field of every type (some rows lack some)."""
    rows, masks = [], []
    for k, (w, h) in enumerate(SIZES):
        draw_file(src / f"img{k}.png", (h, w), seed=k)
        masks.append(draw_mask(src, f"mask{k}.png", (w, h), k))
        row: dict[str, Any] = {
            "path": f"img{k}.png",
            "label": ["cat", "dog"][k % 2],
            "count": 10**12 + k,
            "score": k / 4,
            "tags": [["night", "indoor"], ["person"], [], ["indoor", "person", "indoor"]][k],
            "ids": [[3, 1], [0], [7], []][k],
            "emb": [1.5 * k, -2.25, 1e6 + k],
            "vec": [k, -k, 300],
            "note": f"note é {k}",
            "blob": base64.b64encode(bytes([k, 0, 255])).decode(),
            "boxes": [[0.5, 1.0, w - 1.0, h - 0.5, k], [0, 0, w, h, 2]],
            "plain_boxes": [[1, 1, 2, 2]] * k,
            "seg": f"mask{k}.png",
            "kps": [[0.5, 0.5, 2], [w - 0.25, h - 0.25, 1]],
        }
        if k == 2:  # a record lacking some fields
            for key in ("score", "note", "boxes", "seg", "kps"):
                row[key] = None
        rows.append(row)
    return rows, masks


MIXED_DECLARED = {"vec": "array:int16:3", "ids": "multilabel", "seg": "mask"}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest(src: Path, out: Path, labels: Path, **options: Any) -> datumio.IngestReport:
    """The ingest under test of ``src`` with the labels file ``labels`` (one worker unless
    told); its report. A dataset a test only reads comes from ``builders.build_dataset``."""
    opts = datumio.IngestOptions(labels_file=str(labels), **{"workers": 1, **options})
    return datumio.ingest(src, out, opts)
