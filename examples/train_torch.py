"""Train a tiny PyTorch CNN on the long-tailed demo shapes, balanced vs natural sampling.

    python examples/train_torch.py [--epochs 12] [--workdir DIR]

The demo set has 8 classes from 240 images down to 10. A quarter of every class is held out
(``_demo_data.py``). The same model is trained twice from the same initial weights, once
with ``sampling="natural"`` (every record once per epoch: the big classes dominate) and once
with ``sampling="balanced"`` (every class equally often), with the same number of steps; the
per-class recall on the held-out images is printed side by side. Batches reach torch through
``datumio.adapters.torch.TorchIterable`` as tensors viewing shared memory (no copy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _demo_data import build_splits

import datumio
from datumio.adapters.torch import TorchIterable

SIZE = 24
BATCH = 32


def make_model(classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 24, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(24, classes),
    )


#: With a GPU, TorchIterable moves each batch there on a transfer thread (workers ship
#: uint8, the normalisation runs on the GPU); on the CPU tensors view shared memory.
DEVICE = "cuda" if torch.cuda.is_available() else None


def train(path: str, sampling: str, spec: datumio.Transform, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    model = make_model(len(datumio.open(path).class_names)).to(DEVICE or "cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    with datumio.Loader(path, BATCH, sampling=sampling, workers=2, transform=spec) as loader:
        feed = TorchIterable(loader, device=DEVICE, pin_memory=DEVICE is not None)
        batches = DataLoader(feed, batch_size=None)
        for _ in range(epochs):
            for images, labels in batches:
                loss = nn.functional.cross_entropy(model(images), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return model


@torch.no_grad()
def recall(model: nn.Module, path: str, spec: datumio.Transform) -> np.ndarray:
    """Per-class recall on every record of ``path``."""
    model.eval()
    classes = len(datumio.open(path).class_names)
    hits, totals = np.zeros(classes), np.zeros(classes)
    with datumio.Loader(
        path, 64, sampling="natural", drop_last=False, workers=1, transform=spec
    ) as loader:
        for images, labels in TorchIterable(loader):
            predicted = model(images.to(DEVICE or "cpu")).argmax(1).cpu()
            np.add.at(totals, labels.numpy(), 1)
            np.add.at(hits, labels.numpy(), (predicted == labels).numpy())
    return hits / np.maximum(totals, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--workdir", help="where to draw and ingest the demo (default: temp)")
    args = parser.parse_args(argv)
    # One intra-op thread: the loader's workers use the other core(s), and oversubscribed
    # OpenMP threads are far slower than one thread on a model this small.
    torch.set_num_threads(1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train_path, val_path = build_splits(args.workdir or tmp)
        ds = datumio.open(train_path)
        stats = ds.manifest.stats
        names, counts = ds.class_names, ds.counts
        # Both splits use the training set's mean/std; a random flip augments training.
        train_spec = datumio.Transform(size=(SIZE, SIZE), flip=0.5, mean=stats.mean, std=stats.std)
        eval_spec = datumio.Transform(size=(SIZE, SIZE), mean=stats.mean, std=stats.std)
        results = {}
        for sampling in ("natural", "balanced"):
            model = train(train_path, sampling, train_spec, args.epochs)
            results[sampling] = recall(model, val_path, eval_spec)
        val_counts = datumio.open(val_path).counts
    print(f"per-class recall on held-out images after {args.epochs} epochs ({BATCH}/batch)")
    print(f"{'class':10} {'train':>5} {'val':>4} {'natural':>8} {'balanced':>9}")
    for c, name in enumerate(names):
        print(
            f"{name:10} {counts[c]:5d} {val_counts[c]:4d} "
            f"{results['natural'][c]:8.2f} {results['balanced'][c]:9.2f}"
        )
    rare = slice(len(names) - 3, len(names))
    for sampling, r in results.items():
        print(f"{sampling:9} mean recall {r.mean():.3f}; 3 rarest classes {r[rare].mean():.3f}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
