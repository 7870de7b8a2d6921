"""Train tiny PyTorch nets on record fields: a box regressor and a multi-label classifier.

    python examples/train_fields_torch.py [--epochs 10] [--workdir DIR]

Both tasks draw their pictures under ``--workdir`` and ingest them from a labels file whose
extra columns become fields (``docs/fields.md``); batches arrive as dicts through
``TorchIterable(loader, as_dict=True)``.

* Boxes: 96x96 pictures (stored at 48x48) with a large rectangle and sometimes a small one,
  in a ``boxes`` field (source pixels, colour as class). The net regresses the first box and
  its colour while training rotates, zooms and flips the images: the loader moves the boxes
  with them. Prints the held-out mean IoU of the untrained and the trained net.
* Tags: pictures holding some of five shapes, a few much rarer than others, in a
  ``multilabel`` field; ``balance_by="tags"`` (a picture counts as its rarest tag), binary
  cross-entropy. Prints per-tag F1 and average precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

import datumio
from datumio.adapters.torch import TorchIterable

SIZE = 48
BATCH = 32
COLOURS = [(40, 80, 255), (40, 220, 60), (255, 50, 40)]  # box classes 0, 1, 2
#: Shape tags: how often each is in a picture, and how it is drawn in a box.
TAGS: dict[str, tuple[float, Callable]] = {
    "square": (0.6, lambda d, b, c: d.rectangle(b, fill=c)),
    "disc": (0.45, lambda d, b, c: d.ellipse(b, fill=c)),
    "triangle": (0.3, lambda d, b, c: d.polygon([b[0], b[3], b[2], b[3], b[0] + 6, b[1]], c)),
    "cross": (0.12, lambda d, b, c: [d.line(xy, c, 3) for xy in (b, [b[0], b[3], b[2], b[1]])]),
    "ring": (0.06, lambda d, b, c: d.ellipse(b, outline=c, width=3)),
}


def make_split(workdir: str, name: str, count: int, seed: int, side: int, scene: Callable) -> str:
    """Draw ``count`` pictures with ``scene(draw, rng) -> fields`` and ingest them."""
    rng, rows = np.random.default_rng(seed), []
    for k in range(count):
        image = Image.fromarray(rng.integers(0, 60, (side, side, 3), dtype=np.uint8))
        fields = scene(ImageDraw.Draw(image), rng)
        image.save(os.path.join(workdir, "images", f"{name}{k}.png"))
        rows.append({"path": f"{name}{k}.png", "label": "scene", **fields})
    labels = os.path.join(workdir, f"{name}.jsonl")
    with open(labels, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    out = os.path.join(workdir, f"{name}.lmdb")
    options = datumio.IngestOptions(
        labels_file=labels, size=(SIZE, SIZE), overwrite=True, workers=2,
        fields={"tags": "multilabel"} if "tags" in rows[0] else {},
    )  # fmt: skip
    datumio.ingest(os.path.join(workdir, "images"), out, options)
    return out


def rectangles(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> dict:
    """A large rectangle, sometimes a small one; boxes in source (96x96) pixels."""
    boxes = []
    for sides in ((28, 60), (10, 18))[: 1 + (rng.random() < 0.5)]:
        w, h = (int(v) for v in rng.integers(*sides, size=2))
        x0, y0, colour = int(rng.integers(96 - w)), int(rng.integers(96 - h)), rng.integers(3)
        draw.rectangle([x0, y0, x0 + w - 1, y0 + h - 1], fill=COLOURS[colour])
        boxes.append([x0, y0, x0 + w, y0 + h, int(colour)])
    return {"boxes": boxes}


def shapes(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> dict:
    tags = [tag for tag, (rate, _) in TAGS.items() if rng.random() < rate] or ["square"]
    for tag in tags:
        x, y = (int(v) for v in rng.integers(2, SIZE - 16, size=2))
        TAGS[tag][1](draw, [x, y, x + 13, y + 13], tuple(int(c) for c in rng.integers(120, 256, 3)))
    return {"tags": tags}


def make_net(outputs: int) -> nn.Module:
    """Strided convolutions down to 6x6, then linear layers (so where things are counts)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 6 * 6, 64), nn.ReLU(), nn.Linear(64, outputs),
    )  # fmt: skip


