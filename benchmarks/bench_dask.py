"""Ingest on Dask against the local executor, and the cost of finalize for many shards.

a. ``datumio.ingest`` of the benchmark corpus (``encode="keep"`` and ``jpeg`` short side 256)
   with the local executor (2 processes) and with a Dask ``LocalCluster`` of 1 and 2
   single-threaded worker processes. The cluster is started before timing (its start-up
   is reported separately), so the rates compare the pipelines, not process start-up.
b. finalize for 10,000 synthetic sidecars (``--records-per-shard`` records each): reading
   every sidecar and writing the global index, stats and manifest.

Run it alone: ``flock /tmp/datumio-bench.lock python benchmarks/bench_dask.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

import datumio
from datumio.ingest.finalize import DatasetInfo, Records, read_sidecars, write_dataset
from datumio.ingest.sidecar import SIDECARS_DIR, save_sidecar
from datumio.shards import format as fmt

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS: dict[str, dict[str, Any]] = {
    "keep": {"encode": "keep"},
    "jpeg-short256": {"encode": "jpeg", "short_side": 256},
}


def ingest_rate(corpus: str, out: str, options: datumio.IngestOptions, executor: Any) -> float:
    start = time.perf_counter()
    report = datumio.ingest(corpus, out, options, executor=executor)
    return report.num_records / (time.perf_counter() - start)


def bench_ingest(corpus: str, out_dir: str, repeat: int) -> dict[str, Any]:
    import distributed

    rows: dict[str, dict[str, list[float]]] = {name: {} for name in CONFIGS}
    startup: list[float] = []
    for _ in range(repeat):
        for name, kwargs in CONFIGS.items():
            out = os.path.join(out_dir, f"dask-{name}.lmdb")
            local = datumio.IngestOptions(workers=2, overwrite=True, **kwargs)
            rows[name].setdefault("local-2", []).append(ingest_rate(corpus, out, local, None))
            for workers in (1, 2):
                t0 = time.perf_counter()
                with (
                    distributed.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                    ) as cluster,
                    distributed.Client(cluster) as client,
                ):
                    startup.append(time.perf_counter() - t0)
                    options = datumio.IngestOptions(workers=workers, overwrite=True, **kwargs)
                    executor = client.get_executor(pure=False)
                    rate = ingest_rate(corpus, out, options, executor)
                rows[name].setdefault(f"dask-{workers}", []).append(rate)
            shutil.rmtree(out, ignore_errors=True)
    return {
        "rates": {
            name: {k: round(statistics.median(v), 1) for k, v in r.items()}
            for name, r in rows.items()
        },
        "runs": rows,
        "cluster_start_s": round(statistics.median(startup), 2),
    }


def bench_finalize(shards: int, per_shard: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    root = tempfile.mkdtemp(prefix="datumio-finalize-")
    try:
        os.makedirs(os.path.join(root, SIDECARS_DIR))
        os.makedirs(os.path.join(root, fmt.SHARDS_DIR))
        t0 = time.perf_counter()
        sources = b"".join(f"c/{i:08d}.jpg".encode() for i in range(per_shard))
        for s in range(shards):
            name = fmt.shard_name(s, "lmdb")
            with open(os.path.join(root, fmt.SHARDS_DIR, name), "wb") as fh:
                fh.write(b"\0" * 4096)
            meta = {
                "shard": s,
                "file": f"{fmt.SHARDS_DIR}/{name}",
                "files": per_shard,
                "num_records": per_shard,
                "payload_bytes": per_shard * 100_000,
                "records_crc32": 0,
                "formats": {"JPEG": per_shard},
                "rejects": [],
            }
            arrays = {
                "labels": rng.integers(0, 1000, per_shard).astype("<i4"),
                "crc32": rng.integers(0, 2**32, per_shard).astype("<u4"),
                "shapes": np.full((per_shard, 3), (256, 320, 3), "<u4"),
                "source_offsets": np.arange(per_shard + 1, dtype="<i8") * 14,
                "sources": np.frombuffer(sources, np.uint8),
                "groups": np.zeros(0, "<i4"),
                "source_sizes": np.full((per_shard, 2), (500, 375), "<u4"),
                "histogram": rng.integers(0, 1000, (3, 256)).astype("<u8"),
            }
            save_sidecar(root, s, meta, arrays)
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        records = Records()
        read_sidecars(root, list(range(shards)), records)
        read = time.perf_counter() - t0
        info = DatasetInfo(
            src="/synthetic",
            kind="folders",
            backend="lmdb",
            options=datumio.IngestOptions(),
            class_names=[f"c{c}" for c in range(1000)],
            group_names=None,
            rejects=[],
        )
        t0 = time.perf_counter()
        write_dataset(root, fmt.INDEX_DIR, records, info)
        write = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "shards": shards,
        "records": shards * per_shard,
        "write_sidecars_s": round(made, 2),
        "read_sidecars_s": round(read, 2),
        "write_index_manifest_s": round(write, 2),
        "finalize_s": round(read + write, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=os.path.join(_REPO, "bench-out", "corpus"))
    parser.add_argument("--out", default=os.path.join(_REPO, "bench-out"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--records-per-shard", type=int, default=100)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args(argv)
    res: dict[str, Any] = {"load_avg": os.getloadavg(), "nproc": os.cpu_count()}
    if not args.skip_ingest:
        res["ingest"] = bench_ingest(args.corpus, args.out, args.repeat)
    res["finalize"] = bench_finalize(args.shards, args.records_per_shard)
    res["load_avg_end"] = os.getloadavg()
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
