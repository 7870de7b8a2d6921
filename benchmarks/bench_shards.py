"""Reading a dataset of thousands of small shards with a bounded set of open shards.

Every open shard holds file descriptors (its LMDB environment or HDF5 file, and the fd its
read-ahead hints go through), so a process keeps at most ``max_open_shards`` of them open
and closes the least recently used one to open another. This measures what that costs:

* ``open``: opening one shard (reader, info, identity check) and reading its record lists,
  per shard, the price of every miss;
* ``random``: ``ds.stored(i)`` (payload read, CRC32, label and shape checks; no decode)
  over every record in a shuffled order, for each bound: with every shard open (the fast
  path, nothing ever closed) and with bounds far below the shard count; the best of
  ``--repeat`` passes (as ``timeit`` reports), a pass being a few hundredths of a second;
* ``loader``: one shuffled epoch through ``datumio.Loader`` (2 workers, a 56x56 resize,
  batch 64) for the same bounds, the median of ``--repeat`` epochs.

The data is drawn here: ``--images`` 64x64 JPEGs in 20 classes, ingested with
``--shard-records`` records per shard (default 4,000 images in 2,000 shards of 2), under
``--dir`` (default ``bench-out/shards``; reused when present, ``--fresh`` rebuilds).

Run it alone: ``flock /tmp/datumio-bench.lock python benchmarks/bench_shards.py``. With an
older datumio without the bound (``datumio.open`` has no ``max_open_shards``), only the
all-open figures are measured, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from typing import Any

import numpy as np
from PIL import Image

import datumio


def build(root: str, images: int, shard_records: int) -> str:
    out = os.path.join(root, "many.lmdb")
    if os.path.isdir(out):
        return out
    src = os.path.join(root, "src")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    for k in range(images):
        label = k % 20
        folder = os.path.join(src, f"c{label:02d}")
        os.makedirs(folder, exist_ok=True)
        cy, cx = rng.integers(8, 56, 2)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < 9 + label * 8)[..., None]
        pixels = np.where(blob, rng.integers(0, 255, 3), rng.integers(0, 80, (64, 64, 3)))
        Image.fromarray(pixels.astype(np.uint8)).save(
            os.path.join(folder, f"{k:05d}.jpg"), quality=90
        )
    options = datumio.IngestOptions(shard_records=shard_records, workers=2)
    datumio.ingest(src, out, options)
    shutil.rmtree(src)
    return out


def _open(path: str, bound: int | None) -> datumio.Dataset:
    if bound is None:
        return datumio.open(path)
    return datumio.open(path, max_open_shards=bound)


def time_opens(path: str) -> float:
    """Milliseconds to open one shard and read its record lists (every shard once)."""
    ds = datumio.open(path)
    start = time.perf_counter()
    for shard in range(ds.num_shards):
        ds.shard_crc32(shard)
    seconds = time.perf_counter() - start
    ds.close()
    return 1000 * seconds / ds.num_shards


def time_random(path: str, bound: int | None, order: np.ndarray) -> float:
    """Records per second of ``stored`` over ``order`` (the shard lists read beforehand,
    so that every bound pays only for its reopens)."""
    ds = _open(path, bound)
    for shard in range(ds.num_shards):
        ds.shard_crc32(shard)
    start = time.perf_counter()
    for i in order:
        ds.stored(int(i))
    seconds = time.perf_counter() - start
    ds.close()
    return len(order) / seconds


def time_loader(path: str, bound: int | None) -> float:
    spec = datumio.Transform(size=(56, 56))
    extra = {} if bound is None else {"max_open_shards": bound}
    with datumio.Loader(
        path, 64, transform=spec, workers=2, sampling="natural", seed=1, **extra
    ) as loader:
        loader.start()
        start = time.perf_counter()
        n = sum(len(labels) for _, labels in loader)
        return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="bench-out/shards")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--shard-records", type=int, default=2)
    parser.add_argument("--bounds", default="all,512,64,8", help="max_open_shards values")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the dataset")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.fresh:
        shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(args.dir, exist_ok=True)
    path = build(args.dir, args.images, args.shard_records)
    with datumio.open(path) as ds:
        shards, records = ds.num_shards, len(ds)
    try:
        datumio.open(path, max_open_shards=8).close()
        bounds = [None if b == "all" else int(b) for b in args.bounds.split(",")]
    except TypeError:  # a datumio without the bound: every shard stays open
        bounds = [None]
    order = np.random.default_rng(1).permutation(records)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}",
        "python": sys.version.split()[0],
        "datumio": datumio.__version__,
        "shards": shards,
        "records": records,
        "open_ms": statistics.median(time_opens(path) for _ in range(args.repeat)),
        "random": {},
        "loader": {},
    }
    for bound in bounds:
        name = "all" if bound is None else str(bound)
        rounds = [time_random(path, bound, order) for _ in range(args.repeat)]
        result["random"][name] = max(rounds)
        rounds = [time_loader(path, bound) for _ in range(args.repeat)]
        result["loader"][name] = statistics.median(rounds)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['machine']}; python {result['python']}; datumio {result['datumio']}")
    print(f"{records} records in {shards} shards; one shard open: {result['open_ms']:.3f} ms")
    print(f"{'max_open_shards':>16} {'stored() rec/s':>15} {'loader img/s':>13}")
    for name in result["random"]:
        print(f"{name:>16} {result['random'][name]:>15,.0f} {result['loader'][name]:>13,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
