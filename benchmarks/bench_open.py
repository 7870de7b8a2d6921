"""Time ``datumio.open`` + ``len`` + the first ``class_index`` on 10M- and 100M-record datasets.

The datasets are synthetic: a full-size global index and a manifest, no shard files (opening
must not read a record, so none is needed). ``labels``, ``class_offsets``, ``class_ids``,
``shard_offsets`` and ``shapes`` are written in full (about 24 bytes per record: 2.4 GB at
100M); ``source_offsets`` is a sparse all-zero file and ``sources`` is empty. They go under
``--dir`` (default /tmp) and are deleted afterwards unless ``--keep``.

Each size is timed once "cold" (the index files' pages dropped from the page cache with
``posix_fadvise(DONTNEED)`` after a sync) and ``--repeat`` times warm. When the sampler is
available the time to the first balanced batch plan (``datumio.sampling.Sampler``, batch 64)
is reported too (target: open + first balanced plan at 100M under 1 s).

Run it alone: ``flock /tmp/datumio-bench.lock python benchmarks/bench_open.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

import datumio
from datumio.shards import format as fmt

_CHUNK = 1 << 22


def write_dataset(root: str, n: int, num_classes: int, num_shards: int) -> float:
    """Write the synthetic index and manifest; returns the seconds it took."""
    start = time.perf_counter()
    index = os.path.join(root, fmt.INDEX_DIR)
    os.makedirs(index)
    open_memmap = np.lib.format.open_memmap

    def path(name: str) -> str:
        return os.path.join(index, name)

    labels = open_memmap(path(fmt.LABELS), mode="w+", dtype=fmt.LABEL_DTYPE, shape=(n,))
    step = _CHUNK - _CHUNK % num_classes
    pattern = np.tile(np.arange(num_classes, dtype=np.int32), step // num_classes)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        labels[lo:hi] = pattern[: hi - lo]  # label of id i is i % num_classes
    labels.flush()
    del labels
    counts = np.array([len(range(c, n, num_classes)) for c in range(num_classes)])
    offsets = np.zeros(num_classes + 1, dtype=fmt.ID_DTYPE)
    np.cumsum(counts, out=offsets[1:])
    np.save(path(fmt.CLASS_OFFSETS), offsets, allow_pickle=False)
    ids = open_memmap(path(fmt.CLASS_IDS), mode="w+", dtype=fmt.ID_DTYPE, shape=(n,))
    for c in range(num_classes):
        ids[offsets[c] : offsets[c + 1]] = np.arange(c, n, num_classes, dtype=np.int64)
    ids.flush()
    del ids
    shard_offsets = np.linspace(0, n, num_shards + 1).astype(fmt.ID_DTYPE)
    np.save(path(fmt.SHARD_OFFSETS), shard_offsets, allow_pickle=False)
    shapes = open_memmap(path(fmt.SHAPES), mode="w+", dtype=fmt.SHAPE_DTYPE, shape=(n, 3))
    row = np.array([256, 341, 3], dtype=np.uint32)
    for lo in range(0, n, _CHUNK):
        shapes[lo : min(n, lo + _CHUNK)] = row
    shapes.flush()
    del shapes
    so = open_memmap(path(fmt.SOURCE_OFFSETS), mode="w+", dtype=fmt.ID_DTYPE, shape=(n + 1,))
    so.flush()
    del so
    np.save(path(fmt.SOURCES), np.zeros(0, dtype=np.uint8), allow_pickle=False)
    names = [fmt.LABELS, fmt.CLASS_OFFSETS, fmt.CLASS_IDS, fmt.SHARD_OFFSETS, fmt.SHAPES]
    names += [fmt.SOURCE_OFFSETS, fmt.SOURCES]
    manifest = {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "backend": "lmdb",
        "encoding": "jpeg",
        "num_records": n,
        "num_classes": num_classes,
        "class_names": [f"class_{c:05d}" for c in range(num_classes)],
        "class_counts": counts.tolist(),
        "shards": [
            {
                "file": f"{fmt.SHARDS_DIR}/{fmt.shard_name(s, 'lmdb')}",
                "first_id": int(shard_offsets[s]),
                "num_records": int(shard_offsets[s + 1] - shard_offsets[s]),
                "payload_bytes": 0,
                "file_bytes": 0,
                "records_crc32": 0,
            }
            for s in range(num_shards)
        ],
        "index": {name.removesuffix(".npy"): f"{fmt.INDEX_DIR}/{name}" for name in names},
    }
    with open(os.path.join(root, fmt.MANIFEST), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    return time.perf_counter() - start


def drop_page_cache(root: str) -> None:
    """Evict the dataset's clean pages (no root needed; best effort)."""
    os.sync()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _sampler_class() -> Any:
    try:
        from datumio.sampling import Sampler
    except ImportError:
        return None
    return Sampler


