"""Training speed from a cold disk against training speed from RAM.

Each run is a fresh process tree reading ``--images`` images of a dataset larger than
memory can hold for it, in one of three settings:

* ``warm``: the files read once before, in the page cache;
* ``cold``: the page cache dropped (``echo 3 > /proc/sys/vm/drop_caches``);
* ``capped``: cold, and the process tree in a memory cgroup of ``--cap-mib`` (cgroup v1
  ``memory.limit_in_bytes`` or v2 ``memory.max``): the page cache it may keep is the cap
  less what the processes and the shared-memory slots need, a fraction of the dataset.

Loaders, with the full affine recipe of ``bench_augment.py`` (resize 256, rotation +-20,
zoom 0.9-1.1, translation 10%, flips, crop 224, float32 normalised), batch 64, class-balanced:
datumio with read-ahead (``Loader(readahead=3)``, the default), datumio without
(``readahead=0``), and the PyTorch peer (``ImageFolder`` + ``WeightedRandomSampler``) on the
original files. Reported per run (one JSON line): images/s, CPU utilisation of the machine
(``/proc/stat``) and MiB read from the disk (``/proc/diskstats``).

``--locality K`` runs datumio with the sampler's locality order (``Loader(locality=K)``),
``--datasets keep`` one dataset only, ``--tag`` another pair of datasets in ``--out``.

Needs root for ``cold`` and ``capped`` (it says what it skips otherwise), torch and
torchvision for the peer. The corpus (``benchmarks/make_corpus.py --max-per-class 4000
--min-per-class 50``, about 1 GB) and the datasets are built in ``bench-out/`` when missing.

    flock /tmp/datumio-bench.lock python benchmarks/bench_cold.py [--cap-mib 640]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 64
AUG: dict[str, Any] = {
    "size": (224, 224),
    "resize": 256,
    "rotation_range": (-20.0, 20.0),
    "zoom_range": (0.9, 1.1),
    "translation_range": (-22.4, 22.4),
    "do_flip_lr": True,
    "mean": (123.7, 116.3, 103.5),
    "std": (58.4, 57.1, 57.4),
}
CGROUP = "datumio-bench-cold"


def emit(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


# -- the machine: disk, CPU, page cache, cgroups ------------------------------------------


def disk_read_bytes() -> int:
    """Bytes read from whole disks since boot (``/proc/diskstats``, sectors of 512)."""
    total = 0
    with open("/proc/diskstats") as f:
        for line in f:
            fields = line.split()
            name = fields[2]
            if os.path.exists(f"/sys/block/{name}") and not name.startswith(("loop", "ram")):
                total += int(fields[5]) * 512
    return total


def cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs (``/proc/stat``)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def make_cgroup(cap_bytes: int) -> str | None:
    """A memory cgroup capped at ``cap_bytes``; its ``cgroup.procs`` path, or None."""
    v1 = f"/sys/fs/cgroup/memory/{CGROUP}"
    v2 = f"/sys/fs/cgroup/{CGROUP}"
    try:
        if os.path.isdir("/sys/fs/cgroup/memory"):
            os.makedirs(v1, exist_ok=True)
            with open(f"{v1}/memory.limit_in_bytes", "w") as f:
                f.write(str(cap_bytes))
            return f"{v1}/cgroup.procs"
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            os.makedirs(v2, exist_ok=True)
            with open(f"{v2}/memory.max", "w") as f:
                f.write(str(cap_bytes))
            return f"{v2}/cgroup.procs"
    except OSError:
        return None
    return None


def cgroup_peak(procs: str) -> int | None:
    folder = os.path.dirname(procs)
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        try:
            with open(os.path.join(folder, name)) as f:
                return int(f.read())
        except (OSError, ValueError):
            continue
    return None


# -- one run, in a child process ----------------------------------------------------------


def child_datumio(a: argparse.Namespace) -> dict[str, Any]:
    import datumio

    spec = datumio.Transform(**AUG)
    batches = a.images // BATCH
    loader = datumio.Loader(
        a.data,
        BATCH,
        transform=spec,
        workers=a.workers,
        epoch_size=BATCH * (batches + 1),
        seed=a.seed,
        readahead=a.readahead,
        locality=a.locality,
    )
    with loader:
        it = iter(loader)
        next(it)  # start-up is not what is measured
        t0 = time.perf_counter()
        for _ in range(batches - 1):
            next(it)
        return {"seconds": time.perf_counter() - t0, "images": (batches - 1) * BATCH}


def peer_transform() -> Any:
    """The PyTorch peer's version of :data:`AUG` (torchvision)."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(256),
            transforms.RandomAffine(20, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            transforms.RandomHorizontalFlip(),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


def child_torch(a: argparse.Namespace) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler
    from torchvision import datasets

    folder = datasets.ImageFolder(a.corpus, transform=peer_transform())
    targets = torch.tensor(folder.targets)
    weights = (1.0 / torch.bincount(targets).double())[targets]
    batches = a.images // BATCH
    sampler = WeightedRandomSampler(
        weights, BATCH * (batches + 1), generator=torch.Generator().manual_seed(a.seed)
    )
    loader = DataLoader(folder, BATCH, sampler=sampler, num_workers=a.workers)
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches - 1):
        next(it)
    return {"seconds": time.perf_counter() - t0, "images": (batches - 1) * BATCH}


