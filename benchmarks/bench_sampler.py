"""Benchmark the label-balanced sampler at 10M / 100M labels with a long-tailed 1,000 classes.

Measures, per dataset size:

* ``stored_index``: build a Sampler from a dataset whose class index (``class_offsets``,
  ``class_ids``) is memory-mapped from ``.npy`` files, and produce the first batch;
* ``raw_labels``: build from a raw int64 labels array (one bincount + one radix-sort pass to
  group ids by class) and produce the first batch;
* ``natural``: natural mode from raw labels (no class index) and the first batch;
* steady cost per batch of ``batches(256)`` for balanced, stratified and natural modes;
* for reference, ``np.argsort(labels, kind="stable")`` on int64 labels (timsort) at 10M only,
  and ``torch.utils.data.WeightedRandomSampler`` where torch is installed and runs.

Usage::

    python benchmarks/bench_sampler.py [--sizes 10000000,100000000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from datumio.sampling import Sampler
from datumio.sampling._quotas import build_class_index, count_classes


def long_tail_labels(n: int, classes: int, seed: int = 0) -> np.ndarray:
    """Shuffled int64 labels with class sizes proportional to 1 / (c + 1) ** 1.1."""
    p = 1.0 / np.arange(1, classes + 1) ** 1.1
    counts = np.floor(p / p.sum() * n).astype(np.int64)
    counts[0] += n - counts.sum()
    labels = np.repeat(np.arange(classes, dtype=np.int64), counts)
    np.random.default_rng(seed).shuffle(labels)
    return labels


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def per_batch_ms(sampler: Sampler, batch: int, count: int) -> float:
    it = sampler.batches(batch)
    next(it)  # warm the key cache
    start = time.perf_counter()
    for _ in range(count):
        next(it)
    return (time.perf_counter() - start) / count * 1e3


def bench_torch(labels: np.ndarray, batch: int, count: int) -> dict[str, Any]:
    try:
        import torch
        from torch.utils.data import WeightedRandomSampler
    except ImportError:
        return {"status": "torch not installed"}
    counts = np.bincount(labels)
    try:
        start = time.perf_counter()
        weights = torch.from_numpy(1.0 / counts[labels])
        sampler = WeightedRandomSampler(weights, num_samples=labels.size, replacement=True)
        it = iter(sampler)
        first = [next(it) for _ in range(batch)]
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(count):
            first = [next(it) for _ in range(batch)]
        steady_ms = (time.perf_counter() - start) / count * 1e3
    except RuntimeError as exc:  # torch.multinomial caps categories at 2**24
        message = str(exc).splitlines()[0]
        return {"status": "fails: 2^24 cap" if "2^24" in message else f"fails: {message[:60]}"}
    del weights, sampler, it, first
    return {"status": "ok", "first_batch_s": first_s, "per_batch_ms": steady_ms}


def bench_size(n: int, classes: int, batch: int, count: int, tmp: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"n": n, "classes": classes, "batch": batch}
    labels, row["make_labels_s"] = timed(long_tail_labels, n, classes)
    counts = count_classes(labels, None, "labels")
    row["smallest_class"] = int(counts.min())
    (offsets, ids), row["index_build_s"] = timed(build_class_index, labels, counts)
    np.save(tmp / "labels.npy", labels)
    np.save(tmp / "class_offsets.npy", offsets)
    np.save(tmp / "class_ids.npy", ids)
    del offsets, ids
    gc.collect()
    dataset = SimpleNamespace(
        labels=np.load(tmp / "labels.npy", mmap_mode="r"),
        class_offsets=np.load(tmp / "class_offsets.npy", mmap_mode="r"),
        class_ids=np.load(tmp / "class_ids.npy", mmap_mode="r"),
        num_classes=classes,
    )

    def first(source: object, **kw: Any) -> Sampler:
        sampler = Sampler(source, seed=1, rank=0, world_size=1, **kw)
        next(sampler.batches(batch))
        return sampler

    stored, row["stored_index_first_batch_s"] = timed(first, dataset)
    row["stored_index_per_batch_ms"] = per_batch_ms(stored, batch, count)
    del stored
    raw, row["raw_labels_first_batch_s"] = timed(first, labels)
    row["balanced_per_batch_ms"] = per_batch_ms(raw, batch, count)
    del raw
    gc.collect()
    strat = first(dataset, stratified=True, batch_size=batch, power=0.5)
    row["stratified_per_batch_ms"] = per_batch_ms(strat, batch, count)
    del strat
    natural, row["natural_first_batch_s"] = timed(first, labels, mode="natural")
    row["natural_per_batch_ms"] = per_batch_ms(natural, batch, count)
    del natural
    if n <= 20_000_000:
        _, row["argsort_int64_stable_s"] = timed(np.argsort, labels, kind="stable")
    torch_row = bench_torch(labels, batch, max(count // 20, 10))
    row.update({f"torch_{k}": v for k, v in torch_row.items()})
    del labels, dataset
    gc.collect()
    return row


COLUMNS = [
    ("n", "{:,}"),
    ("index_build_s", "{:.2f}"),
    ("stored_index_first_batch_s", "{:.3f}"),
    ("raw_labels_first_batch_s", "{:.2f}"),
    ("natural_first_batch_s", "{:.3f}"),
    ("balanced_per_batch_ms", "{:.3f}"),
    ("stored_index_per_batch_ms", "{:.3f}"),
    ("stratified_per_batch_ms", "{:.3f}"),
    ("natural_per_batch_ms", "{:.3f}"),
    ("argsort_int64_stable_s", "{:.2f}"),
    ("torch_first_batch_s", "{:.2f}"),
    ("torch_per_batch_ms", "{:.3f}"),
    ("torch_status", "{}"),
]


def render(rows: list[dict[str, Any]]) -> str:
    lines = []
    for key, fmt in COLUMNS:
        cells = [fmt.format(r[key]) if key in r else "-" for r in rows]
        lines.append(f"{key:<30}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000000,100000000")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=2000, help="batches timed per mode")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sampler_") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(bench_size(size, args.classes, args.batch, args.batches, Path(tmp)))
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
    else:
        print(json.dumps(meta))
        print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
