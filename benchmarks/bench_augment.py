"""The fused augmentation: per-image cost, decode+warp limit, and Loader throughput vs PyTorch.

1. Per image, one core, on corpus JPEGs (``benchmarks/make_corpus.py``): decode
   alone; datumio's fused path (``decode_for``: draft decode, ONE affine warp for resize +
   zoom + rotation + translation + flip + centre crop) with each warp backend and fill mode;
   and the same operations one after another as torchvision composes them on PIL images
   (Resize(256), RandomAffine, horizontal flip, CenterCrop(224)), in plain PIL and, when
   torchvision is importable, with torchvision itself (bilinear and its default nearest).
2. The decode+warp limit: ``--workers`` processes doing nothing but decode + one warp of the
   ingested records (no reads, no normalisation, no hand-off): what the loader can approach.
3. Loader throughput, batch 64, class-balanced, 224x224 float32 CHW normalised, the seed's
   augmentation (rotation +-20 deg, zoom 0.9-1.1, translation +-10%, flip), the same number
   of worker processes, against PyTorch ``DataLoader`` + ``ImageFolder`` +
   ``WeightedRandomSampler`` with ``Resize(256), RandomAffine(20, (0.1, 0.1), (0.9, 1.1),
   interpolation), RandomHorizontalFlip, CenterCrop(224), ToTensor, Normalize``, like for
   like: bilinear against bilinear (the reference in ``shared/corpus/README.md``) and
   nearest against nearest (torchvision's default interpolation for ``RandomAffine``).

Run alone, with the torch environment for the peer (it needs datumio and, for the OpenCV
rows, ``opencv-python-headless`` installed in it):
``flock /tmp/datumio-bench.lock bench-out/venv-torch/bin/python benchmarks/bench_augment.py``.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_loader import IMAGENET_MEAN, IMAGENET_STD, ensure_corpus, ensure_dataset, machine

import datumio
from datumio.augment import Transform, decode_for, opencv_probe, sample_rng
from datumio.loader import Loader

AUG: dict[str, Any] = {
    "size": (224, 224),
    "resize": 256,
    "rotation_range": (-20.0, 20.0),
    "zoom_range": (0.9, 1.1),
    "translation_range": (-22.4, 22.4),  # 10% of the 224 view, like translate=(0.1, 0.1)
    "do_flip_lr": True,
}


def corpus_files(corpus: str, count: int, seed: int = 0) -> list[bytes]:
    paths = sorted(
        os.path.join(root, f)
        for root, _, files in os.walk(corpus)
        for f in files
        if f.endswith(".jpg")
    )
    random.Random(seed).shuffle(paths)
    out = []
    for p in paths[:count]:
        with open(p, "rb") as f:
            out.append(f.read())
    return out


def _pil_sequential(data: bytes, rng: random.Random) -> np.ndarray:
    """Resize(256) -> RandomAffine -> flip -> CenterCrop(224), each a PIL resampling pass."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    s = 256 / min(img.size)
    img = img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.BILINEAR)
    angle = rng.uniform(-20, 20)
    scale = rng.uniform(0.9, 1.1)
    tx, ty = rng.uniform(-25.6, 25.6), rng.uniform(-25.6, 25.6)
    cx, cy = img.width / 2, img.height / 2
    a = np.radians(angle)
    inv = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) / scale
    off = np.array([cx, cy]) - inv @ np.array([cx + tx, cy + ty])
    data6 = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
    img = img.transform(img.size, Image.Transform.AFFINE, data6, Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    return np.asarray(img.crop((left, top, left + 224, top + 224)))


def _torchvision(interpolation: str) -> Callable[[bytes], Any] | None:
    try:
        from torchvision import transforms
    except ImportError:
        return None
    tf = transforms.Compose(_torch_ops(transforms, interpolation))
    return lambda data: tf(Image.open(io.BytesIO(data)).convert("RGB"))


def _torch_ops(transforms: Any, interpolation: str) -> list[Any]:
    """The peer's augmentation: torchvision ops one after another."""
    mode = transforms.InterpolationMode(interpolation)
    return [
        transforms.Resize(256),
        transforms.RandomAffine(20, translate=(0.1, 0.1), scale=(0.9, 1.1), interpolation=mode),
        transforms.RandomHorizontalFlip(),
        transforms.CenterCrop(224),
    ]


def _backends() -> tuple[str, ...]:
    return ("pillow", "opencv") if opencv_probe.installed() else ("pillow",)


def per_image(files: list[bytes], runs: int) -> dict[str, float]:
    """Median over ``runs`` of the mean ms per image of each way."""
    rng = random.Random(0)
    ways: dict[str, Callable[[bytes, int], Any]] = {
        "decode only (Pillow)": lambda d, i: Image.open(io.BytesIO(d)).convert("RGB").load(),
        "PIL sequential (resize, affine, flip, crop)": lambda d, i: _pil_sequential(d, rng),
    }
    for interpolation in ("bilinear", "nearest"):
        tv = _torchvision(interpolation)
        if tv is not None:
            ways[f"torchvision sequential, {interpolation}"] = lambda d, i, tv=tv: tv(d)
    for backend in _backends():
        for resample, mode in (
            ("bilinear", "constant"),
            ("bilinear", "reflect"),
            ("nearest", "constant"),
        ):
            spec = Transform(
                **AUG,
                resample=resample,
                fill_mode=mode,
                backend=backend,
                dtype="uint8",
                layout="HWC",
            )
            ways[f"datumio fused, {backend} {resample}, fill {mode}"] = lambda d, i, s=spec: (
                decode_for(s, d, sample_rng(0, 0, i))
            )
    cv2 = opencv_probe.load()
    if cv2 is not None:
        cv2.setNumThreads(1)  # one core, as in a worker process
    for fn in ways.values():  # warm up: imports, caches
        for i, data in enumerate(files[:5]):
            fn(data, i)
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            for i, data in enumerate(files):
                fn(data, i)
            times[name].append(1000 * (time.perf_counter() - t0) / len(files))
    return {name: statistics.median(v) for name, v in times.items()}


def _limit_worker(job: tuple[str, str, str, list[int]]) -> int:
    path, backend, resample, ids = job
    spec = Transform(**AUG, resample=resample, backend=backend, dtype="uint8", layout="HWC")
    with datumio.open(path) as ds:
        records = [(ds.read(i), ds.shape(i)) for i in ids]
        encoding = ds.encoding
    for pos, (data, shape) in enumerate(records):
        decode_for(spec, data, sample_rng(0, 0, pos), encoding=encoding, shape=shape)
    return len(records)


def decode_warp_limit(path: str, backend: str, resample: str, args: argparse.Namespace) -> float:
    """Images/s of ``--workers`` processes doing only decode + warp (records read first)."""
    with datumio.open(path) as ds:
        n = len(ds)
    per = args.batch_size * args.batches // args.workers
    ids = np.linspace(0, n - 1, per * args.workers).astype(int).tolist()
    jobs = [(path, backend, resample, ids[w :: args.workers]) for w in range(args.workers)]
    with multiprocessing.get_context("forkserver").Pool(args.workers) as pool:
        pool.map(_limit_worker, [(path, backend, resample, ids[:8])] * args.workers)  # warm up
        t0 = time.perf_counter()
        done = sum(pool.map(_limit_worker, jobs))
        return done / (time.perf_counter() - t0)


def run_datumio(path: str, backend: str, resample: str, args: argparse.Namespace) -> float:
    spec = Transform(
        **AUG,
        resample=resample,
        backend=backend,
        mean=tuple(255 * m for m in IMAGENET_MEAN),
        std=tuple(255 * s for s in IMAGENET_STD),
    )
    total = args.batch_size * (args.warmup + args.batches + 1)
    with Loader(
        path, args.batch_size, transform=spec, workers=args.workers, epoch_size=total, seed=0
    ) as loader:
        it = iter(loader)
        for _ in range(args.warmup):
            next(it)
        t0 = time.perf_counter()
        for _ in range(args.batches):
            images, _labels = next(it)
        elapsed = time.perf_counter() - t0
        assert images.shape == (args.batch_size, 3, 224, 224) and images.dtype == np.float32
    return args.batches * args.batch_size / elapsed


def run_torch(corpus: str, interpolation: str, args: argparse.Namespace) -> float:
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            *_torch_ops(transforms, interpolation),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    folder = datasets.ImageFolder(corpus, transform=tf)
    targets = torch.tensor(folder.targets)
    weights = (1.0 / torch.bincount(targets).double())[targets]
    total = args.batch_size * (args.warmup + args.batches + 1)
    sampler = WeightedRandomSampler(weights, total, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(folder, args.batch_size, sampler=sampler, num_workers=args.workers)
    it = iter(loader)
    for _ in range(args.warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(args.batches):
        images, _ = next(it)
    elapsed = time.perf_counter() - t0
    assert tuple(images.shape) == (args.batch_size, 3, 224, 224)
    del it, loader
    return args.batches * args.batch_size / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="bench-out/corpus")
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--images", type=int, default=200, help="corpus files for part 1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-loader", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the report here")
    args = parser.parse_args(argv)

    ensure_corpus(args.corpus)
    info = machine()
    print(
        f"machine: {info.get('cpu')} x{info['cpus']}, python {info['python']}, "
        f"pillow {info.get('pillow')}, torch {info.get('torch')}, load {info['load_before']}"
    )
    files = corpus_files(args.corpus, args.images)
    costs = per_image(files, args.runs)
    print(f"per image, one core, {len(files)} corpus JPEGs, median of {args.runs} runs:")
    for name, ms in costs.items():
        print(f"  {name:<46} {ms:7.2f} ms")
    loader: dict[str, float] = {}
    limits: dict[str, float] = {}
    if not args.skip_loader:
        short = ensure_dataset(
            args.corpus, os.path.join(args.out, "loader-short256.lmdb"), short_side=256
        )
        keep = ensure_dataset(
            args.corpus, os.path.join(args.out, "loader-keep.lmdb"), encode="keep"
        )
        best = "opencv" if opencv_probe.installed() else "pillow"
        cases: dict[str, Callable[[], float]] = {}
        for resample in ("bilinear", "nearest"):
            for backend in _backends():
                cases[f"datumio short256, {backend} {resample}"] = functools.partial(
                    run_datumio, short, backend, resample, args
                )
            if info.get("torch") is not None and not args.no_torch:
                cases[f"torch ImageFolder, {resample}"] = functools.partial(
                    run_torch, args.corpus, resample, args
                )
        cases[f"datumio keep, {best} bilinear"] = functools.partial(
            run_datumio, keep, best, "bilinear", args
        )
        runs: dict[str, list[float]] = {name: [] for name in cases}
        limit_runs: dict[str, list[float]] = {f"{b} bilinear": [] for b in _backends()}
        for _ in range(args.runs):
            for name, case in cases.items():
                runs[name].append(case())
            for name in limit_runs:
                backend, resample = name.split()
                limit_runs[name].append(decode_warp_limit(short, backend, resample, args))
        loader = {name: statistics.median(v) for name, v in runs.items()}
        limits = {name: statistics.median(v) for name, v in limit_runs.items()}
        print(
            f"decode + warp limit on short256 records, {args.workers} processes "
            f"(median of {args.runs}):"
        )
        for name, rate in limits.items():
            print(
                f"  {name:<20} {rate:8.0f} images/s   runs {[round(r) for r in limit_runs[name]]}"
            )
        print(
            f"loader, batch {args.batch_size}, {args.workers} workers, {args.batches} batches, "
            f"median of {args.runs} runs:"
        )
        for name, rate in loader.items():
            resample = name.rsplit(" ", 1)[1]
            peer = loader.get(f"torch ImageFolder, {resample}")
            ratio = f"{rate / peer:.2f}x" if peer and not name.startswith("torch") else "-"
            limit = limits.get(name.split(", ")[1]) if "short256" in name else None
            share = f"{rate / limit:4.0%} of limit" if limit else ""
            print(
                f"  {name:<34} {rate:7.0f} images/s {ratio:>6} vs torch {share:>14}  "
                f"runs {[round(r) for r in runs[name]]}"
            )
    if args.json:
        report = {
            "machine": info,
            "args": vars(args),
            "per_image_ms": costs,
            "loader": loader,
            "decode_warp_limit": limits,
            "load_after": os.getloadavg(),
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
