"""Label-balanced sampling: exact per-epoch quotas, keyed permutations, no I/O.

See docs/sampling.md for the design and the distributed, stratified and resume rules.
"""

from __future__ import annotations

from datumio.sampling._class_index import ClassIndex
from datumio.sampling._multilabel import rarest_label
from datumio.sampling._options import (
    MODES,
    ClassWeights,
    Mode,
    SamplerKeywords,
    SamplerOptions,
    given_way,
)
from datumio.sampling._plan import SamplingPlan
from datumio.sampling._resample import resample_data
from datumio.sampling._sampler import Sampler
from datumio.sampling._weights import resolve_weights

__all__ = [
    "MODES",
    "ClassIndex",
    "ClassWeights",
    "Mode",
    "Sampler",
    "SamplerKeywords",
    "SamplerOptions",
    "SamplingPlan",
    "given_way",
    "rarest_label",
    "resample_data",
    "resolve_weights",
]
