"""datumio against other data loaders: the same JPEG bytes, the same recipe, each fast path.

Input: the benchmark corpus resized once to a short side of 256 px, JPEG quality 90
(``bench_doors.prepare``: ``bench-out/doors/images``, one folder per class). Every system
reads these same files, never re-encoded, from a format built once under ``bench-out/peers/``:
a file list (torch, grain), a datumio LMDB (``encode="keep"``), an FFCV ``.beton`` holding
each file's original bytes in its ``jpg`` record layout; DALI reads the folder itself.

Recipe: RandomResizedCrop 224 (scale 0.08-1, ratio 3/4-4/3) + horizontal flip, uint8 out,
batch 64 (full batches), shuffled, 2 worker processes (2 threads for DALI and FFCV, their
fast path), warm page cache; each system's own ops (see the ``run_*`` functions).

Each run is its own process (``--one SYSTEM``), rounds interleaved (order rotated). Before a
run the script waits (``--max-wait``) until the 1-minute load is at most 0.5 above what its
own earlier runs still add (decaying over 60 s); during the timed batches, CPU time spent
outside the run's process tree (``/proc/stat`` less the tree's ``/proc/PID/stat``) above 0.5
core marks the run disturbed, and it is run again (``--retries``). Reported: median images/s
over kept runs, the median per-round ratio to datumio, the median first-batch latency
(constructing the loader to its first batch: worker start and JIT included), the whole
process tree's CPU time per image, and for datumio the share of crops whose JPEG was decoded
alone (region decoding; ``Loader.stats``) rather than whole. A peer that
does not import is skipped with one line. Peers live in their own venv (see
``benchmarks/README.md``); run it alone:
``flock /tmp/datumio-bench.lock bench-out/venv-peers/bin/python benchmarks/bench_peers.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE, BATCH, WORKERS, WARMUP = 224, 64, 2, 4
SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)
IMPORTS = {"torch-tv2": "torchvision", "torch-pil": "torchvision", "grain": "grain,cv2"}
IMPORTS |= {"datumio": "datumio", "dali": "nvidia.dali", "ffcv": "ffcv"}
OWN_LOAD = WORKERS + 1  # runnable tasks one run adds: the workers and the main process


# -- the systems: each returns an endless iterator of batches of 64 ----------------------


def run_datumio(work: str) -> Iterator[Any]:
    """The Loader over the ``keep`` LMDB: one fused decode + crop + flip per image."""
    import datumio

    transform = datumio.Transform(
        size=SIZE, crop_scale=SCALE, flip=0.5, dtype="uint8", layout="HWC", normalize=False
    )
    path = os.path.join(work, "peers", "datumio.lmdb")
    loader = datumio.Loader(path, BATCH, transform=transform, workers=WORKERS, sampling="natural")
    with loader:
        while True:
            for batch in loader:
                stats = loader.stats
                CROPS.update(regions=stats.jpeg_regions, whole=stats.jpeg_whole)
                yield batch


#: datumio's crop decodes so far in this process: crops decoded alone, whole images.
CROPS: dict[str, int] = {"regions": 0, "whole": 0}


def file_list(work: str) -> list[tuple[str, int]]:
    """(path, class number) of every image, from ``peers/files.txt``."""
    with open(os.path.join(work, "peers", "files.txt")) as fh:
        return [(p, int(c)) for p, c in (line.rstrip("\n").split("\t") for line in fh)]


def _torch_loader(work: str, load: Callable[[str], Any], *tail: Any) -> Iterator[Any]:
    """A map-style dataset over the file list in a shuffled DataLoader, torchvision v2 ops."""
    import torch
    from torchvision.transforms import v2

    crop = v2.RandomResizedCrop(SIZE, SCALE, RATIO, antialias=True)
    recipe = v2.Compose([crop, v2.RandomHorizontalFlip(), *tail])
    files = file_list(work)

    class Files(torch.utils.data.Dataset[Any]):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int) -> tuple[Any, int]:
            return recipe(load(files[i][0])), files[i][1]

    loader = torch.utils.data.DataLoader(
        Files(), BATCH, shuffle=True, num_workers=WORKERS, drop_last=True, persistent_workers=True
    )
    while True:
        yield from loader


def run_torch_tv2(work: str) -> Iterator[Any]:
    """Tensors all the way: ``torchvision.io.decode_jpeg`` on the file's bytes."""
    from torchvision.io import decode_jpeg, read_file

    return _torch_loader(work, lambda path: decode_jpeg(read_file(path)))


def run_torch_pil(work: str) -> Iterator[Any]:
    """Pillow decode, v2 on the PIL image, ``PILToTensor`` last."""
    from PIL import Image
    from torchvision.transforms import v2

    def load(path: str) -> Any:
        with Image.open(path) as img:
            return img.convert("RGB")

    return _torch_loader(work, load, v2.PILToTensor())


