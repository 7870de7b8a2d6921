"""Ingest throughput against the single-process limits measured in the same run.

Measures, on the long-tailed benchmark corpus (``benchmarks/make_corpus.py``):

a. single-process Pillow decode: read + ``Image.open`` + ``load()`` + ``convert("RGB")``;
b. single-process ``datumio.ingest.work.process_file`` with the spec of each ingest config
   (the whole per-file worker cost: decode, check, resize, encode, CRC, histogram);
c. ``datumio.ingest`` wall-clock throughput with ``--workers`` processes for
   ``encode="keep"`` and ``encode="jpeg", short_side=256``.

Efficiency = ingest rate / (single-process ``process_file`` rate x workers), against the 80%
target (docs/benchmarks.md); the same ratio against the pure decode rate (a) is reported too.
The main process's own CPU time during ingest (``getrusage``) shows how much of the machine it takes
from the workers. ``--profile`` adds a cProfile of the main process during one ingest run.

Run it alone (``flock /tmp/datumio-bench.lock python benchmarks/bench_ingest.py``): the
figures are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import PIL
from PIL import Image

import datumio
from datumio.ingest.pipeline import work_spec
from datumio.ingest.sources import list_folders
from datumio.ingest.work import Accepted, WorkSpec, process_file

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MAKE_CORPUS = os.path.join(_REPO, "benchmarks", "make_corpus.py")
_TARGET = 0.80

# name -> IngestOptions keywords (workers and overwrite are added per run)
CONFIGS: dict[str, dict[str, Any]] = {
    "keep": {"encode": "keep"},
    "jpeg-short256": {"encode": "jpeg", "short_side": 256},
}


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "datumio": datumio.__version__,
        "load_avg": [round(v, 2) for v in os.getloadavg()],
    }


def ensure_corpus(corpus: str) -> None:
    if os.path.isfile(os.path.join(corpus, "corpus.json")):
        return
    print(f"building the corpus in {corpus} ...", file=sys.stderr)
    subprocess.run([sys.executable, _MAKE_CORPUS, corpus], check=True)


def spec_for(root: str, options: datumio.IngestOptions) -> WorkSpec:
    """The WorkSpec ``datumio.ingest`` builds for ``options``."""
    return work_spec(root, options)


def pillow_decode_rate(root: str, rels: list[str]) -> float:
    start = time.perf_counter()
    for rel in rels:
        with open(os.path.join(root, rel), "rb") as fh:
            data = fh.read()
        img = Image.open(io.BytesIO(data))
        img.load()
        img.convert("RGB")
    return len(rels) / (time.perf_counter() - start)


def process_file_rate(rels: list[str], spec: WorkSpec) -> float:
    start = time.perf_counter()
    for rel in rels:
        outcome = process_file(rel, spec)
        if not isinstance(outcome, Accepted):
            raise RuntimeError(f"{rel} was rejected: {outcome}")
    return len(rels) / (time.perf_counter() - start)


def _decode_slice(rels: list[str], root: str) -> int:
    pillow_decode_rate(root, rels)
    return len(rels)


def _work_slice(rels: list[str], spec: WorkSpec) -> int:
    process_file_rate(rels, spec)
    return len(rels)


def parallel_rate(workers: int, fn: Any, rels: list[str], *args: Any) -> float:
    """Images/s of ``fn`` over ``rels`` split statically across ``workers`` processes.

    The machine's own parallel limit for the same work, with no pipeline in between.
    """
    slices = [rels[w::workers] for w in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(abs, range(workers)))  # start the workers before timing
        start = time.perf_counter()
        futures = [pool.submit(fn, part, *args) for part in slices]
        done = sum(f.result() for f in futures)
        return done / (time.perf_counter() - start)


def ingest_once(
    corpus: str, out: str, options: datumio.IngestOptions, profile: bool = False
) -> dict[str, Any]:
    """One ingest run: wall rate, and the main process's CPU share of the wall time."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = datumio.ingest(corpus, out, options)
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    main_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The pool has been shut down and joined, so its workers' CPU time is in RUSAGE_CHILDREN.
    workers_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    result = {
        "records": report.num_records,
        "seconds": wall,
        "images_per_s": report.num_records / wall,
        "main_cpu_s": main_cpu,
        "main_cpu_ms_per_image": 1000 * main_cpu / report.num_records,
        "workers_cpu_s": workers_cpu,
        "bytes": sum(s.file_bytes for s in report.manifest.shards),
    }
    if profiler is not None:
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("tottime").print_stats(18)
        result["profile"] = buf.getvalue()
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_corpus(args.corpus)
    listing = list_folders(args.corpus)
    rels = [item.rel for item in listing.items]
    if args.limit:  # an evenly spread subset, so every class folder is represented
        rels = rels[:: max(1, len(rels) // args.limit)][: args.limit]
    os.makedirs(args.out, exist_ok=True)
    info = machine()
    decode: list[float] = []
    decode_par: list[float] = []
    single: dict[str, list[float]] = {name: [] for name in CONFIGS}
    single_par: dict[str, list[float]] = {name: [] for name in CONFIGS}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    profiles: dict[str, str] = {}
    for rep in range(args.repeat):
        # Interleave the measurements so drift in machine load hits all of them alike.
        decode.append(pillow_decode_rate(args.corpus, rels))
        decode_par.append(parallel_rate(args.workers, _decode_slice, rels, args.corpus))
        for name, kwargs in CONFIGS.items():
            options = datumio.IngestOptions(workers=args.workers, overwrite=True, **kwargs)
            spec = spec_for(args.corpus, options)
            single[name].append(process_file_rate(rels, spec))
            single_par[name].append(parallel_rate(args.workers, _work_slice, rels, spec))
            out = os.path.join(args.out, f"ingest-{name}.lmdb")
            profile = args.profile and rep == args.repeat - 1
            result = ingest_once(args.corpus, out, options, profile=profile)
            if "profile" in result:
                profiles[name] = result.pop("profile")
            runs[name].append(result)
        print(f"repeat {rep + 1}/{args.repeat} done", file=sys.stderr)
    if not args.keep_output:
        for name in CONFIGS:
            shutil.rmtree(os.path.join(args.out, f"ingest-{name}.lmdb"), ignore_errors=True)
    decode_rate = statistics.median(decode)
    rows = []
    for name in CONFIGS:
        single_rate = statistics.median(single[name])
        rate = statistics.median(r["images_per_s"] for r in runs[name])
        wall = statistics.median(r["seconds"] for r in runs[name])
        main_cpu = statistics.median(r["main_cpu_s"] for r in runs[name])
        workers_cpu = statistics.median(r["workers_cpu_s"] for r in runs[name])
        par_rate = statistics.median(single_par[name])
        n = runs[name][0]["records"]
        rows.append(
            {
                "config": name,
                "options": CONFIGS[name],
                "records": runs[name][0]["records"],
                "pillow_decode_1p": round(decode_rate, 1),
                "pillow_decode_parallel": round(statistics.median(decode_par), 1),
                "process_file_1p": round(single_rate, 1),
                "process_file_parallel": round(par_rate, 1),
                "ingest": round(rate, 1),
                "ingest_runs": [round(r["images_per_s"], 1) for r in runs[name]],
                "efficiency": round(rate / (single_rate * args.workers), 3),
                "efficiency_vs_decode": round(rate / (decode_rate * args.workers), 3),
                "efficiency_vs_parallel": round(rate / par_rate, 3),
                # Best-of-N is less sensitive to other load on a shared machine.
                "ingest_best": round(max(r["images_per_s"] for r in runs[name]), 1),
                "process_file_1p_best": round(max(single[name]), 1),
                "efficiency_best": round(
                    max(r["images_per_s"] for r in runs[name]) / (max(single[name]) * args.workers),
                    3,
                ),
                "workers_cpu_ms_per_image": round(1000 * workers_cpu / n, 3),
                "process_file_1p_ms_per_image": round(1000 / single_rate, 3),
                "main_cpu_share": round(main_cpu / wall, 3),
                "main_cpu_ms_per_image": round(1000 * main_cpu / n, 3),
                "dataset_bytes": runs[name][0]["bytes"],
            }
        )
    info["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    return {
        "machine": info,
        "workers": args.workers,
        "repeat": args.repeat,
        "files": len(rels),
        "target_efficiency": _TARGET,
        "results": rows,
        "profiles": profiles,
    }


def print_table(res: dict[str, Any]) -> None:
    m = res["machine"]
    print(
        f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, Pillow {m['pillow']}, "
        f"numpy {m['numpy']}, datumio {m['datumio']}; load {m['load_avg']} -> {m['load_avg_end']}"
    )
    print(f"files: {res['files']}, workers: {res['workers']}, median of {res['repeat']} runs")
    w = res["workers"]
    head = (
        f"{'config':<15}{'decode 1p':>10}{f'decode {w}p':>10}{'work 1p':>9}{f'work {w}p':>9}"
        f"{'ingest':>8}{'eff':>7}{f'vs {w}p':>7}{'eff/dec':>8}{'wk ms':>7}{'main':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in res["results"]:
        print(
            f"{r['config']:<15}{r['pillow_decode_1p']:>10.0f}{r['pillow_decode_parallel']:>10.0f}"
            f"{r['process_file_1p']:>9.0f}{r['process_file_parallel']:>9.0f}{r['ingest']:>8.0f}"
            f"{r['efficiency']:>7.0%}{r['efficiency_vs_parallel']:>7.0%}"
            f"{r['efficiency_vs_decode']:>8.0%}{r['workers_cpu_ms_per_image']:>7.2f}"
            f"{r['main_cpu_share']:>7.0%}"
        )
    for r in res["results"]:
        print(
            f"best of {res['repeat']}, {r['config']}: ingest {r['ingest_best']:.0f}, work 1p "
            f"{r['process_file_1p_best']:.0f}, eff {r['efficiency_best']:.0%}; ingest runs "
            f"{r['ingest_runs']}"
        )
    print(
        f"rates in images/s (median); 'work' = datumio.ingest.work.process_file; eff = ingest / "
        f"(work 1p x {w}), target {res['target_efficiency']:.0%}; vs {w}p = ingest / work {w}p "
        f"(the machine's parallel limit); eff/dec = ingest / (decode 1p x {w}); wk ms = worker "
        "CPU ms per image during ingest; main = main-process CPU / ingest wall time"
    )
    for name, text in res["profiles"].items():
        print(f"\n== cProfile of the main process, ingest {name} ==\n{text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=os.path.join(_REPO, "bench-out", "corpus"))
    parser.add_argument("--out", default=os.path.join(_REPO, "bench-out"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        help="measure the 1p/Np limits on N files only (ingest always takes the whole corpus)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the main process")
    parser.add_argument("--keep-output", action="store_true", help="keep the ingested datasets")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    res = run(args)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
