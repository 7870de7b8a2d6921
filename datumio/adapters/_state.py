"""Checkpoint states of the adapters: a Loader's state at the batches a loop received.

The adapters' ``state_dict()`` return :meth:`datumio.Loader.state_dict`'s format, so a
state saved through one adapter loads into a bare Loader or another adapter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from datumio.loader import Loader


def plain(state: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy made of JSON types only (tuples become lists): safe to keep while the
    loader moves on, and to store with ``json.dump`` or ``torch.save`` (loadable with
    ``torch.load(weights_only=True)``)."""
    out: dict[str, Any] = json.loads(json.dumps(dict(state)))
    return out


def moved(loader: Loader, epoch: int, position: int) -> dict[str, Any]:
    """``loader.state_dict()`` with its place set to ``position`` records into ``epoch``."""
    state = loader.state_dict()
    sampler = dict(state["sampler"])
    state["epoch"] = sampler["epoch"] = int(epoch)
    state["position"] = sampler["position"] = int(position)
    state["sampler"] = sampler
    return plain(state)