def crop_box(rng: np.random.Generator, h: int, w: int) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop parameter draw (10 tries, then the centre crop)."""
    area, logs = h * w, (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*SCALE)
        aspect = math.exp(rng.uniform(*logs))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return top, left, ch, cw
    if w / h < RATIO[0]:
        cw, ch = w, round(w / RATIO[0])
    elif w / h > RATIO[1]:
        cw, ch = round(h * RATIO[1]), h
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def run_grain(work: str) -> Iterator[Any]:
    """A MapDataset (shuffled each epoch), OpenCV decode + crop + flip, 2 worker processes."""
    import cv2
    import grain

    def sample(item: tuple[str, int], rng: np.random.Generator) -> tuple[Any, int]:
        cv2.setNumThreads(1)  # one core per worker, like every other system here
        with open(item[0], "rb") as fh:
            bgr: Any = cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR)
        top, left, ch, cw = crop_box(rng, *bgr.shape[:2])
        how = cv2.INTER_AREA if ch * cw > SIZE * SIZE else cv2.INTER_LINEAR  # antialiased down
        out = cv2.resize(bgr[top : top + ch, left : left + cw], (SIZE, SIZE), interpolation=how)
        out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
        return (out[:, ::-1] if rng.random() < 0.5 else out), item[1]

    ds = grain.MapDataset.source(file_list(work)).shuffle(seed=0).repeat()
    ds = ds.random_map(sample, seed=0).batch(BATCH, drop_remainder=True)
    options = grain.MultiprocessingOptions(num_workers=WORKERS)
    yield from ds.to_iter_dataset().mp_prefetch(options)


def run_dali(work: str) -> Iterator[Any]:
    """A CPU pipeline; ``random_shuffle`` is DALI's shuffle buffer (1,024 files by default)."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=BATCH, num_threads=WORKERS, device_id=None, seed=0)
    def pipe() -> Any:
        jpegs, labels = fn.readers.file(
            file_root=os.path.join(work, "doors", "images"), random_shuffle=True
        )
        images = fn.decoders.image_random_crop(
            jpegs, device="cpu", output_type=types.RGB, random_area=SCALE, random_aspect_ratio=RATIO
        )
        images = fn.resize(images, resize_x=SIZE, resize_y=SIZE)
        return fn.flip(images, horizontal=fn.random.coin_flip()), labels

    p = pipe()
    p.build()
    while True:
        yield p.run()


def run_ffcv(work: str) -> Iterator[Any]:
    """The ``.beton`` with FFCV's fused JPEG decode + crop (numba, threads), RANDOM order."""
    from ffcv.fields.basics import IntDecoder
    from ffcv.fields.rgb_image import RandomResizedCropRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import RandomHorizontalFlip

    image = [RandomResizedCropRGBImageDecoder((SIZE, SIZE), SCALE, RATIO), RandomHorizontalFlip()]
    loader = Loader(
        os.path.join(work, "peers", "images.beton"),
        batch_size=BATCH,
        num_workers=WORKERS,
        order=OrderOption.RANDOM,
        drop_last=True,
        os_cache=True,
        pipelines={"image": image, "label": [IntDecoder()]},
    )
    while True:
        yield from loader


RUNS: dict[str, Callable[[str], Iterator[Any]]] = {
    "datumio": run_datumio,
    "torch-tv2": run_torch_tv2,
    "torch-pil": run_torch_pil,
    "grain": run_grain,
    "dali": run_dali,
    "ffcv": run_ffcv,
}
SYSTEMS = tuple(RUNS)


# -- inputs, built once -------------------------------------------------------------------


def build_inputs(work: str, systems: Iterable[str]) -> int:
    """Write the file list, the datumio LMDB and the FFCV .beton when missing; warm the cache."""
    sys.path.insert(0, os.path.join(_REPO, "benchmarks"))
    from bench_doors import prepare

    images, files = prepare(work)
    out = os.path.join(work, "peers")
    os.makedirs(out, exist_ok=True)
    names = sorted({name for _, name in files})
    listing = os.path.join(out, "files.txt")
    if not os.path.isfile(listing):
        with open(listing + ".tmp", "w") as fh:
            fh.writelines(f"{path}\t{names.index(name)}\n" for path, name in files)
        os.rename(listing + ".tmp", listing)
    if "datumio" in systems and not os.path.exists(os.path.join(out, "datumio.lmdb")):
        import datumio

        datumio.ingest(images, os.path.join(out, "datumio.lmdb"), encode="keep", workers=WORKERS)
    if "ffcv" in systems and not os.path.exists(os.path.join(out, "images.beton")):
        write_beton(os.path.join(out, "images.beton"), files, names)
    for root in (images, out):  # the warm page cache every run starts from
        for folder, _, entries in os.walk(root):
            for entry in entries:
                with open(os.path.join(folder, entry), "rb") as fh:
                    while fh.read(1 << 24):
                        pass
    return len(files)


