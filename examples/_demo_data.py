"""The examples' data: the long-tailed demo shapes, split into train and validation datasets.

Every class keeps about a quarter of its images (every fourth file) for validation, so even
the rarest class (10 images) has 3 validation images. Both splits are ingested from labels
files with the same fixed class list, so class ids agree between them.
"""

from __future__ import annotations

import os

import datumio
from datumio.tools.demo import DEMO_CLASSES, write_demo_images


def build_splits(workdir: str, seed: int = 0) -> tuple[str, str]:
    """Draw the demo images under ``workdir`` and ingest (train.lmdb, val.lmdb)."""
    images = os.path.join(workdir, "images")
    write_demo_images(images, seed)
    rows: dict[str, list[str]] = {"train": [], "val": []}
    for name in DEMO_CLASSES:
        for i, file in enumerate(sorted(os.listdir(os.path.join(images, name)))):
            rows["val" if i % 4 == 1 else "train"].append(f"{name}/{file},{name}")
    out = []
    for split, lines in rows.items():
        labels = os.path.join(workdir, f"{split}.csv")
        with open(labels, "w", encoding="utf-8") as f:
            f.write("path,label\n" + "\n".join(lines) + "\n")
        dataset = os.path.join(workdir, f"{split}.lmdb")
        options = datumio.IngestOptions(
            labels_file=labels, class_names=DEMO_CLASSES, overwrite=True, workers=2
        )
        datumio.ingest(images, dataset, options)
        out.append(dataset)
    return out[0], out[1]
