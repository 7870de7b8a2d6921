"""HDF5 shards from object storage: whole-shard download against byte-range reads.

Starts an S3-compatible endpoint on loopback (moto's ``ThreadedMotoServer``), uploads an
HDF5 dataset and, for a growing fraction of one shard's records (drawn at random), reads
them two ways, each from a cold start (a new filesystem, nothing cached):

* ``whole``: download the shard (what the shard cache does), open it, read the records;
* ``ranges``: open the shard with h5py over an fsspec file (``fs.open``, read-ahead block
  cache of ``--block-kib``), read the records: only the metadata and chunks they lie in
  cross the network.

Reported per fraction (one JSON line): seconds per shard for each way, MiB that crossed the
loopback interface, and which was faster. Needs the ``remote`` and ``test`` extras.

The dataset (``--data``, default ``bench-out/ranges-1000.h5``) is ingested with
``--short-side 256 --encode jpeg --shuffle`` and ``--shard-records`` (default 1000: shards of
about 25 MiB) from ``bench-out/corpus`` (``make_corpus.py``) when missing:

    flock /tmp/datumio-bench.lock python benchmarks/bench_ranges.py --shards 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_loader import ensure_corpus, ensure_dataset  # noqa: E402
from bench_remote import loopback_bytes, s3_endpoint  # noqa: E402


def read_whole(fs: Any, remote: str, local: str, ids: np.ndarray) -> int:
    import h5py

    fs.get_file(remote, local)
    with h5py.File(local, "r") as f:
        offsets = f["payload_offsets"][()]
        payload = f["payload"]
        got = sum(len(payload[offsets[i] : offsets[i + 1]]) for i in ids)
    os.unlink(local)
    return got


def read_ranges(fs: Any, remote: str, ids: np.ndarray, block: int) -> int:
    import h5py

    with (
        fs.open(remote, "rb", block_size=block, cache_type="readahead") as fh,
        h5py.File(fh, "r") as f,
    ):
        offsets = f["payload_offsets"][()]
        payload = f["payload"]
        return sum(len(payload[offsets[i] : offsets[i + 1]]) for i in np.sort(ids))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join("bench-out", "ranges-1000.h5"))
    p.add_argument("--shard-records", type=int, default=1000, help="of a dataset built here")
    p.add_argument("--corpus", default=os.path.join("bench-out", "corpus"))
    p.add_argument("--shards", type=int, default=4, help="shards read per fraction")
    p.add_argument("--block-kib", type=int, default=256)
    p.add_argument("--fractions", default="0.01,0.05,0.1,0.25,0.5,1")
    a = p.parse_args(argv)

    import s3fs

    import datumio

    if not os.path.exists(os.path.join(a.data, "manifest.json")):
        ensure_corpus(a.corpus)
        ensure_dataset(
            a.corpus,
            a.data,
            short_side=256,
            encode="jpeg",
            shuffle=True,
            shard_records=a.shard_records,
        )
    ds = datumio.open(a.data)
    work = tempfile.mkdtemp(prefix="datumio-bench-ranges-")
    try:
        with s3_endpoint() as options:
            s3fs.S3FileSystem(**options).put(a.data, "bench/data.h5", recursive=True)
            measure(a, ds, options, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def measure(a: argparse.Namespace, ds: Any, options: dict[str, str], work: str) -> None:
    """One JSON line per fraction: seconds and MiB moved, whole shard against ranges."""
    import s3fs

    shards = list(range(min(a.shards, ds.num_shards)))
    mib = sum(ds.manifest.shards[s].file_bytes for s in shards) / len(shards) / 2**20
    print(json.dumps({"what": "setup", "shards": len(shards), "shard_mib": round(mib, 2)}))
    rng = np.random.default_rng(0)
    for fraction in (float(f) for f in a.fractions.split(",")):
        row: dict[str, Any] = {"what": "run", "fraction": fraction}
        for way in ("whole", "ranges"):
            seconds = moved = 0.0
            for s in shards:
                n = int(ds.shard_offsets[s + 1] - ds.shard_offsets[s])
                ids = rng.choice(n, max(1, round(n * fraction)), replace=False)
                fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
                remote = f"bench/data.h5/{ds.manifest.shards[s].file}"
                sent, t0 = loopback_bytes(), time.perf_counter()
                if way == "whole":
                    read_whole(fs, remote, os.path.join(work, "shard.h5"), ids)
                else:
                    read_ranges(fs, remote, ids, a.block_kib * 1024)
                seconds += time.perf_counter() - t0
                moved += loopback_bytes() - sent
            row[f"{way}_s"] = round(seconds / len(shards), 4)
            row[f"{way}_mib"] = round(moved / len(shards) / 2**20, 2)
        row["faster"] = "ranges" if row["ranges_s"] < row["whole_s"] else "whole"
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
