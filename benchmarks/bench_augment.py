"""The fused augmentation: per-image cost, and Loader throughput against the PyTorch peer.

1. Per image, one core, on corpus JPEGs (``/work/shared/corpus/make_corpus.py``): decode
   alone; datumio's fused path (``decode_for``: draft decode, ONE affine warp for resize +
   zoom + rotation + translation + flip + centre crop) with each fill mode; and the same
   operations one after another as torchvision composes them on PIL images (Resize(256),
   RandomAffine (one ``Image.transform``), horizontal flip, CenterCrop(224)), in plain PIL
   and, when torchvision is importable, with torchvision itself.
2. Loader throughput, batch 64, class-balanced, 224x224 float32 CHW normalised, the seed's
   augmentation (rotation +-20 deg, zoom 0.9-1.1, translation +-10%, flip) and the same
   number of worker processes, against PyTorch ``DataLoader`` + ``ImageFolder`` +
   ``WeightedRandomSampler`` with ``Resize(256), RandomAffine(20, (0.1, 0.1), (0.9, 1.1)),
   RandomHorizontalFlip, CenterCrop(224), ToTensor, Normalize``.

Run alone, with the torch environment for the peer:
``flock /tmp/datumio-bench.lock bench-out/venv-torch/bin/python benchmarks/bench_augment.py``.
"""

from __future__ import annotations

import argparse
import io
import json
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

from datumio.augment import Transform, decode_for, sample_rng
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


def _torchvision() -> Callable[[bytes], Any] | None:
    try:
        from torchvision import transforms
    except ImportError:
        return None
    tf = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.RandomAffine(20, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            transforms.RandomHorizontalFlip(),
            transforms.CenterCrop(224),
        ]
    )
    return lambda data: tf(Image.open(io.BytesIO(data)).convert("RGB"))


def per_image(files: list[bytes], runs: int) -> dict[str, float]:
    """Median over ``runs`` of the mean ms per image of each way."""
    rng = random.Random(0)
    ways: dict[str, Callable[[bytes, int], Any]] = {
        "decode only (Pillow)": lambda d, i: Image.open(io.BytesIO(d)).convert("RGB").load(),
        "PIL sequential (resize, affine, flip, crop)": lambda d, i: _pil_sequential(d, rng),
    }
    tv = _torchvision()
    if tv is not None:
        ways["torchvision sequential (same ops)"] = lambda d, i: tv(d)
    for mode in ("constant", "edge", "reflect"):
        spec = Transform(**AUG, fill_mode=mode, dtype="uint8", layout="HWC")
        ways[f"datumio fused, fill {mode}"] = lambda d, i, s=spec: decode_for(
            s, d, sample_rng(0, 0, i)
        )
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            for i, data in enumerate(files):
                fn(data, i)
            times[name].append(1000 * (time.perf_counter() - t0) / len(files))
    return {name: statistics.median(v) for name, v in times.items()}


def run_datumio(path: str, args: argparse.Namespace) -> float:
    spec = Transform(
        **AUG,
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


def run_torch(corpus: str, args: argparse.Namespace) -> float:
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.RandomAffine(20, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            transforms.RandomHorizontalFlip(),
            transforms.CenterCrop(224),
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
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=4)
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
    if not args.skip_loader:
        datasets = {
            "datumio short256": ensure_dataset(
                args.corpus, os.path.join(args.out, "loader-short256.lmdb"), short_side=256
            ),
            "datumio keep": ensure_dataset(
                args.corpus, os.path.join(args.out, "loader-keep.lmdb"), encode="keep"
            ),
        }
        have_torch = info.get("torch") is not None and not args.no_torch
        runs: dict[str, list[float]] = {name: [] for name in datasets}
        if have_torch:
            runs["torch ImageFolder"] = []
        for _ in range(args.runs):
            for name, path in datasets.items():
                runs[name].append(run_datumio(path, args))
            if have_torch:
                runs["torch ImageFolder"].append(run_torch(args.corpus, args))
        loader = {name: statistics.median(v) for name, v in runs.items()}
        peer = loader.get("torch ImageFolder")
        print(
            f"loader, batch {args.batch_size}, {args.workers} workers, {args.batches} batches, "
            f"median of {args.runs} runs:"
        )
        for name, rate in loader.items():
            ratio = f"{rate / peer:.2f}x" if peer and name != "torch ImageFolder" else "-"
            print(f"  {name:<20} {rate:8.0f} images/s  {ratio:>6} vs torch   runs {runs[name]}")
    if args.json:
        report = {
            "machine": info,
            "args": vars(args),
            "per_image_ms": costs,
            "loader": loader,
            "load_after": os.getloadavg(),
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