def train(net: nn.Module, loader: datumio.Loader, epochs: int, loss_of: Callable) -> None:
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    with loader:
        for _ in range(epochs):
            for batch in TorchIterable(loader, as_dict=True):
                loss = loss_of(net(batch["images"]), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()


@torch.no_grad()
def predict(net: nn.Module, path: str, spec: datumio.Transform, fields: tuple) -> tuple:
    """The net's outputs on every record of ``path``, and the batches' fields, concatenated."""
    outs, got = [], []
    with datumio.Loader(
        path, 64, transform=spec, sampling="natural", drop_last=False, workers=1, fields=fields
    ) as loader:
        for batch in TorchIterable(loader, as_dict=True):
            outs.append(net(batch["images"]))
            got.append({k: v.clone() for k, v in batch.items()})  # the slot is reused
    return torch.cat(outs), {k: torch.cat([b[k] for b in got]) for k in got[0]}


def to_box(out: torch.Tensor) -> torch.Tensor:
    """The first 4 outputs (centre, size) as ``[x0, y0, x1, y1]`` in [0, 1]."""
    centre, half = out[:, :2].sigmoid(), out[:, 2:4].sigmoid() / 2
    return torch.cat([centre - half, centre + half], 1)


def box_scores(net: nn.Module, path: str, spec: datumio.Transform) -> tuple[float, float]:
    """Mean IoU of the first box and accuracy of its class."""
    out, batch = predict(net, path, spec, ("boxes",))
    a, b = to_box(out), batch["boxes"][:, 0] / SIZE
    inter = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0)
    inter = inter.prod(1)
    iou = inter / ((a[:, 2:] - a[:, :2]).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter)
    hits = out[:, 4:].argmax(1) == batch["boxes_classes"][:, 0]
    return iou.mean().item(), hits.float().mean().item()


def detection(workdir: str, epochs: int) -> None:
    train_path = make_split(workdir, "boxes_train", 1000, 1, 96, rectangles)
    val_path = make_split(workdir, "boxes_val", 200, 2, 96, rectangles)
    stats = datumio.open(train_path).manifest.stats
    plain = datumio.Transform(size=(SIZE, SIZE), mean=stats.mean, std=stats.std)
    # The boxes follow the rotation, zoom and flip (box_min_visible drops the ones left
    # mostly out of view; boxes_count says how many remain).
    augmented = dataclasses.replace(
        plain, rotation_range=(-15, 15), zoom_range=(0.85, 1.15), flip=0.5
    )

    def loss_of(out: torch.Tensor, batch: dict) -> torch.Tensor:
        seen = batch["boxes_count"] > 0
        box = nn.functional.l1_loss(to_box(out[seen]), batch["boxes"][seen, 0] / SIZE)
        colour = batch["boxes_classes"][seen, 0].long()
        return box + nn.functional.cross_entropy(out[seen, 4:], colour)

    torch.manual_seed(0)
    net = make_net(4 + len(COLOURS))
    before = box_scores(net, val_path, plain)
    loader = datumio.Loader(
        train_path, BATCH, transform=augmented, sampling="natural", workers=2, fields=("boxes",)
    )
    train(net, loader, epochs, loss_of)
    after = box_scores(net, val_path, plain)
    print(f"boxes: the first box of 200 held-out pictures after {epochs} epochs")
    print(f"  mean IoU        untrained {before[0]:.3f}  trained {after[0]:.3f}")
    print(f"  class accuracy  untrained {before[1]:.3f}  trained {after[1]:.3f}")


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    hits = truth[np.argsort(-scores)]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean()) if hits.any() else 0.0


def multilabel(workdir: str, epochs: int) -> None:
    train_path = make_split(workdir, "tags_train", 1500, 3, SIZE, shapes)
    val_path = make_split(workdir, "tags_val", 300, 4, SIZE, shapes)
    ds = datumio.open(train_path)
    names = ds.fields["tags"].vocabulary  # tag names by id (sorted)
    if datumio.open(val_path).fields["tags"].vocabulary != names:
        raise SystemExit("the held-out pictures lack a tag: draw more of them")
    stats = ds.manifest.stats
    plain = datumio.Transform(size=(SIZE, SIZE), mean=stats.mean, std=stats.std)
    torch.manual_seed(0)
    net = make_net(len(names))
    loader = datumio.Loader(
        train_path, BATCH, transform=dataclasses.replace(plain, flip=0.5), workers=2,
        fields=("tags",), balance_by="tags",
    )  # fmt: skip
    bce = nn.functional.binary_cross_entropy_with_logits
    train(net, loader, epochs, lambda out, batch: bce(out, batch["tags"].float()))
    out, batch = predict(net, val_path, plain, ("tags",))
    score, real = out.sigmoid().numpy(), batch["tags"].numpy() > 0
    train_counts = np.bincount(ds.field_index("tags")[1], minlength=len(names))
    print(f"tags: {len(real)} held-out pictures after {epochs} epochs (balance_by='tags')")
    print(f"  {'tag':9} {'train':>5} {'val':>4} {'F1':>5} {'AP':>5}")
    aps = []
    for t, tag in enumerate(names):
        said = score[:, t] > 0.5
        f1 = 2 * (said & real[:, t]).sum() / max(said.sum() + real[:, t].sum(), 1)
        aps.append(average_precision(score[:, t], real[:, t]))
        print(f"  {tag:9} {train_counts[t]:5d} {real[:, t].sum():4d} {f1:5.2f} {aps[-1]:5.2f}")
    print(f"  mean AP {np.mean(aps):.3f} (chance: {real.mean():.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workdir", help="where to draw and ingest the pictures (default: temp)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the loader's workers use the other core(s)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        os.makedirs(os.path.join(workdir, "images"), exist_ok=True)
        detection(workdir, args.epochs)
        multilabel(workdir, args.epochs)
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
