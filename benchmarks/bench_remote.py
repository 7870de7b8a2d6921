"""Training from object storage through the local shard cache, against the same dataset local.

Starts an S3-compatible endpoint on loopback (moto's ``ThreadedMotoServer``), uploads a
dataset (and, for the PyTorch peer, its source corpus) and runs one loader for
``--images`` images in each setting, each a fresh process tree:

* ``local warm``: the dataset directory, its files read once before (in the page cache);
* ``s3 cold cache``: ``s3://`` with an empty cache limited to ``--cache-fraction`` of the
  dataset's shard bytes (least recently used shards not in use are evicted);
* ``s3 warm cache``: the same again with the cache the previous run left;
* ``torch local`` and ``torch s3``: the PyTorch peer (``ImageFolder``-style dataset of the
  corpus's JPEG files, ``WeightedRandomSampler``, ``DataLoader``), the second reading every
  file from the endpoint with fsspec (s3fs), the nearest equivalent installable here.

datumio runs the sampler's shard-window order in lockstep (``--locality``, ``lockstep=True``)
in every setting, so the local and remote runs draw the same batches; each run reports a
hash of its batches' ids, labels and a pixel sample, and ``same_batches`` says whether the
remote runs equal the local one.

Reported per run (one JSON line): images/s, the ratio to datumio's ``local warm``, MiB that
crossed the loopback interface (downloads) and the peak size of the cache's shards
(sampled every 20 ms). The recipe is ``bench_cold.py``'s full affine one (resize 256,
rotation, zoom, translation, flips, crop 224, float32 normalised), batch 64, 2 workers,
class-balanced. Needs the ``remote`` and ``test`` extras (fsspec, s3fs, moto[server]) and,
for the peer, torch and torchvision (skipped with a note when missing).

The dataset (``--data``, default ``bench-out/remote-short256.lmdb``) is ingested with
``--short-side 256 --encode jpeg --shuffle`` from the corpus of ``benchmarks/make_corpus.py``
(``bench-out/corpus``) when missing:

    flock /tmp/datumio-bench.lock python benchmarks/bench_remote.py --images 9600
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_cold import AUG, BATCH, peer_transform  # noqa: E402
from bench_loader import ensure_corpus, ensure_dataset  # noqa: E402

KEY, SECRET = "bench", "bench-secret"


def child_datumio(a: argparse.Namespace) -> dict[str, Any]:
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
        locality=a.locality,
        lockstep=True,
        extras=("ids",),
    )
    digest = hashlib.sha256()
    with loader:
        it = iter(loader)
        next(it)  # start-up is not what is measured
        t0 = time.perf_counter()
        for _ in range(batches - 1):
            images, labels, ids = next(it)
            digest.update(ids.tobytes())
            digest.update(labels.tobytes())
            digest.update(images[:, ::16, ::16].tobytes())
        seconds = time.perf_counter() - t0
    return {"images_per_s": round((batches - 1) * BATCH / seconds, 1), "hash": digest.hexdigest()}


def child_torch(a: argparse.Namespace) -> dict[str, Any]:
    import io

    import torch
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

    tf = peer_transform()
    classes = sorted(d for d in os.listdir(a.corpus) if os.path.isdir(os.path.join(a.corpus, d)))
    files = [
        (f"{c}/{n}", i)
        for i, c in enumerate(classes)
        for n in sorted(os.listdir(os.path.join(a.corpus, c)))
    ]
    endpoint = a.endpoint

    class Files(Dataset):  # type: ignore[type-arg]
        """The corpus's files, read locally or with fsspec from the endpoint."""

        fs: Any = None

        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int) -> tuple[Any, int]:
            relative, label = files[i]
            if endpoint:
                if Files.fs is None:  # one filesystem per worker process
                    import s3fs

                    Files.fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY, secret=SECRET)
                data = Files.fs.cat_file(f"bench/corpus/{relative}")
            else:
                with open(os.path.join(a.corpus, relative), "rb") as fh:
                    data = fh.read()
            return tf(Image.open(io.BytesIO(data)).convert("RGB")), label

    targets = torch.tensor([label for _, label in files])
    weights = (1.0 / torch.bincount(targets).double())[targets]
    batches = a.images // BATCH
    sampler = WeightedRandomSampler(
        weights, BATCH * (batches + 1), generator=torch.Generator().manual_seed(a.seed)
    )
    loader = DataLoader(Files(), BATCH, sampler=sampler, num_workers=a.workers)
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches - 1):
        next(it)
    return {"images_per_s": round((batches - 1) * BATCH / (time.perf_counter() - t0), 1)}


