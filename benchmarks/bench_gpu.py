"""Does the loader keep an accelerator fed? datumio and the PyTorch peer, side by side.

The standard ImageNet training recipe for both: ``RandomResizedCrop(224)`` (scale 0.08-1)
+ horizontal flip + mean/std, label-balanced (torch: ``WeightedRandomSampler`` with 1/count
weights over ``ImageFolder``), batch 256; torchvision models in bf16 autocast,
channels_last, SGD. datumio reads its ``--short-side 256`` JPEG shards, torch the original
JPEGs. One JSON line per run:

    python benchmarks/bench_gpu.py all                 # everything below, in one command
    python benchmarks/bench_gpu.py gpu    --model resnet18          # the model's device-only rate
    python benchmarks/bench_gpu.py loader --impl datumio --handoff uint8
    python benchmarks/bench_gpu.py train  --impl datumio --handoff device-decode --model resnet18
    python benchmarks/bench_gpu.py train  --impl torch --model resnet50

``--handoff`` (datumio): ``float32`` (workers normalise, float32 CHW through shared memory),
``uint8`` (workers write uint8, ``TorchIterable(device=...)`` normalises on the device),
``device-decode`` (workers hand over JPEG bytes, nvJPEG decodes: ``Loader(decode="device")``);
``--no-pin`` skips ``pin_memory``. ``all`` builds the corpus (``benchmarks/make_corpus.py``,
needs scikit-image) and the datumio dataset when missing, then runs the device-only rates,
the loaders alone and training for each hand-off and for the peer. Without a GPU it runs the
CPU parts (the loaders alone, float32 and uint8) and prints what it skipped.

Needs torch and torchvision (``docs/benchmarks.md`` says which install).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

BATCH = 256
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
HANDOFFS = ("float32", "uint8", "device-decode")
HERE = os.path.dirname(os.path.abspath(__file__))


def emit(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


def cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def torch_feed(root: str, workers: int, pin: bool, uint8: bool) -> Any:
    import torch
    from torchvision import datasets
    from torchvision import transforms as T

    tail = [T.PILToTensor()] if uint8 else [T.ToTensor(), T.Normalize(MEAN, STD)]
    tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *tail])
    folder = datasets.ImageFolder(root, tf)
    targets = torch.tensor(folder.targets)
    weights = (1.0 / torch.bincount(targets).double())[targets]
    sampler = torch.utils.data.WeightedRandomSampler(weights, 10**7, replacement=True)
    return torch.utils.data.DataLoader(
        folder,
        batch_size=BATCH,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=True,
        prefetch_factor=4,
        drop_last=True,
    )


class DatumioFeed:
    """A Loader and its TorchIterable for one hand-off mode."""

    def __init__(self, path: str, workers: int, handoff: str, device: str | None, pin: bool):
        import datumio
        from datumio.adapters.torch import TorchIterable

        spec = datumio.Transform(
            size=(224, 224),
            crop_scale=(0.08, 1.0),
            flip=0.5,
            mean=tuple(255 * m for m in MEAN),
            std=tuple(255 * s for s in STD),
        )
        if handoff == "uint8" and device is None:  # the loader alone: uint8 out, as the peer
            spec = datumio.Transform(
                size=(224, 224), crop_scale=(0.08, 1.0), flip=0.5, dtype="uint8"
            )
        decode = "device" if handoff == "device-decode" else "worker"
        self.loader = datumio.Loader(
            path, BATCH, workers=workers, transform=spec, epoch_size=10**7, decode=decode
        )
        self.iterable = TorchIterable(
            self.loader,
            device=device,
            pin_memory=pin and device is not None,
            finish_on_device=handoff != "float32",
        )

    def __iter__(self) -> Any:
        return iter(self.iterable)

    def close(self) -> None:
        self.loader.close()


def make_feed(a: argparse.Namespace, device: str | None) -> tuple[Any, Any]:
    if a.impl == "torch":
        uint8 = a.handoff != "float32"
        return torch_feed(a.images, a.workers, device is not None, uint8), None
    feed = DatumioFeed(a.data, a.workers, a.handoff, device, not a.no_pin)
    return feed, feed


def model_step(name: str) -> Any:
    import torch
    import torchvision

    model = getattr(torchvision.models, name)(num_classes=1000).cuda()
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1) * 255

    def step(x: Any, y: Any) -> Any:
        x = x.cuda(non_blocking=True)
        if x.dtype == torch.uint8:  # the peer's uint8 batches: normalise on the GPU
            x = (x.float() - mean) / std
        x = x.contiguous(memory_format=torch.channels_last)
        y = y.cuda(non_blocking=True).long()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def cmd_gpu(a: argparse.Namespace) -> None:
    import torch

    step = model_step(a.model)
    x = torch.randn(BATCH, 3, 224, 224, device="cuda")
    y = torch.randint(0, 20, (BATCH,), device="cuda")
    for _ in range(a.warmup):
        step(x, y)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step(x, y)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    emit(
        {
            "what": "gpu",
            "model": a.model,
            "images_per_s": round(a.steps * BATCH / dt, 1),
            "device": torch.cuda.get_device_name(),
        }
    )


def cmd_loader(a: argparse.Namespace) -> None:
    import torch

    device = "cuda" if a.handoff == "device-decode" or (a.to_device and cuda()) else None
    feed, closer = make_feed(a, device)
    t_start = time.perf_counter()
    it = iter(feed)
    n, first, t0 = 0, 0.0, time.perf_counter()
    for i in range(a.warmup + a.batches):
        x, y = next(it)[:2]
        if i == 0:
            first = time.perf_counter() - t_start
        if i == a.warmup - 1:
            if device is not None:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        if i >= a.warmup:
            n += len(y)
    if device is not None:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if closer is not None:
        closer.close()
    emit(
        {
            "what": "loader",
            "impl": a.impl,
            "handoff": a.handoff,
            "device": device,
            "workers": a.workers,
            "images_per_s": round(n / dt, 1),
            "first_batch_s": round(first, 3),
            "shape": list(x.shape),
            "dtype": str(x.dtype),
        }
    )


def cmd_train(a: argparse.Namespace) -> None:
    import torch

    step = model_step(a.model)
    feed, closer = make_feed(a, "cuda")
    it = iter(feed)
    t0, wait = time.perf_counter(), 0.0
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            torch.cuda.synchronize()
            t0, wait = time.perf_counter(), 0.0
        tw = time.perf_counter()
        x, y = next(it)[:2]
        wait += time.perf_counter() - tw
        step(x, y)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if closer is not None:
        closer.close()
    emit(
        {
            "what": "train",
            "impl": a.impl,
            "model": a.model,
            "handoff": a.handoff,
            "pin": not a.no_pin,
            "workers": a.workers,
            "images_per_s": round(a.steps * BATCH / dt, 1),
            "data_wait_share": round(wait / dt, 3),
        }
    )


def ensure_data(a: argparse.Namespace) -> None:
    if not os.path.isdir(a.images):
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), a.images], check=True)
    if not os.path.exists(os.path.join(a.data, "manifest.json")):
        import datumio

        options = datumio.IngestOptions(short_side=256, overwrite=True)
        datumio.ingest(a.images, a.data, options)


def run_child(a: argparse.Namespace, *args: str) -> None:
    """One measurement in its own process (a fresh CUDA context, no leftover workers)."""
    common = ["--data", a.data, "--images", a.images, "--workers", str(a.workers)]
    cmd = [sys.executable, os.path.abspath(__file__), *common, *args]  # args override
    done = subprocess.run(cmd, check=False, timeout=a.timeout)
    if done.returncode != 0:
        emit({"what": "failed", "command": args, "returncode": done.returncode})


def machine() -> dict[str, Any]:
    """Cores, hardware threads per core (SMT halves what extra workers bring) and the GPU."""
    info: dict[str, Any] = {"what": "machine", "cpus": os.cpu_count()}
    try:
        with open("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list") as f:
            siblings = f.read().strip()
        info["threads_per_core"] = len(
            [x for part in siblings.split(",") for x in range(
                int(part.split("-")[0]), int(part.split("-")[-1]) + 1
            )]
        )  # fmt: skip
    except OSError:
        pass
    import torch

    info["torch"] = torch.__version__
    info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return info


def cmd_all(a: argparse.Namespace) -> None:
    ensure_data(a)
    gpu = cuda()
    emit(machine())
    short = ["--batches", str(a.batches), "--steps", str(a.steps)]
    for handoff in ("float32", "uint8"):
        for impl in ("datumio", "torch"):
            run_child(a, "loader", "--impl", impl, "--handoff", handoff, *short)
    cores = os.cpu_count() or 1
    for workers in sorted({w for w in (4, 8, cores - 1) if 1 <= w < cores} - {a.workers}):
        # scaling with workers: the loader alone, uint8 (the same run as above otherwise)
        run_child(a, "loader", "--handoff", "uint8", *short, "--workers", str(workers))
    if not gpu:
        emit(
            {
                "what": "skipped",
                "why": "no CUDA device",
                "skipped": "gpu, train (every hand-off and the peer), loader --handoff "
                "device-decode",
            }
        )
        return
    run_child(a, "loader", "--impl", "datumio", "--handoff", "device-decode", *short)
    for model in ("resnet50", "resnet18"):
        run_child(a, "gpu", "--model", model, *short)
        for handoff, pin in (
            ("float32", True),
            ("uint8", True),
            ("uint8", False),
            ("device-decode", True),
        ):
            flags = [] if pin else ["--no-pin"]
            run_child(
                a, "train", "--impl", "datumio", "--handoff", handoff, "--model", model,
                *flags, *short,
            )  # fmt: skip
        run_child(a, "train", "--impl", "torch", "--handoff", "uint8", "--model", model, *short)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cmd", choices=["all", "gpu", "loader", "train"])
    p.add_argument("--impl", choices=["datumio", "torch"], default="datumio")
    p.add_argument("--handoff", choices=HANDOFFS, default="uint8")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--to-device", action="store_true", help="loader: move batches to CUDA")
    p.add_argument("--data", default="bench-out/gpu-short256.lmdb")
    p.add_argument("--images", default="bench-out/corpus", help="ImageFolder for the peer")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--timeout", type=float, default=300.0, help="all: seconds per run")
    a = p.parse_args(argv)
    {"all": cmd_all, "gpu": cmd_gpu, "loader": cmd_loader, "train": cmd_train}[a.cmd](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
