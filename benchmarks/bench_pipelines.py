"""What an outside augmentation pipeline costs in datumio's workers, against the fused warp.

The input is the benchmark corpus resized once to a short side of 256 px, JPEG quality 90
(``benchmarks/bench_doors.py`` makes it in ``bench-out/doors/images`` from
``benchmarks/make_corpus.py``), ingested once with ``encode="keep"``. Each run is a Loader
(``workers=2``, batch 64, uint8 HWC out, shuffled natural order) in its own process, with
the same recipe three ways:

* ``datumio``: ``Transform(...)`` with datumio's own ops (one fused decode + warp);
* ``torchvision v2``: ``Transform(size=224, pipeline=v2.Compose([...]))``;
* ``albumentations``: ``Transform(size=224, pipeline=A.Compose([...]))``.

Recipes: ``crop`` (RandomResizedCrop 224, scale 0.08-1, + horizontal flip) and ``affine``
(shorter side to 224, centre crop 224, rotation +-15 degrees, horizontal flip). Rounds are
interleaved (each run once per round, the order rotated); the median images/s is reported.
Needs torchvision and albumentations (the ``test`` extra has both). Run it alone:
``flock /tmp/datumio-bench.lock python benchmarks/bench_pipelines.py --rounds 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 224
BATCH = 64
WARMUP = 4
SYSTEMS = ("datumio", "torchvision v2", "albumentations")
RECIPES = ("crop", "affine")


def transform(system: str, recipe: str) -> Any:
    """The recipe as ``system`` writes it, inside a datumio Transform."""
    import datumio

    out = {"size": SIZE, "dtype": "uint8", "layout": "HWC", "normalize": False}
    if system == "datumio":
        if recipe == "crop":
            return datumio.Transform(**out, crop_scale=(0.08, 1.0), flip=0.5)
        return datumio.Transform(**out, rotation_range=(-15, 15), flip=0.5)
    if system == "torchvision v2":
        from torchvision.transforms import v2

        steps = (
            [v2.RandomResizedCrop(SIZE, scale=(0.08, 1.0), antialias=True)]
            if recipe == "crop"
            else [v2.Resize(SIZE, antialias=True), v2.CenterCrop(SIZE), v2.RandomRotation(15)]
        )
        return datumio.Transform(**out, pipeline=v2.Compose([*steps, v2.RandomHorizontalFlip()]))
    import albumentations as A

    steps = (
        [A.RandomResizedCrop((SIZE, SIZE), scale=(0.08, 1.0))]
        if recipe == "crop"
        else [A.SmallestMaxSize(SIZE), A.CenterCrop(SIZE, SIZE), A.Rotate(limit=15, border_mode=0)]
    )
    return datumio.Transform(**out, pipeline=A.Compose([*steps, A.HorizontalFlip()]))


def run_one(dataset: str, system: str, recipe: str, batches: int) -> dict[str, float]:
    """One timed Loader run (called in a fresh process by :func:`main`)."""
    import datumio

    loader = datumio.Loader(
        dataset, BATCH, transform=transform(system, recipe), workers=2, sampling="natural"
    )

    def endless() -> Iterator[Any]:  # epoch after epoch (one is 60 batches)
        while True:
            yield from loader

    with loader:
        it = endless()
        for _ in range(WARMUP):
            next(it)
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        wall = time.perf_counter() - start
    return {"rate": batches * BATCH / wall}


def dataset_of(work: str) -> str:
    """The ``keep`` LMDB of the resized corpus (made once)."""
    sys.path.insert(0, os.path.join(_REPO, "benchmarks"))
    from bench_doors import prepare

    import datumio

    images, _ = prepare(work)
    out = os.path.join(work, "pipelines", "keep.lmdb")
    if not os.path.exists(out):
        datumio.ingest(images, out, workers=2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(_REPO, "bench-out"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=50, help="timed batches per run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("DATASET", "SYSTEM", "RECIPE"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.batches)))
        return 0
    dataset = dataset_of(args.work)
    runs = [(s, r) for r in RECIPES for s in SYSTEMS]
    rates: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    for i in range(args.rounds):
        for system, recipe in runs[i % len(runs) :] + runs[: i % len(runs)]:
            cmd = [sys.executable, __file__, "--batches", str(args.batches)]
            cmd += ["--one", dataset, system, recipe]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rates[(system, recipe)].append(json.loads(done.stdout.splitlines()[-1])["rate"])
    table = {
        f"{recipe} / {system}": {
            "img_s": statistics.median(rates[(system, recipe)]),
            "vs_datumio": statistics.median(rates[(system, recipe)])
            / statistics.median(rates[("datumio", recipe)]),
        }
        for system, recipe in runs
    }
    if args.json:
        print(json.dumps(table, indent=1))
    else:
        print(f"{'recipe / system':<32} {'img/s':>8} {'vs datumio':>11}")
        for name, row in table.items():
            print(f"{name:<32} {row['img_s']:>8,.0f} {row['vs_datumio']:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
