"""The target of a run that makes a new dataset: build beside OUT, publish atomically.

The build directory is a fresh temporary beside OUT holding the run's ``plan.json``, or,
with ``resume``, the temporary of a dead run with the same plan (its finished shards are
reused). When the build is finished it is renamed to OUT in one step
(:func:`datumio.ingest.atomic.publish`; ``overwrite`` swaps it with the dataset there).
"""

from __future__ import annotations

from datumio.ingest import atomic
from datumio.ingest.options import IngestOptions
from datumio.ingest.pipeline import Events, Target, protected_paths, tidy_build_dir
from datumio.ingest.plan import Plan
from datumio.shards.manifest import Manifest


class NewDataset(Target):
    """Records of one run, from nothing, published at ``out`` (see the module docstring)."""

    def __init__(self, src: str, out: str, options: IngestOptions) -> None:
        self._src = src
        self._out = out
        self._options = options

    def build_dir(self, plan: Plan) -> str:
        return atomic.build_dir(self._out, plan, self._options.resume)

    def commit(self, tmp: str, manifest: Manifest, events: Events | None) -> Manifest:
        if events is not None:
            events("publish")
        # Only now: until here a killed run stays resumable with every shard.
        tidy_build_dir(tmp)
        protected = protected_paths(self._src, self._options)
        atomic.publish(tmp, self._out, self._options.overwrite, protected, events)
        return manifest
