"""Train a tiny Keras 3 CNN (torch backend) on the long-tailed demo shapes.

    python examples/train_keras.py [--epochs 10] [--workdir DIR]

Same data and held-out split as ``train_torch.py``; the model is fed by
``datumio.adapters.keras.KerasDataset`` (a ``PyDataset`` over a Loader, channels-last
batches) with ``model.fit(..., shuffle=False)``: the loader's plan is already shuffled and
label-balanced. Prints the per-class recall on the held-out images for natural and balanced
sampling.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _demo_data import build_splits

import datumio
from datumio.adapters.keras import KerasDataset

SIZE = 24
BATCH = 32


def make_model(classes: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(24, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(classes),
        ]
    )


def train(path: str, sampling: str, spec: datumio.Transform, epochs: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = make_model(len(datumio.open(path).class_names))
    model.compile(
        optimizer=keras.optimizers.Adam(5e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    with datumio.Loader(path, BATCH, sampling=sampling, workers=2, transform=spec) as loader:
        data = KerasDataset(loader)
        model.fit(data, epochs=epochs, shuffle=False, verbose=0)
        data.close()
    return model


def recall(model: keras.Model, path: str, spec: datumio.Transform) -> np.ndarray:
    classes = len(datumio.open(path).class_names)
    hits, totals = np.zeros(classes), np.zeros(classes)
    with datumio.Loader(
        path, 64, sampling="natural", drop_last=False, workers=1, transform=spec
    ) as loader:
        for images, labels in loader:
            predicted = np.asarray(model.predict_on_batch(images)).argmax(1)
            np.add.at(totals, labels, 1)
            np.add.at(hits, labels, predicted == labels)
    return hits / np.maximum(totals, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workdir", help="where to draw and ingest the demo (default: temp)")
    args = parser.parse_args(argv)
    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)  # the loader's workers use the other core(s)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train_path, val_path = build_splits(args.workdir or tmp)
        ds = datumio.open(train_path)
        stats, names = ds.manifest.stats, ds.class_names
        kw = {"size": (SIZE, SIZE), "layout": "HWC", "mean": stats.mean, "std": stats.std}
        train_spec = datumio.Transform(flip=0.5, **kw)
        eval_spec = datumio.Transform(**kw)
        results = {
            sampling: recall(
                train(train_path, sampling, train_spec, args.epochs), val_path, eval_spec
            )
            for sampling in ("natural", "balanced")
        }
    print(f"Keras {keras.__version__} ({keras.backend.backend()} backend), {args.epochs} epochs")
    print(f"{'class':10} {'natural':>8} {'balanced':>9}")
    for c, name in enumerate(names):
        print(f"{name:10} {results['natural'][c]:8.2f} {results['balanced'][c]:9.2f}")
    rare = slice(len(names) - 3, len(names))
    for sampling, r in results.items():
        print(f"{sampling:9} mean recall {r.mean():.3f}; 3 rarest classes {r[rare].mean():.3f}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
