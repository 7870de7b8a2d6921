"""datumio.adapters.lightning: a DataModule under a real Lightning Trainer on the CPU.

A fit stopped after a mid-epoch checkpoint and resumed from it sees every record of the
epoch once; train/val/test come from stored splits; the install hint without Lightning.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import datumio

torch = pytest.importorskip("torch")
pl = pytest.importorskip("pytorch_lightning")

from datumio.adapters import _state  # noqa: E402
from datumio.adapters.lightning import DataModule, EvalIterable  # noqa: E402

SPEC = datumio.Transform(size=(8, 8), crop_scale=(0.5, 1.0), flip=0.5)
#: What every DataModule of these tests shares: batches carry the record ids.
OPTIONS: dict[str, Any] = {"workers": 1, "extras": ("ids",), "seed": 7}


class Tiny(pl.LightningModule):
    """One Linear over the pooled 8x8 image; keeps the ids each step received."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, classes)
        self.seen: dict[str, list[list[int]]] = {"train": [], "val": [], "test": []}

    def _step(self, stage: str, batch: Any) -> Any:
        images, labels, ids = batch
        self.seen[stage].append(ids.tolist())
        logits = self.linear(images.mean(dim=(2, 3)))
        return torch.nn.functional.cross_entropy(logits, labels)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return self._step("train", batch)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step("test", batch)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(root: Path, **kw: Any) -> Any:
    """A CPU Trainer writing nothing but what ``callbacks`` save, under ``root``."""
    kw.setdefault("enable_checkpointing", False)
    return pl.Trainer(
        default_root_dir=root,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kw,
    )


def _flat(batches: list[list[int]]) -> list[int]:
    return [i for batch in batches for i in batch]


def test_a_mid_epoch_checkpoint_resumes_with_the_records_not_yet_seen(small_lmdb, tmp_path):
    """21 records, 7 batches of 3: the first fit goes on to step 5 after its step-2
    checkpoint; the fit resumed from that checkpoint trains batches 3 to 7, the first three
    being those the first fit trained after its checkpoint, and no record twice."""
    saves = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path, every_n_train_steps=2, save_top_k=-1, filename="{step}"
    )
    first = Tiny()
    dm = DataModule(small_lmdb, batch_size=3, transform=SPEC, sampling="natural", **OPTIONS)
    _trainer(tmp_path, max_steps=5, callbacks=[saves], enable_checkpointing=True).fit(
        first, datamodule=dm
    )
    assert len(first.seen["train"]) == 5
    assert dm.state_dict()["position"] == 15  # 5 batches of 3 handed to the model

    resumed = Tiny()
    again = DataModule(small_lmdb, batch_size=3, transform=SPEC, sampling="natural", **OPTIONS)
    _trainer(tmp_path, max_epochs=1).fit(
        resumed, datamodule=again, ckpt_path=tmp_path / "step=2.ckpt"
    )
    assert resumed.seen["train"][:3] == first.seen["train"][2:5]
    epoch = _flat(first.seen["train"][:2]) + _flat(resumed.seen["train"])
    assert sorted(epoch) == list(range(21))
    assert again._train is not None and again._train.loader.closed  # teardown closed it