def write_beton(path: str, files: list[tuple[str, str]], names: list[str]) -> None:
    """An FFCV dataset whose image records are the original JPEG files' bytes (mode ``jpg``)."""
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter
    from PIL import Image

    def keep_bytes(destination: Any, item: tuple[bytes, int, int], malloc: Any) -> None:
        data, width, height = item  # RGBImageField.encode's jpg branch, without the re-encode
        destination["mode"] = 0  # IMAGE_MODES["jpg"]
        destination["height"], destination["width"] = height, width
        destination["data_ptr"], storage = malloc(len(data))
        storage[:] = np.frombuffer(data, np.uint8)

    class Originals:
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int) -> tuple[tuple[bytes, int, int], int]:
            with open(files[i][0], "rb") as fh:
                data = fh.read()
            with Image.open(files[i][0]) as img:
                return (data, *img.size), names.index(files[i][1])

    field = RGBImageField(write_mode="jpg")
    field.encode = keep_bytes  # an instance patch: the writer keys on type(field)
    writer = DatasetWriter(
        path + ".tmp", {"image": field, "label": IntField()}, num_workers=WORKERS
    )
    writer.from_indexed_dataset(Originals())
    os.rename(path + ".tmp", path)


# -- one run, and the load around it ------------------------------------------------------


