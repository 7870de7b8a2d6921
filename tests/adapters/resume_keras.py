"""A Keras run that stops mid-epoch and resumes; ``test_resume.py`` runs it as processes.

    python resume_keras.py DATASET STATE TRACE [--epochs 2] [--stop-after N] [--resume]

Each training step appends what it trained on (Keras epoch, labels, a digest of the pixels)
to TRACE as a JSON line. ``--stop-after N`` saves ``KerasDataset.state_dict(trained=batch +
1)`` to STATE (JSON) after step N and stops ``fit``; ``--resume`` loads it into a new Loader
and ``KerasDataset`` and finishes the run with the two ``fit`` calls of docs/adapters.md.
No ``__main__`` guard, on purpose: the loader's workers must not run this script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

import keras
import numpy as np

import datumio
from datumio.adapters.keras import KerasDataset

BATCH = 4


class Traced(keras.Sequential):
    """Appends what every training step receives to ``trace`` (set before ``fit``)."""

    trace = ""
    epoch = -1

    def train_step(self, data: Any) -> Any:
        images, labels = (np.asarray(keras.ops.convert_to_numpy(x)) for x in data[:2])
        row = {
            "epoch": Traced.epoch,
            "labels": labels.tolist(),
            "pixels": hashlib.sha1(images.tobytes()).hexdigest()[:16],
        }
        with open(Traced.trace, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        return super().train_step(data)


class Stop(keras.callbacks.Callback):
    """Counts steps; after ``stop_after`` of them saves the data state and stops ``fit``."""

    def __init__(self, ds: Any, state_path: str, steps: int, stop_after: int) -> None:
        super().__init__()
        self.ds, self.state_path, self.steps, self.stop_after = ds, state_path, steps, stop_after

    def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
        Traced.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: object = None) -> None:
        self.steps += 1
        if self.steps == self.stop_after:
            state = {"data": self.ds.state_dict(trained=batch + 1), "steps": self.steps}
            with open(self.state_path, "w", encoding="utf-8") as f:
                json.dump(state, f)
            self.model.stop_training = True


parser = argparse.ArgumentParser()
parser.add_argument("dataset")
parser.add_argument("state")
parser.add_argument("trace")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--stop-after", type=int, default=0)
parser.add_argument("--resume", action="store_true")
args = parser.parse_args()

keras.utils.set_random_seed(0)
Traced.trace = args.trace
model = Traced(
    [
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4),
    ]
)
model.compile(
    optimizer="adam",
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    jit_compile=False,
)
spec = datumio.Transform(size=(16, 16), layout="HWC", flip=0.5)
with datumio.Loader(args.dataset, BATCH, workers=1, seed=5, transform=spec) as loader:
    ds = KerasDataset(loader)
    steps = 0
    if args.resume:
        with open(args.state, encoding="utf-8") as f:
            saved = json.load(f)
        ds.load_state_dict(saved["data"])
        steps = saved["steps"]
    stop = Stop(ds, args.state, steps, args.stop_after)
    fit = {"shuffle": False, "verbose": 0, "callbacks": [stop]}
    if ds.start_batch:  # resumed mid-epoch: finish that epoch first
        model.fit(ds, initial_epoch=ds.epoch, epochs=ds.epoch + 1, **fit)
    if not model.stop_training:
        model.fit(ds, initial_epoch=ds.epoch, epochs=args.epochs, **fit)
    ds.close()
print(f"steps {stop.steps}")
