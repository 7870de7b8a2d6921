"""Resuming mid-epoch through the adapters gives exactly the batches of a run never stopped.

In process: a loop leaves an epoch mid-way while batches are read ahead (by the loader's
workers; with ``device`` also by the transfer thread; for Keras, indices asked for ahead of
training), saves ``state_dict()`` through JSON, and a new Loader and adapter given it with
``load_state_dict`` go on. In real processes: ``examples/resume_torch.py`` (TorchIterable)
and ``resume_keras.py`` (KerasDataset under ``fit``) stop after N steps, run again with
``--resume``, against a run never stopped (the torch example is stopped twice).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from side_by_side import side_by_side

import datumio
from datumio.errors import LoaderError, OptionError

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported
pytest.importorskip("torch")
from torch.utils.data import DataLoader

from datumio.adapters.torch import TorchIterable

ROOT = Path(__file__).resolve().parents[2]
BATCH = 4
EPOCHS = 2
#: Batches per epoch of the small dataset (46 records, balanced, drop_last).
PER_EPOCH = 11
#: Where the in-process runs stop: mid-epoch, after an epoch's last batch, in the second.
STOPS = {"mid_epoch": 3, "epoch_end": PER_EPOCH, "second_epoch": PER_EPOCH + 4}
#: Longest wait on the transfer thread.
_WAIT_S = 30.0
#: What one step got: the loader's epoch, record ids (or labels) and a digest of the pixels.
Step = tuple[int, tuple[int, ...], str]


def _step(epoch: int, images: Any, ids: Any) -> Step:
    pixels = np.ascontiguousarray(np.asarray(images))
    return epoch, tuple(np.asarray(ids).tolist()), hashlib.sha1(pixels.tobytes()).hexdigest()


def _json(state: dict[str, Any]) -> dict[str, Any]:
    """Through a JSON checkpoint and back."""
    out: dict[str, Any] = json.loads(json.dumps(state))
    return out


# -- TorchIterable, in process ---------------------------------------------------------------


def _torch_loader(path: str | Path) -> datumio.Loader:
    spec = datumio.Transform(size=(16, 16), flip=0.5)
    # Roomy slots: a batch held by the loop, the transfer thread's queue and the prefetch.
    return datumio.Loader(path, BATCH, workers=2, seed=3, extras=("ids",), transform=spec, slots=8)


def _read_ahead(loader: datumio.Loader, served: dict[str, Any]) -> None:
    """Wait until the loader has moved past what the loop received (the transfer thread
    reads ahead), so that a state counting those batches would skip them."""
    deadline = time.monotonic() + _WAIT_S
    while (loader.epoch, loader.position) == (served["epoch"], served["position"]):
        assert time.monotonic() < deadline, "the transfer thread did not read ahead"
        time.sleep(0.01)


def _torch_steps(
    path: str | Path, device: str | None, state: dict[str, Any] | None = None, stop_after: int = 0
) -> tuple[list[Step], dict[str, Any] | None]:
    """The steps of ``DataLoader(TorchIterable)`` to the end of EPOCHS, from ``state``; with
    ``stop_after``, leave after that many steps and return the state saved then."""
    steps: list[Step] = []
    saved = None
    with _torch_loader(path) as loader:
        feed = TorchIterable(loader, device=device)
        if state is not None:
            feed.load_state_dict(state)
        while loader.epoch < EPOCHS and saved is None:
            epoch = loader.epoch
            for images, _labels, ids in DataLoader(feed, batch_size=None):
                steps.append(_step(epoch, images, ids))
                if len(steps) == stop_after:
                    if device is not None:
                        _read_ahead(loader, feed.state_dict())
                    saved = _json(feed.state_dict())
                    break
    return steps, saved


@functools.cache
def _torch_reference(path: str | Path, device: str | None) -> list[Step]:
    return _torch_steps(path, device)[0]


@pytest.mark.parametrize("device", [None, "cpu"], ids=["cpu-tensors", "transfer-thread"])
@pytest.mark.parametrize("stop", list(STOPS))
def test_torch_resume_in_a_new_loader(shapes_lmdb: Path, device: str | None, stop: str) -> None:
    expected = _torch_reference(shapes_lmdb, device)
    assert len(expected) == EPOCHS * PER_EPOCH
    before, state = _torch_steps(shapes_lmdb, device, stop_after=STOPS[stop])
    assert state is not None and len(before) == STOPS[stop]
    after, _ = _torch_steps(shapes_lmdb, device, state=state)
    assert before + after == expected


@pytest.mark.parametrize("then", ["load_state_dict", "iterate_again"])
def test_torch_resume_while_the_left_iterator_lives(shapes_lmdb: Path, then: str) -> None:
    """A loop left with its DataLoader iterator still referenced: the transfer thread has
    batches read ahead; the next iteration (after load_state_dict, or not) must serve them,
    and the old thread must never move the loader again."""
    expected = _torch_reference(shapes_lmdb, "cpu")
    with _torch_loader(shapes_lmdb) as loader:
        feed = TorchIterable(loader, device="cpu")
        batches = DataLoader(feed, batch_size=None)
        it = iter(batches)
        got = []
        for _ in range(3):
            images, _labels, ids = next(it)
            got.append(_step(0, images, ids))
        del images, _labels, ids
        state = feed.state_dict()
        _read_ahead(loader, state)
        assert state["position"] == 3 * BATCH < loader.position
        if then == "load_state_dict":
            feed.load_state_dict(_json(state))
        while loader.epoch < EPOCHS:
            epoch = loader.epoch
            got += [_step(epoch, im, i) for im, _, i in batches]
        with pytest.raises(LoaderError, match="ended by a newer one"):
            next(it)
        del it
        assert (loader.epoch, loader.position) == (EPOCHS, 0)
    assert got == expected


def test_torch_state_is_plain_and_fresh(shapes_lmdb: Path) -> None:
    with _torch_loader(shapes_lmdb) as loader:
        feed = TorchIterable(loader, device="cpu")
        for _batch in DataLoader(feed, batch_size=None):
            state = feed.state_dict()
            state["sampler"]["position"] = -1  # a copy: the adapter's place is untouched
            again = feed.state_dict()
            break
        del _batch
        assert again["sampler"]["position"] == again["position"] == BATCH
        assert _json(again) == again  # JSON types only


# -- KerasDataset, in process ----------------------------------------------------------------


def _keras_loader(path: str | Path) -> datumio.Loader:
    spec = datumio.Transform(size=(16, 16), layout="HWC", flip=0.5)
    return datumio.Loader(path, BATCH, workers=2, seed=5, transform=spec)


def _keras_epoch(ds: Any, steps: list[Step]) -> None:
    """One Keras epoch in order, as ``fit(shuffle=False)`` asks for it."""
    epoch = ds.epoch
    for i in range(len(ds)):
        images, labels = ds[i]
        steps.append(_step(epoch, images, labels))
    ds.on_epoch_end()


@functools.cache
def _keras_reference(path: str | Path) -> list[Step]:
    from datumio.adapters.keras import KerasDataset

    steps: list[Step] = []
    with _keras_loader(path) as loader:
        ds = KerasDataset(loader)
        while ds.epoch < EPOCHS:
            _keras_epoch(ds, steps)
        ds.close()
    return steps


@pytest.mark.parametrize("stop", list(STOPS))
def test_keras_resume_in_a_new_dataset(shapes_lmdb: Path, stop: str) -> None:
    pytest.importorskip("keras")
    from datumio.adapters.keras import KerasDataset

    expected = _keras_reference(shapes_lmdb)
    trained = STOPS[stop]
    got: list[Step] = []
    with _keras_loader(shapes_lmdb) as loader:
        ds = KerasDataset(loader)
        while len(got) + len(ds) < trained:
            _keras_epoch(ds, got)
        done = trained - len(got)
        for i in range(done):
            images, labels = ds[i]
            got.append(_step(ds.epoch, images, labels))
        ahead = min(done + 2, len(ds))  # a backend that reads ahead of training
        for i in range(done, ahead):
            ds[i]
        assert ds.state_dict()["position"] == ahead * BATCH  # default: what Keras was given
        state = _json(ds.state_dict(trained=done))
        ds.close()
    with _keras_loader(shapes_lmdb) as loader:
        ds = KerasDataset(loader)
        ds.load_state_dict(state)
        if done == PER_EPOCH:  # saved after an epoch's last batch: the next one, whole
            assert (ds.epoch, ds.start_batch, len(ds)) == (trained // PER_EPOCH, 0, PER_EPOCH)
        else:
            assert (ds.start_batch, len(ds)) == (done, PER_EPOCH - done)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # in order, whole epochs: no seek, no warning
            while ds.epoch < EPOCHS:
                _keras_epoch(ds, got)
        assert ds.seeks == 0
        ds.close()
    assert got == expected


def _keras_fit_steps(path: str | Path, epochs: int, state: Any = None, stop_after: int = 0) -> Any:
    """The steps ``fit`` trains on (a fresh model each time: ``fit`` peeks at a batch to
    build it); with ``stop_after``, the state saved by a callback after that many steps."""
    import keras

    from datumio.adapters.keras import KerasDataset

    steps: list[Step] = []
    saved: list[dict[str, Any]] = []

    class Traced(keras.Sequential):
        def train_step(self, data: Any) -> Any:
            images, labels = (keras.ops.convert_to_numpy(x) for x in data[:2])
            steps.append(_step(-1, images, labels))
            return super().train_step(data)

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if len(steps) == stop_after:
                saved.append(_json(ds.state_dict(trained=batch + 1)))
                self.model.stop_training = True

    keras.utils.set_random_seed(0)
    model = Traced([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=False)
    fit = {"shuffle": False, "verbose": 0, "callbacks": [Stop()]}
    with _keras_loader(path) as loader:
        ds = KerasDataset(loader)
        if state is not None:
            ds.load_state_dict(state)
        if ds.start_batch:  # resumed mid-epoch: the rest of it in a fit of its own
            model.fit(ds, initial_epoch=ds.epoch, epochs=ds.epoch + 1, **fit)
        if not saved:
            model.fit(ds, initial_epoch=ds.epoch, epochs=epochs, **fit)
        ds.close()
    return steps, (saved[0] if saved else None)


@functools.cache
def _keras_fit_reference(path: str | Path) -> list[Step]:
    """The steps of ``fit`` never stopped (the same for every stop below)."""
    steps: list[Step] = _keras_fit_steps(path, EPOCHS)[0]
    return steps


@pytest.mark.parametrize("stop_after", [PER_EPOCH - 1, PER_EPOCH - 2, 5])
def test_keras_fit_resumes_with_few_batches_left(shapes_lmdb: Path, stop_after: int) -> None:
    """``fit`` reads a batch (two on the TensorFlow backend) before training, then calls
    ``on_epoch_end``: with one or two batches left that must not end the resumed epoch."""
    pytest.importorskip("keras")
    expected = _keras_fit_reference(shapes_lmdb)
    assert len(expected) == EPOCHS * PER_EPOCH
    before, state = _keras_fit_steps(shapes_lmdb, EPOCHS, stop_after=stop_after)
    assert state is not None and len(before) == stop_after
    after, _ = _keras_fit_steps(shapes_lmdb, EPOCHS, state=state)
    assert before + after == expected


def test_keras_state_dict_refuses_a_bad_count_and_on_epoch_end_warns(shapes_lmdb: Path) -> None:
    pytest.importorskip("keras")
    from datumio.adapters.keras import KerasDataset

    with _keras_loader(shapes_lmdb) as loader:
        ds = KerasDataset(loader)
        for i in range(4):
            ds[i]
        for bad in (-1, PER_EPOCH + 1, True, 2.0):
            with pytest.raises(OptionError, match="trained="):
                ds.state_dict(trained=bad)
        with pytest.warns(UserWarning, match="after batch 4 of 11"):
            ds.on_epoch_end()  # steps_per_epoch below len(ds): the loader stays in the epoch
        assert (ds.epoch, ds.state_dict()["position"]) == (0, 4 * BATCH)
        ds.close()


# -- real processes --------------------------------------------------------------------------


def _run(script: Path, *args: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _trace(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _checksum(out: str) -> float:
    return float(out.split("weights checksum ")[1].split()[0])


@pytest.mark.parametrize("device", [None, "cpu"], ids=["cpu-tensors", "transfer-thread"])
def test_example_resume_torch_in_processes(
    shapes_lmdb: Path, tmp_path: Path, device: str | None
) -> None:
    example = ROOT / "examples" / "resume_torch.py"
    # The run never stopped is a copy without the __main__ guard: the loader's workers must
    # not run the script (the example should not need the guard to work).
    guard = 'if __name__ == "__main__":'
    text = example.read_text()
    assert guard in text
    unguarded = tmp_path / "resume_torch_unguarded.py"
    unguarded.write_text(text.replace(guard, "if True:"))
    common = [str(shapes_lmdb), "--epochs", str(EPOCHS), "--batch-size", str(BATCH)]
    common += ["--workers", "1", "--workdir", str(tmp_path)]
    common += ["--device", device] if device else []
    resumed, full = tmp_path / "resumed.jsonl", tmp_path / "full.jsonl"
    checkpoint = ["--checkpoint", str(tmp_path / "run.pt"), "--trace", str(resumed)]

    def stopped_twice() -> str:
        out = _run(example, *common, *checkpoint)  # half the first epoch
        assert f"stopped after step {PER_EPOCH // 2}" in out
        out = _run(example, *common, *checkpoint, "--resume", "--stop-after", str(PER_EPOCH + 3))
        assert f"resumed after step {PER_EPOCH // 2}: epoch 0" in out
        assert f"stopped after step {PER_EPOCH + 3}" in out
        return _run(example, *common, *checkpoint, "--resume")

    never_stopped = [unguarded, *common, "--stop-after", "0", "--trace", str(full)]
    runs = side_by_side(
        {"last": stopped_twice, "reference": functools.partial(_run, *never_stopped)}
    )
    last, reference = runs["last"], runs["reference"]
    assert f"resumed after step {PER_EPOCH + 3}: epoch 1, record {3 * BATCH}" in last

    got, expected = _trace(resumed), _trace(full)
    assert len(expected) == EPOCHS * PER_EPOCH
    assert got == expected  # steps, epochs, record ids, labels, pixel digests
    assert _checksum(last) == pytest.approx(_checksum(reference), rel=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras not installed")
def test_keras_resume_in_processes(shapes_lmdb: Path, tmp_path: Path) -> None:
    script = Path(__file__).with_name("resume_keras.py")
    state = str(tmp_path / "state.json")
    resumed, full = tmp_path / "resumed.jsonl", tmp_path / "full.jsonl"
    run = [str(shapes_lmdb), state, str(resumed)]

    def stopped_and_resumed() -> str:
        assert "steps 5" in _run(script, *run, "--stop-after", "5")
        # the rest of epoch 0 in a fit of its own, then epoch 1 in another
        return _run(script, *run, "--resume")

    never_stopped = functools.partial(_run, script, str(shapes_lmdb), state + ".unused", str(full))
    runs = side_by_side({"resumed": stopped_and_resumed, "full": never_stopped})
    assert "steps 22" in runs["resumed"]

    got, expected = _trace(resumed), _trace(full)
    assert len(expected) == EPOCHS * PER_EPOCH
    assert [row["epoch"] for row in expected] == [0] * PER_EPOCH + [1] * PER_EPOCH
    assert got == expected  # Keras epochs, labels and pixel digests of every step
