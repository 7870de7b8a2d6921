"""Typing cases of the framework adapters, for the mypy runner of
``tests/typing/test_typed_api.py`` (a line marked E must get that error, one marked N that
note, every other line must be clean). The adapters are plain classes, so mypy sees their
signatures (not ``Any``) and checks keywords and sampling modes."""

from __future__ import annotations

from typing import reveal_type

import numpy as np
import torch

import datumio
from datumio.adapters.jax import jax_loader, process_rank
from datumio.adapters.keras import KerasDataset
from datumio.adapters.tf import output_shapes, tf_dataset
from datumio.adapters.torch import MapDataset, TorchIterable, TorchSampler, collate

labels = np.repeat(np.arange(3), [30, 10, 5])
loader = datumio.Loader("out.lmdb", 64, workers=2)

# -- the classes are classes, not Any -----------------------------------------------------

reveal_type(TorchIterable)  # N: Revealed type is "def (loader: datumio.loader
reveal_type(TorchSampler)  # N: Revealed type is "def (object, Literal['natural'] | Literal['bal
reveal_type(KerasDataset)  # N: Revealed type is "def (loader: datumio.loader
reveal_type(jax_loader)  # N: Revealed type is "def (dataset: datumio.shards.dataset.Dataset
reveal_type(tf_dataset)  # N: Revealed type is "def (loader: datumio.loader
reveal_type(MapDataset)  # N: Revealed type is "def (path_or_dataset: datumio.shards.dataset.Dataset

# -- right calls ----------------------------------------------------------------------------

feed = TorchIterable(loader, device="cpu", dtype=torch.bfloat16, ahead=3, as_dict=True)
reveal_type(feed.device)  # N: Revealed type is "torch._C.device | None"
sampler = TorchSampler(labels, "power", power=0.5, seed=1, rank=0, world_size=2)
reveal_type(sampler.epoch)  # N: Revealed type is "int"
indices: list[int] = list(sampler)
pictures = MapDataset("out.lmdb", datumio.Transform(size=(64, 64)), split="val", seed=1)
reveal_type(pictures[0])  # N: Revealed type is "tuple[torch._tensor.Tensor, int] | dict[str
reveal_type(collate([pictures[0]]))  # N: Revealed type is "list[torch._tensor.Tensor] | dict[
TorchSampler(pictures, "natural")
TorchSampler(labels, weights={0: 1.0, 1: 2.0}, epoch_size=16, pad=True)
TorchSampler(labels, mode="natural", groups=labels)
TorchSampler(labels, None, stratified=True, batch_size=8)
keras_data = KerasDataset(loader, max_queue_size=4)
reveal_type(keras_data[0])  # N: Revealed type is "tuple[numpy.ndarray
with jax_loader("out.lmdb", 64, sampling="balanced", weights={0: 2.0}, workers=2) as jax_data:
    reveal_type(jax_data)  # N: Revealed type is "datumio.loader.loader.Loader"
rank, world = process_rank()
shapes = output_shapes(loader)

# -- wrong calls ----------------------------------------------------------------------------

TorchSampler(labels, sed=1)  # E: Unexpected keyword argument "sed" for "TorchSampler"
TorchSampler(labels, "balancd")  # E: Argument 2 to "TorchSampler" has incompatible type
TorchSampler(labels, mode="balancd")  # E: Argument "mode" to "TorchSampler" has incompatible
TorchSampler(labels, power="0.5")  # E: Argument "power" to "TorchSampler" has incompatible
TorchIterable(loader, devcie="cpu")  # E: Unexpected keyword argument "devcie" for "TorchIterable"
TorchIterable(loader, ahead="2")  # E: Argument "ahead" to "TorchIterable" has incompatible type
TorchIterable("out.lmdb")  # E: Argument 1 to "TorchIterable" has incompatible type "str"
MapDataset("out.lmdb", splt="val")  # E: Unexpected keyword argument "splt" for "MapDataset"
MapDataset("out.lmdb", (64, 64))  # E: Argument 2 to "MapDataset" has incompatible type
KerasDataset(loader, worker=2)  # E: Unexpected keyword argument "worker" for "KerasDataset"
jax_loader("out.lmdb", 64, workerz=2)  # E: Unexpected keyword argument "workerz" for "jax_loader"
jax_loader("out.lmdb", 64, sampling="balancd")  # E: Argument "sampling" to "jax_loader" has
tf_dataset("out.lmdb")  # E: Argument 1 to "tf_dataset" has incompatible type "str"