def time_open(root: str, sampler_cls: Any) -> dict[str, float]:
    """Seconds for each step, in order, on a fresh ``datumio.open``."""
    t0 = time.perf_counter()
    ds = datumio.open(root)
    t1 = time.perf_counter()
    n = len(ds)
    t2 = time.perf_counter()
    members = ds.class_index(0)
    first, last = int(members[0]), int(members[-1])
    t3 = time.perf_counter()
    copied = np.array(ds.class_index(ds.num_classes - 1))
    t4 = time.perf_counter()
    out = {
        "open_s": t1 - t0,
        "len_s": t2 - t1,
        "class_index_s": t3 - t2,
        "class_index_copy_s": t4 - t3,
        "open_len_class_index_s": t3 - t0,
    }
    if n < 1 or first < 0 or last >= n or copied.size == 0:
        raise RuntimeError("the synthetic dataset is inconsistent")
    if sampler_cls is not None:
        t5 = time.perf_counter()
        try:
            sampler = sampler_cls(ds, "balanced", seed=0, rank=0, world_size=1)
            batch = next(iter(sampler.batches(64)))
        except Exception as exc:  # the sampler is optional here; report, do not fail
            out["sampler_error"] = f"{type(exc).__name__}: {exc}"  # type: ignore[assignment]
        else:
            t6 = time.perf_counter()
            if len(batch) != 64:
                raise RuntimeError(f"first batch has {len(batch)} ids")
            out["first_balanced_plan_s"] = t6 - t5
            out["open_to_first_plan_s"] = (t1 - t0) + (t6 - t5)
    ds.close()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    sampler_cls = _sampler_class()
    rows = []
    for n in args.sizes:
        base = tempfile.mkdtemp(prefix="datumio-bench-open-", dir=args.dir)
        root = os.path.join(base, f"synthetic-{n}.lmdb")
        os.makedirs(root)
        try:
            write_s = write_dataset(root, n, args.classes, args.shards)
            index_bytes = sum(
                os.path.getsize(os.path.join(root, fmt.INDEX_DIR, f))
                for f in os.listdir(os.path.join(root, fmt.INDEX_DIR))
            )
            drop_page_cache(root)
            cold = time_open(root, sampler_cls)
            warm = [time_open(root, sampler_cls) for _ in range(args.repeat)]
        finally:
            if not args.keep:
                shutil.rmtree(base, ignore_errors=True)
        row: dict[str, Any] = {
            "records": n,
            "classes": args.classes,
            "shards": args.shards,
            "index_bytes": index_bytes,
            "write_s": round(write_s, 2),
            "cold": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in cold.items()},
        }
        for key in warm[0]:
            if isinstance(warm[0][key], float):
                row.setdefault("warm_median", {})[key] = round(
                    statistics.median(w[key] for w in warm), 6
                )
        rows.append(row)
    return {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "datumio": datumio.__version__,
            "load_avg": [round(v, 2) for v in os.getloadavg()],
        },
        "repeat": args.repeat,
        "results": rows,
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{1000 * value:.2f}"


def print_table(res: dict[str, Any]) -> None:
    m = res["machine"]
    print(
        f"machine: {m['nproc']} cores, Python {m['python']}, numpy {m['numpy']}, "
        f"datumio {m['datumio']}; load {m['load_avg']}; warm = median of {res['repeat']}"
    )
    head = (
        f"{'records':>12}{'index':>10}{'':>6}{'open ms':>9}{'len ms':>8}{'cls_idx ms':>11}"
        f"{'copy ms':>9}{'total ms':>10}{'plan ms':>9}{'open+plan':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in res["results"]:
        for label, t in (("cold", r["cold"]), ("warm", r["warm_median"])):
            print(
                f"{r['records']:>12,}{r['index_bytes'] / 1e9:>8.2f}GB{label:>6}"
                f"{_ms(t['open_s']):>9}{_ms(t['len_s']):>8}{_ms(t['class_index_s']):>11}"
                f"{_ms(t['class_index_copy_s']):>9}{_ms(t['open_len_class_index_s']):>10}"
                f"{_ms(t.get('first_balanced_plan_s')):>9}{_ms(t.get('open_to_first_plan_s')):>11}"
            )
        if "sampler_error" in r["cold"]:
            print(f"  sampler: {r['cold']['sampler_error']}")
    print(
        "total = open + len + class_index(0) (a view; first and last id read); copy = "
        "np.array(class_index(C-1)); plan = balanced Sampler + first batch of 64"
    )


def _sizes(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[10_000_000, 100_000_000])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default="/tmp", help="where the synthetic datasets go")
    parser.add_argument("--keep", action="store_true", help="do not delete the datasets")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    res = run(args)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