def test_train_val_and_test_come_from_stored_splits(small_lmdb, tmp_path):
    path = tmp_path / "split.lmdb"
    shutil.copytree(small_lmdb, path)  # splitting writes into the dataset
    splits = datumio.split(path, val=0.25, test=0.25, seed=0)
    counts = dict(zip(splits.names, splits.counts.values(), strict=True))
    model = Tiny()
    dm = DataModule(path, batch_size=2, transform=SPEC, sampling="natural", **OPTIONS)
    trainer = _trainer(tmp_path, max_epochs=2, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)

    per_epoch = counts["train"] // 2  # drop_last: whole batches only
    assert len(model.seen["train"]) == 2 * per_epoch
    for epoch in range(2):
        ids = _flat(model.seen["train"][epoch * per_epoch : (epoch + 1) * per_epoch])
        assert len(set(ids)) == len(ids) and set(ids) <= set(range(counts["train"]))
    val = model.seen["val"]  # one pass per epoch: every val record once, the same order
    passes = [_flat(val[: len(val) // 2]), _flat(val[len(val) // 2 :])]
    assert sorted(passes[0]) == list(range(counts["val"])) and passes[0] == passes[1]
    assert sorted(_flat(model.seen["test"])) == list(range(counts["test"]))
    feed = dm.test_dataloader()
    assert isinstance(feed, EvalIterable) and feed.loader.dataset.split == "test"
    assert feed.loader.transform.flip == 0 and feed.loader.transform.crop_scale is None
    dm.teardown("test")


def test_without_splits_the_whole_dataset_trains_and_paths_validate(small_lmdb, tiny_lmdb):
    dm = DataModule(small_lmdb, batch_size=3, val_path=tiny_lmdb, **OPTIONS)
    try:
        assert len(dm.train_dataloader().loader.dataset) == 21
        assert dm.test_dataloader() == []  # no test data: Lightning runs no test loop
        val = dm.val_dataloader()
        assert isinstance(val, EvalIterable) and len(val) == 3  # 8 records: 3, 3, 2
        ids = [batch[2].tolist() for batch in val]  # no tensor kept: each holds a slot
        assert [len(b) for b in ids] == [3, 3, 2] and sorted(_flat(ids)) == list(range(8))
        assert [batch[2].tolist() for batch in val] == ids  # every pass: the same order
    finally:
        dm.teardown("fit")


def test_the_state_of_a_datamodule_resumes_another_without_a_trainer(small_lmdb):
    """Without a Trainer the state is the place after the last batch yielded; a new
    DataModule given it (through JSON) serves the rest of the epoch."""
    kw: dict[str, Any] = {"batch_size": 3, "transform": SPEC, "sampling": "natural", **OPTIONS}
    first, second = DataModule(small_lmdb, **kw), DataModule(small_lmdb, **kw)
    try:
        ids = [batch[2].tolist() for batch in first.train_dataloader()]
        assert len(ids) == 7 and sorted(_flat(ids)) == list(range(21))
        feed = first.train_dataloader()
        feed.load_state_dict(_state.moved(feed.loader, 0, 0))
        batches = iter(feed)
        next(batches), next(batches)  # two batches of the epoch, then a checkpoint
        second.load_state_dict(json.loads(json.dumps(first.state_dict())))
        assert second.state_dict()["position"] == 6  # kept until a dataloader is built
        assert [b[2].tolist() for b in second.train_dataloader()] == ids[2:]
    finally:
        first.teardown("fit")
        second.teardown("fit")


def test_a_checkpoint_of_two_ranks_resumes_on_one_with_each_record_once(small_lmdb):
    """Lightning keeps rank 0's state; its ranks step in lock-step, so the DataModule
    rebuilds every rank's place from it and merges them: the run on 1 rank serves exactly
    what the 2 ranks had not."""
    kw: dict[str, Any] = {"transform": SPEC, "world_size": 2, **OPTIONS}
    served: list[int] = []
    with (
        datumio.Loader(small_lmdb, 3, rank=0, **kw) as r0,
        datumio.Loader(small_lmdb, 3, rank=1, **kw) as r1,
    ):
        for loader in (r0, r1):
            batches = iter(loader)
            served += [i for _ in range(2) for i in next(batches)[2].tolist()]
        checkpoint = json.loads(json.dumps(r0.state_dict()))  # rank 0's, as Lightning saves
    dm = DataModule(small_lmdb, batch_size=3, transform=SPEC, **OPTIONS)
    dm.load_state_dict(checkpoint)
    try:
        feed = dm.train_dataloader()
        rest = [i for b in feed for i in b[2].tolist()]
    finally:
        dm.teardown("fit")
    with datumio.Loader(small_lmdb, 3, transform=SPEC, **OPTIONS) as one:
        whole = one.sampler.epoch_ids().tolist()  # every draw of the epoch, in plan order
    assert len(served) == 12 and len(rest) == 9
    assert sorted(served + rest) == sorted(whole)


def test_the_datamodules_own_keywords_are_refused():
    with pytest.raises(TypeError, match="train_split="):
        DataModule("any.lmdb", batch_size=2, split="val")


def test_without_lightning_the_import_says_how_to_install_it():
    """``sys.modules[name] = None`` is how Python marks a module that cannot be imported."""
    code = (
        "import sys\n"
        "sys.modules['lightning'] = None\n"
        "sys.modules['pytorch_lightning'] = None\n"
        "try:\n"
        "    import datumio.adapters.lightning\n"
        "except ImportError as exc:\n"
        "    print(exc.name)\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without Lightning')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    name, text = done.stdout.strip().split("\n", 1)
    assert name == "lightning"
    assert "datumio.adapters.lightning needs lightning" in text
    assert "pip install lightning" in text and "pytorch-lightning" in text


def test_import_datumio_does_not_import_lightning():
    code = (
        "import sys, datumio, datumio.adapters\n"
        "assert not {'lightning', 'pytorch_lightning'} & set(sys.modules), 'imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
