"""Training from object storage through the local shard cache, against the same dataset local.

Starts an S3-compatible endpoint on loopback (moto's ``ThreadedMotoServer``), uploads a
dataset to it and runs the loader for ``--images`` images in three settings, each a fresh
process tree:

* ``local warm``: the dataset directory, its files read once before (in the page cache);
* ``s3 cold cache``: ``s3://`` with an empty cache limited to ``--cache-fraction`` of the
  dataset's shard bytes (least recently used shards evicted), the sampler's shard-window
  order on (``--locality``);
* ``s3 warm cache``: the same again with the cache left by the previous run.

Reported per run (one JSON line): images/s, MiB downloaded (the cache's landed shards) and
the ratio to ``local warm``. The recipe is ``bench_cold.py``'s full affine one (resize 256,
rotation, zoom, translation, flips, crop 224, float32 normalised), batch 64, 2 workers,
class-balanced. Needs the ``remote`` and ``test`` extras (fsspec, s3fs, moto[server]).

The dataset (``--data``, default ``bench-out/loader-short256.lmdb``) is built from the
corpus of ``benchmarks/make_corpus.py`` (``bench-out/corpus``) when missing:

    flock /tmp/datumio-bench.lock python benchmarks/bench_remote.py --images 3200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_cold import AUG, BATCH  # noqa: E402
from bench_loader import ensure_corpus, ensure_dataset  # noqa: E402

KEY, SECRET = "bench", "bench-secret"


def child(a: argparse.Namespace) -> dict[str, Any]:
    import datumio

    data: Any = a.data
    if a.endpoint:
        data = datumio.open(
            a.data,
            cache_dir=a.cache,
            cache_limit=a.cache_limit or None,
            storage_options={"endpoint_url": a.endpoint, "key": KEY, "secret": SECRET},
        )
    batches = a.images // BATCH
    loader = datumio.Loader(
        data,
        BATCH,
        transform=datumio.Transform(**AUG),
        workers=a.workers,
        epoch_size=BATCH * (batches + 1),
        seed=a.seed,
        locality=a.locality if a.endpoint else 0,
    )
    with loader:
        it = iter(loader)
        next(it)
        t0 = time.perf_counter()
        for _ in range(batches - 1):
            next(it)
        seconds = time.perf_counter() - t0
    return {"images_per_s": round((batches - 1) * BATCH / seconds, 1)}


def run_child(a: argparse.Namespace, data: str, **extra: Any) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", "--data", data]
    for name in ("images", "workers", "seed", "locality"):
        argv += [f"--{name}", str(getattr(a, name))]
    for name, value in extra.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cached_mib(cache: str) -> float:
    total = 0
    for folder, _, names in os.walk(cache):
        if os.path.basename(folder) == "shards":
            total += sum(os.path.getsize(os.path.join(folder, n)) for n in names)
    return round(total / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join("bench-out", "loader-short256.lmdb"))
    p.add_argument("--images", type=int, default=3200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--locality", type=int, default=4)
    p.add_argument("--cache-fraction", type=float, default=1 / 3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    p.add_argument("--cache", default="", help=argparse.SUPPRESS)
    p.add_argument("--cache-limit", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a)))
        return 0

    import s3fs
    from moto.server import ThreadedMotoServer

    if not os.path.exists(os.path.join(a.data, "manifest.json")):
        corpus = os.path.join("bench-out", "corpus")
        ensure_corpus(corpus)
        ensure_dataset(corpus, a.data, short_side=256, encode="jpeg")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    work = tempfile.mkdtemp(prefix="datumio-bench-remote-")
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY, secret=SECRET)
        fs.mkdir("bench")
        fs.put(a.data, "bench/data.lmdb", recursive=True)
        shard_bytes = sum(
            os.path.getsize(os.path.join(a.data, "shards", n))
            for n in os.listdir(os.path.join(a.data, "shards"))
        )
        limit = int(shard_bytes * a.cache_fraction)
        print(
            json.dumps(
                {
                    "what": "setup",
                    "shard_mib": round(shard_bytes / 2**20, 1),
                    "cache_limit_mib": round(limit / 2**20, 1),
                    "cpus": os.cpu_count(),
                }
            )
        )
        for name in os.listdir(os.path.join(a.data, "shards")):  # the local run reads warm
            with open(os.path.join(a.data, "shards", name), "rb") as fh:
                while fh.read(1 << 24):
                    pass
        local = run_child(a, a.data)["images_per_s"]
        print(json.dumps({"what": "run", "setting": "local warm", "images_per_s": local}))
        cache = os.path.join(work, "cache")
        for setting in ("s3 cold cache", "s3 warm cache"):
            row = run_child(
                a, "s3://bench/data.lmdb", endpoint=endpoint, cache=cache, cache_limit=limit
            )
            row.update(
                setting=setting,
                what="run",
                cached_mib=cached_mib(cache),
                of_local=round(row["images_per_s"] / local, 3),
            )
            print(json.dumps(row))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