def run_one(system: str, work: str, batches: int) -> dict[str, float]:
    """Construct the system's loader, time its first batch, then ``batches`` after a warm-up.

    ``other_load``: the cores busy during the timed batches with work not of this process
    tree (``/proc/stat`` less the tree's CPU time), what tells a disturbed run;
    ``cpu_us``: the tree's CPU time (main process, workers, threads) per image.
    """
    start = time.perf_counter()
    it = RUNS[system](work)
    next(it)
    first = time.perf_counter() - start
    for _ in range(WARMUP):
        next(it)
    busy, ours, start = busy_seconds(), tree_cpu(), time.perf_counter()
    crops = dict(CROPS)
    for _ in range(batches):
        next(it)
    wall = time.perf_counter() - start
    spent = tree_cpu() - ours
    other = (busy_seconds() - busy - spent) / wall
    result = {
        "rate": batches * BATCH / wall,
        "first_batch_s": first,
        "other_load": other,
        "cpu_us": spent / (batches * BATCH) * 1e6,
    }
    regions, whole = (CROPS[k] - crops[k] for k in ("regions", "whole"))
    if regions + whole:  # datumio: the share of crops decoded alone in the timed batches
        result["crops_alone"] = regions / (regions + whole)
    return result


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def tree_cpu() -> float:
    """CPU seconds of this process and all its descendants (threads and reaped ones included)."""
    parent, cpu = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        parent[int(pid)] = int(fields[1])
        cpu[int(pid)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    tree, todo = set(), [os.getpid()]
    while todo:
        tree.add(node := todo.pop())
        todo += [child for child, up in parent.items() if up == node]
    return sum(cpu.get(node, 0) for node in tree) / os.sysconf("SC_CLK_TCK")


class Quiet:
    """Waits for the machine to be quiet before a run and tells whether a run was disturbed."""

    def __init__(self, max_wait: float, slack: float = 0.5) -> None:
        self.max_wait, self.slack = max_wait, slack
        self.own = 0.0  # what our earlier runs add to the 1-minute load
        self.since = time.monotonic()

    def own_load(self) -> float:
        return self.own * math.exp(-(time.monotonic() - self.since) / 60)

    def wait(self) -> str:
        """Wait until the 1-minute load is at most slack + our own; say what happened."""
        start = time.monotonic()
        while True:
            with open("/proc/loadavg") as fh:
                load = float(fh.read().split()[0])
            limit = self.slack + self.own_load()
            if load <= limit:
                waited = time.monotonic() - start
                return f"waited {waited:.0f} s" if waited > 1 else ""
            if time.monotonic() - start >= self.max_wait:
                return f"load {load:.2f} > {limit:.2f} after {self.max_wait:.0f} s: ran anyway"
            time.sleep(5)

    def ran(self, wall: float) -> None:
        """Account a finished run of ``wall`` seconds into our own load."""
        own = self.own_load()
        self.own = own + (OWN_LOAD - own) * (1 - math.exp(-wall / 60))
        self.since = time.monotonic()


def measured(system: str, args: argparse.Namespace, quiet: Quiet) -> dict[str, Any]:
    """One run in a fresh process, re-run while other load disturbs it (``--retries``)."""
    cmd = [sys.executable, __file__, "--work", args.work, "--batches", str(args.batches)]
    for attempt in range(args.retries + 1):
        note = quiet.wait()
        start = time.monotonic()
        done = subprocess.run([*cmd, "--one", system], capture_output=True, text=True)
        quiet.ran(time.monotonic() - start)
        if done.returncode != 0:
            return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
        got = json.loads(done.stdout.splitlines()[-1])
        got |= {"kept": got["other_load"] <= quiet.slack, "note": note}
        print(
            f"  {system:10} {got['rate']:7.0f} img/s  first batch {got['first_batch_s']:5.2f} s"
            f"  other load {got['other_load']:4.2f}{'' if got['kept'] else ' (disturbed)'} {note}",
            file=sys.stderr,
        )
        if got["kept"] or attempt == args.retries:
            break
    return got


def importable(system: str) -> str:
    """'' when the system's modules import, else the one-line reason."""
    for module in IMPORTS[system].split(","):
        try:
            __import__(module)
        except Exception as exc:  # any import failure means "skip it"
            return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return ""


def summary(runs: dict[str, list[dict[str, Any]]], rounds: int) -> dict[str, dict[str, Any]]:
    """Median img/s over kept runs (all when none was kept), the per-round ratio to datumio."""
    base = runs.get("datumio", [])
    table = {}
    for system, got in runs.items():
        kept = [r for r in got if r["kept"]] or got
        ratios = [r["rate"] / b["rate"] for r, b in zip(got, base, strict=False)]
        table[system] = {
            "img_s": statistics.median(r["rate"] for r in kept),
            "vs_datumio": statistics.median(ratios) if ratios else float("nan"),
            "first_batch_s": statistics.median(r["first_batch_s"] for r in kept),
            "cpu_us_per_image": statistics.median(r["cpu_us"] for r in kept),
            "kept": f"{sum(r['kept'] for r in got)}/{rounds}",
            "runs": [round(r["rate"]) for r in got],
        }
        if alone := [r["crops_alone"] for r in kept if "crops_alone" in r]:
            table[system]["crops_decoded_alone"] = min(alone)
    return table


def report(
    args: argparse.Namespace, count: int, table: dict[str, Any], skipped: dict[str, str]
) -> None:
    """The table, or JSON with ``--json``, then the skipped peers, one line each."""
    if args.json:
        print(json.dumps({"images": count, "results": table, "skipped": skipped}, indent=1))
        return
    print(f"{count} images, batch {BATCH}, {WORKERS} workers, {args.batches} timed batches a run")
    print(
        f"{'system':<10} {'img/s':>7} {'vs datumio':>10} {'first batch s':>13} "
        f"{'CPU us/img':>10} {'kept':>6}  runs"
    )
    for system, row in table.items():
        print(
            f"{system:<10} {row['img_s']:>7,.0f} {row['vs_datumio']:>9.2f}x "
            f"{row['first_batch_s']:>13.2f} {row['cpu_us_per_image']:>10,.0f} {row['kept']:>6}  "
            f"{row['runs']}"
        )
    for system, row in table.items():
        if "crops_decoded_alone" in row:
            print(
                f"{system}: {row['crops_decoded_alone']:.1%} of crops decoded alone "
                "(the rest whole)"
            )
    for system, why in skipped.items():
        print(f"skipped {system}: {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(_REPO, "bench-out"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=100, help="timed batches per run")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--retries", type=int, default=2, help="re-runs of a disturbed run")
    parser.add_argument("--max-wait", type=float, default=300, help="seconds to wait for quiet")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.work, args.batches)))
        return 0
    wanted = [s for s in args.systems.split(",") if s]
    if set(wanted) - set(SYSTEMS):
        parser.error(f"unknown systems in {args.systems!r}; choose from {', '.join(SYSTEMS)}")
    skipped = {s: why for s in wanted if (why := importable(s))}
    systems = [s for s in wanted if s not in skipped]
    count, quiet = build_inputs(args.work, systems), Quiet(args.max_wait)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    for i in range(args.rounds):
        print(f"round {i + 1}/{args.rounds}", file=sys.stderr)
        for system in systems[i % len(systems) :] + systems[: i % len(systems)]:
            got = {} if system in skipped else measured(system, args, quiet)
            if "error" in got:
                skipped[system] = f"run failed: {got['error']}"
            elif got:
                runs[system].append(got)
    table = summary({s: r for s, r in runs.items() if s not in skipped}, args.rounds)
    report(args, count, table, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