@contextlib.contextmanager
def s3_endpoint() -> Iterator[dict[str, str]]:
    """An S3-compatible endpoint on loopback (moto) with a bucket ``bench``; the s3fs
    options that reach it. Stopped on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"endpoint_url": f"http://{host}:{port}", "key": KEY, "secret": SECRET}
        import s3fs

        s3fs.S3FileSystem(**options).mkdir("bench")
        yield options
    finally:
        server.stop()


def loopback_bytes() -> int:
    """Bytes sent over the loopback interface so far (``/proc/net/dev``)."""
    with open("/proc/net/dev") as fh:
        for line in fh:
            name, _, fields = line.partition(":")
            if name.strip() == "lo":
                return int(fields.split()[8])  # transmit bytes
    return 0


def shard_bytes_in(cache: str) -> int:
    total = 0
    for folder, _, names in os.walk(cache):
        if os.path.basename(folder) == "shards":
            for n in names:
                with contextlib.suppress(OSError):  # evicted while we looked
                    total += os.path.getsize(os.path.join(folder, n))
    return total


def run_child(
    a: argparse.Namespace, kind: str, data: str, cache: str = "", **extra: Any
) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", kind, "--data", data, "--corpus", a.corpus]
    for name in ("images", "workers", "seed", "locality"):
        argv += [f"--{name}", str(getattr(a, name))]
    for name, value in extra.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    if cache:
        argv += ["--cache", cache]
    peak = [0]
    done_event = threading.Event()

    def watch() -> None:  # the cache's high-water mark while the run goes
        while not done_event.wait(0.02):
            peak[0] = max(peak[0], shard_bytes_in(cache))

    watcher = threading.Thread(target=watch, daemon=True)
    if cache:
        watcher.start()
    sent = loopback_bytes()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    moved = loopback_bytes() - sent
    done_event.set()
    if cache:
        watcher.join()
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    row = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    row["loopback_mib"] = round(moved / 2**20, 1)
    if cache:
        row["peak_cache_mib"] = round(peak[0] / 2**20, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join("bench-out", "remote-short256.lmdb"))
    p.add_argument("--corpus", default=os.path.join("bench-out", "corpus"))
    p.add_argument("--images", type=int, default=9600)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--locality", type=int, default=1)
    p.add_argument("--cache-fraction", type=float, default=1 / 3)
    p.add_argument("--no-peer", action="store_true", help="skip the PyTorch peer")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    p.add_argument("--cache", default="", help=argparse.SUPPRESS)
    p.add_argument("--cache-limit", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child_torch(a) if a.child == "torch" else child_datumio(a)))
        return 0

    if not os.path.exists(os.path.join(a.data, "manifest.json")):
        ensure_corpus(a.corpus)
        ensure_dataset(a.corpus, a.data, short_side=256, encode="jpeg", shuffle=True)
    peer = not a.no_peer and all(importlib.util.find_spec(m) for m in ("torch", "torchvision"))
    work = tempfile.mkdtemp(prefix="datumio-bench-remote-")
    try:
        with s3_endpoint() as options:
            run_all(a, options, work, peer)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_all(a: argparse.Namespace, options: dict[str, str], work: str, peer: bool) -> None:
    """Upload, then every setting in turn (one JSON line each)."""
    import s3fs

    endpoint = options["endpoint_url"]
    fs = s3fs.S3FileSystem(**options)
    fs.put(a.data, "bench/data.lmdb", recursive=True)
    if peer:
        fs.put(a.corpus, "bench/corpus", recursive=True)
    shards = os.path.join(a.data, "shards")
    sizes = [os.path.getsize(os.path.join(shards, n)) for n in os.listdir(shards)]
    limit = int(sum(sizes) * a.cache_fraction)
    setup = {
        "what": "setup",
        "shards": len(sizes),
        "shard_mib": round(sum(sizes) / 2**20, 1),
        "cache_limit_mib": round(limit / 2**20, 1),
        "locality": a.locality,
        "cpus": os.cpu_count(),
        "peer": peer,
    }
    print(json.dumps(setup), flush=True)
    for name in os.listdir(shards):  # the local run reads warm
        with open(os.path.join(shards, name), "rb") as fh:
            while fh.read(1 << 24):
                pass
    local = run_child(a, "datumio", a.data)
    print(json.dumps({"what": "run", "setting": "local warm", **local}), flush=True)
    cache = os.path.join(work, "cache")
    for setting in ("s3 cold cache", "s3 warm cache"):
        row = run_child(
            a, "datumio", "s3://bench/data.lmdb", cache, endpoint=endpoint, cache_limit=limit
        )
        row.update(
            setting=setting,
            what="run",
            of_local=round(row["images_per_s"] / local["images_per_s"], 3),
            same_batches=row["hash"] == local["hash"],
        )
        print(json.dumps(row), flush=True)
    if peer:
        for setting, extra in (("torch local", {}), ("torch s3", {"endpoint": endpoint})):
            row = run_child(a, "torch", a.data, **extra)
            row.update(
                setting=setting,
                what="run",
                of_local=round(row["images_per_s"] / local["images_per_s"], 3),
            )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
