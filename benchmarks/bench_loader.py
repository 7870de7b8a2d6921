"""datumio's Loader against PyTorch DataLoader + ImageFolder + WeightedRandomSampler.

Both run in this process tree, on the same long-tailed corpus
(``benchmarks/make_corpus.py``), with class-balanced sampling, batch 64 and the same number
of worker processes, on one of two recipes (``--recipe``, both by default):

* ``centre``: decode, resize the shorter side to 256, random horizontal flip, centre crop
  224, per-channel normalisation, float32 CHW (the evaluation-style recipe);
* ``rrc``: the standard ImageNet training recipe, ``RandomResizedCrop(224)`` (scale 0.08-1,
  ratio 3/4-4/3) + random horizontal flip, **uint8** CHW out (normalise on the device:
  ``docs/adapters.md``); the peer uses ``transforms.RandomResizedCrop``,
  ``RandomHorizontalFlip`` and ``PILToTensor``.

datumio reads its own shards, ingested twice from the corpus:

* ``short256``: resized at ingest (``short_side=256``, JPEG quality 90), the intended use:
  the run-time resize is then nearly free;
* ``keep``: the original JPEG bytes, so the run-time work equals the peer's.

Reported per configuration (median of ``--runs`` runs, alternating the loaders): images/s
over ``--batches`` batches after ``--warmup`` batches, first-batch latency (constructing the
loader and starting its workers included), the **worker CPU time per image** (user + system
time of the worker processes over the timed batches, from ``/proc``: what one image costs a
core, whatever the core count), and for datumio the main-process time per batch outside
waiting for workers (``loader.stats``).

The PyTorch peer needs torch and torchvision (see docs/benchmarks.md for the exact
install); without them only datumio runs.

Run it alone: ``flock /tmp/datumio-bench.lock python benchmarks/bench_loader.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import datumio
from datumio.augment import Transform
from datumio.loader import Loader

CORPUS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_corpus.py")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def ensure_corpus(path: str) -> None:
    if not os.path.isdir(path):
        subprocess.run([sys.executable, CORPUS_SCRIPT, path], check=True)


def ensure_dataset(corpus: str, out: str, **options: Any) -> str:
    if not os.path.exists(os.path.join(out, "manifest.json")):
        datumio.ingest(corpus, out, datumio.IngestOptions(overwrite=True, **options))
    return out


RECIPES = ("centre", "rrc")
#: decode="device" without a device: the workers' part only (read, draw, copy the bytes).
DEVICE_ROW = "datumio short256 decode=device (workers only)"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` so far (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def datumio_transform(recipe: str) -> Transform:
    if recipe == "rrc":
        return Transform(size=(224, 224), crop_scale=(0.08, 1.0), flip=0.5, dtype="uint8")
    return Transform(
        size=(224, 224),
        resize=256,
        flip=0.5,
        mean=tuple(255 * m for m in IMAGENET_MEAN),
        std=tuple(255 * s for s in IMAGENET_STD),
        layout="CHW",
        dtype="float32",
    )


def run_datumio(
    path: str, recipe: str, args: argparse.Namespace, decode: str = "worker"
) -> dict[str, float]:
    transform = datumio_transform(recipe)
    t0 = time.perf_counter()
    loader = Loader(
        path,
        args.batch_size,
        sampling="balanced",
        transform=transform,
        workers=args.workers,
        epoch_size=args.batch_size * (args.warmup + args.batches + 1),
        seed=0,
        decode=decode,
    )
    with loader:
        it = iter(loader)
        images, labels = next(it)[:2]
        first = time.perf_counter() - t0
        del images, labels
        for _ in range(args.warmup - 1):
            next(it)
        main0, wait0, n0 = loader.stats.main_s, loader.stats.wait_s, loader.stats.batches
        workers0 = cpu_seconds(loader.worker_pids)
        cpu0 = time.process_time()
        t1 = time.perf_counter()
        for _ in range(args.batches):
            images, labels = next(it)[:2]
            assert decode == "device" or images.shape == (args.batch_size, 3, 224, 224)
        elapsed = time.perf_counter() - t1
        cpu = time.process_time() - cpu0
        workers_cpu = cpu_seconds(loader.worker_pids) - workers0
        del images, labels
        st = loader.stats
        batches = st.batches - n0
        main_ms = 1000 * ((st.main_s - main0) - (st.wait_s - wait0)) / batches
    return {
        "images_per_s": args.batches * args.batch_size / elapsed,
        "first_batch_s": first,
        "main_ms_per_batch": main_ms,
        "main_cpu_ms_per_batch": 1000 * cpu / args.batches,
        "worker_ms_per_image": 1000 * workers_cpu / (args.batches * args.batch_size),
    }


def run_torch(corpus: str, recipe: str, args: argparse.Namespace) -> dict[str, float]:
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler
    from torchvision import datasets, transforms

    t0 = time.perf_counter()
    if recipe == "rrc":
        steps = [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.PILToTensor(),
        ]
    else:
        steps = [
            transforms.Resize(256),
            transforms.RandomHorizontalFlip(),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    tf = transforms.Compose(steps)
    folder = datasets.ImageFolder(corpus, transform=tf)
    targets = torch.tensor(folder.targets)
    counts = torch.bincount(targets)
    weights = (1.0 / counts.double())[targets]
    total = args.batch_size * (args.warmup + args.batches + 1)
    sampler = WeightedRandomSampler(
        weights, total, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    loader = DataLoader(folder, args.batch_size, sampler=sampler, num_workers=args.workers)
    it = iter(loader)
    images, _ = next(it)
    first = time.perf_counter() - t0
    for _ in range(args.warmup - 1):
        next(it)
    pids = [w.pid for w in getattr(it, "_workers", [])]
    workers0 = cpu_seconds(pids)
    cpu0 = time.process_time()
    t1 = time.perf_counter()
    for _ in range(args.batches):
        images, _ = next(it)
        assert tuple(images.shape) == (args.batch_size, 3, 224, 224)
    elapsed = time.perf_counter() - t1
    cpu = time.process_time() - cpu0
    workers_cpu = cpu_seconds(pids) - workers0
    del it, loader
    return {
        "images_per_s": args.batches * args.batch_size / elapsed,
        "first_batch_s": first,
        "main_cpu_ms_per_batch": 1000 * cpu / args.batches,
        "worker_ms_per_image": 1000 * workers_cpu / (args.batches * args.batch_size),
    }


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import PIL
        import torch
        import torchvision

        info.update(torch=torch.__version__, torchvision=torchvision.__version__)
        info["pillow"] = PIL.__version__
    except ImportError:
        info["torch"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="bench-out/corpus")
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipe", choices=(*RECIPES, "both"), default="both")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    recipes = RECIPES if args.recipe == "both" else (args.recipe,)

    ensure_corpus(args.corpus)
    datasets = {
        "datumio short256": ensure_dataset(
            args.corpus, os.path.join(args.out, "loader-short256.lmdb"), short_side=256
        ),
        "datumio keep": ensure_dataset(
            args.corpus, os.path.join(args.out, "loader-keep.lmdb"), encode="keep"
        ),
    }
    info = machine()
    have_torch = info.get("torch") is not None and not args.no_torch
    results: dict[str, list[dict[str, float]]] = {}
    for recipe in recipes:
        for _ in range(args.runs):
            for name, path in datasets.items():
                results.setdefault(f"{recipe}: {name}", []).append(run_datumio(path, recipe, args))
            if recipe == "rrc":  # what the workers cost when the device decodes
                results.setdefault(f"{recipe}: {DEVICE_ROW}", []).append(
                    run_datumio(datasets["datumio short256"], recipe, args, decode="device")
                )
            if have_torch:
                results.setdefault(f"{recipe}: torch ImageFolder", []).append(
                    run_torch(args.corpus, recipe, args)
                )

    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        summary[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0] if runs}
    for name, row in summary.items():
        recipe = name.split(":")[0]
        peer = summary.get(f"{recipe}: torch ImageFolder", {}).get("images_per_s")
        if peer and "torch" not in name:
            row["ratio_vs_torch"] = row["images_per_s"] / peer
    report = {
        "machine": info,
        "args": vars(args),
        "summary": summary,
        "runs": results,
        "load_after": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"machine: {info.get('cpu')} x{info['cpus']}, python {info['python']}, "
        f"torch {info.get('torch')}, load before {info['load_before']}"
    )
    print(
        f"batch {args.batch_size}, workers {args.workers}, {args.batches} batches after "
        f"{args.warmup} warm-up, median of {args.runs} runs"
    )
    print(
        f"{'recipe: loader':<48} {'images/s':>9} {'vs torch':>9} {'first batch s':>14} "
        f"{'worker ms/img':>14} {'main ms/batch':>14} {'main CPU ms/batch':>18}"
    )
    for name, row in summary.items():
        ratio = f"{row['ratio_vs_torch']:.2f}x" if "ratio_vs_torch" in row else "-"
        main_ms = f"{row['main_ms_per_batch']:.3f}" if "main_ms_per_batch" in row else "-"
        print(
            f"{name:<48} {row['images_per_s']:>9.0f} {ratio:>9} {row['first_batch_s']:>14.2f} "
            f"{row['worker_ms_per_image']:>14.3f} {main_ms:>14} "
            f"{row['main_cpu_ms_per_batch']:>18.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