def child(a: argparse.Namespace) -> int:
    result = child_torch(a) if a.child == "torch" else child_datumio(a)
    print(json.dumps(result), flush=True)
    return 0


def run(a: argparse.Namespace, setting: str, loader: str, data: str, report: bool = True) -> None:
    args = [sys.executable, os.path.abspath(__file__), "--child", "torch" if loader == "torch"
            else "datumio", "--data", data, "--corpus", a.corpus, "--images", str(a.images),
            "--workers", str(a.workers), "--seed", str(a.seed)]  # fmt: skip
    if loader.startswith("datumio"):
        args += ["--readahead", "0" if "no read-ahead" in loader else str(a.readahead)]
        args += ["--locality", str(a.locality)]
    procs = None
    if setting != "warm" and not drop_caches():
        emit({"what": "skipped", "setting": setting, "why": "cannot drop the page cache (root?)"})
        return
    if setting == "capped":
        procs = make_cgroup(a.cap_mib << 20)
        if procs is None:
            emit({"what": "skipped", "setting": setting, "why": "no writable memory cgroup"})
            return

    def enter() -> None:
        if procs is not None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

    read0, (busy0, total0) = disk_read_bytes(), cpu_busy()
    done = subprocess.run(args, capture_output=True, text=True, preexec_fn=enter, check=False)
    read1, (busy1, total1) = disk_read_bytes(), cpu_busy()
    row: dict[str, Any] = {"what": "run", "setting": setting, "loader": loader}
    row["data"] = os.path.basename(data.rstrip("/")) if loader != "torch" else "corpus files"
    if loader != "torch" and a.locality:
        row["locality"] = a.locality
    if done.returncode != 0:
        row.update(failed=done.returncode, stderr=done.stderr[-2000:])
        emit(row)
        return
    if not report:
        return
    result = json.loads(done.stdout.strip().splitlines()[-1])
    row["images_per_s"] = round(result["images"] / result["seconds"], 1)
    row["cpu_busy"] = round((busy1 - busy0) / max(total1 - total0, 1.0), 3)
    row["disk_read_mib"] = round((read1 - read0) / 2**20, 1)
    if procs is not None:
        row["cap_mib"] = a.cap_mib
        peak = cgroup_peak(procs)
        row["peak_mib"] = None if peak is None else round(peak / 2**20)
    emit(row)


def ensure(a: argparse.Namespace) -> dict[str, str]:
    if not os.path.isdir(a.corpus):
        script = os.path.join(HERE, "make_corpus.py")
        more = ["--max-per-class", "4000", "--min-per-class", "50"]
        subprocess.run([sys.executable, script, a.corpus, *more], check=True)
    import datumio

    out = {}
    wanted = a.datasets.split(",")
    for name, options in (("keep", {"encode": "keep"}), ("short256", {"short_side": 256})):
        if name not in wanted:
            continue
        path = os.path.join(a.out, f"{a.tag}-{name}.lmdb")
        if not os.path.exists(os.path.join(path, "manifest.json")):
            datumio.ingest(a.corpus, path, datumio.IngestOptions(overwrite=True, **options))
        out[name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="bench-out/corpus-big")
    p.add_argument("--out", default="bench-out")
    p.add_argument("--tag", default="cold", help="datasets are OUT/TAG-keep.lmdb, TAG-short256")
    p.add_argument("--images", type=int, default=3200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cap-mib", type=int, default=640)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settings", default="warm,cold,capped")
    p.add_argument("--loaders", default="datumio,datumio no read-ahead,torch")
    p.add_argument("--child", choices=["datumio", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--readahead", type=int, default=3, help="Loader(readahead=) of datumio")
    p.add_argument("--locality", type=int, default=0, help="Loader(locality=) of datumio")
    p.add_argument("--datasets", default="keep,short256", help="which datasets to run")
    a = p.parse_args(argv)
    if a.child:
        return child(a)
    datasets = ensure(a)
    emit({"what": "machine", "cpus": os.cpu_count(), "root": os.geteuid() == 0})
    loaders = a.loaders.split(",")
    for setting in a.settings.split(","):
        for name, path in datasets.items():
            for loader in loaders:
                if loader == "torch" and name != "keep":
                    continue  # the peer reads the original files once per setting
                label = loader if loader == "torch" else f"{loader} {name}"
                if setting == "warm":
                    run(a, "warm", label, path, report=False)  # fills the page cache
                run(a, setting, label, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
