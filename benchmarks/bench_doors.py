"""Every door in, against a plain folder ingest of the same images.

The input is the benchmark corpus (``benchmarks/make_corpus.py``, built on first use in
``bench-out/corpus``) resized once to a short side of 256 px and saved as JPEG quality 90
(``bench-out/doors/images``, one folder per class), and the same images in the other
forms each door takes:

* ``folder``: ``datumio.ingest(images, out)`` (the reference);
* ``Writer(paths)`` / ``Writer(bytes)``: ``datumio.Writer`` given each file's path, or its
  bytes read by the generator;
* ``huggingface (save_to_disk)`` / ``huggingface (parquet)``: a ``datasets.Dataset`` with
  an ``Image`` column (the JPEG bytes embedded) and a ``ClassLabel``, saved both ways,
  imported with ``datumio.ingest(path, out)``;
* with ``encode="jpeg"``: ``folder`` (decode + re-encode every file) against
  ``Writer(arrays)``, a generator that yields the decoded uint8 arrays from memory (the
  Writer encodes them: nothing to decode).

Every run uses ``workers=2``, LMDB, a fresh OUT; rounds are interleaved (each door once
per round, the order rotated) and the median is reported with the main process's CPU
share of the wall time. Needs the ``bench`` and ``huggingface`` extras. Run it alone:
``flock /tmp/datumio-bench.lock python benchmarks/bench_doors.py --rounds 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image

import datumio

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MAKE_CORPUS = os.path.join(_REPO, "benchmarks", "make_corpus.py")
SHORT_SIDE = 256


def prepare(work: str) -> tuple[str, list[tuple[str, str]]]:
    """The resized image folder (made once) and its (path, class) list, in folder order."""
    corpus = os.path.join(work, "corpus")
    if not os.path.isfile(os.path.join(corpus, "corpus.json")):
        print(f"building the corpus in {corpus} ...", file=sys.stderr)
        subprocess.run([sys.executable, _MAKE_CORPUS, corpus], check=True)
    images = os.path.join(work, "doors", "images")
    if not os.path.isdir(images):
        tmp = images + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for name in sorted(os.listdir(corpus)):
            folder = os.path.join(corpus, name)
            if not os.path.isdir(folder):
                continue
            os.makedirs(os.path.join(tmp, name))
            for file in sorted(os.listdir(folder)):
                with Image.open(os.path.join(folder, file)) as img:
                    rgb = img.convert("RGB")
                scale = SHORT_SIDE / min(rgb.size)
                size = (round(rgb.size[0] * scale), round(rgb.size[1] * scale))
                out = os.path.join(tmp, name, os.path.splitext(file)[0] + ".jpg")
                rgb.resize(size, Image.Resampling.BICUBIC).save(out, quality=90)
        os.rename(tmp, images)
    files = [
        (os.path.join(images, name, file), name)
        for name in sorted(os.listdir(images))
        for file in sorted(os.listdir(os.path.join(images, name)))
    ]
    return images, files


def hf_inputs(work: str, files: list[tuple[str, str]]) -> tuple[str, str]:
    """The same images as a saved Hugging Face dataset and as a Parquet file (made once)."""
    import datasets

    saved = os.path.join(work, "doors", "hf-saved")
    parquet = os.path.join(work, "doors", "hf-parquet", "train-00000-of-00001.parquet")
    if not os.path.isdir(saved) or not os.path.isfile(parquet):
        names = sorted({name for _, name in files})
        features = datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}
        )

        def rows() -> Iterator[dict[str, Any]]:
            for path, name in files:
                with open(path, "rb") as fh:
                    yield {"image": {"bytes": fh.read(), "path": None}, "label": name}

        ds = datasets.Dataset.from_generator(rows, features=features)
        shutil.rmtree(saved, ignore_errors=True)
        ds.save_to_disk(saved)
        os.makedirs(os.path.dirname(parquet), exist_ok=True)
        ds.to_parquet(parquet)
    return saved, os.path.dirname(parquet)


def timed(run: Callable[[], Any], count: int) -> dict[str, float]:
    """Images/s of ``run()`` and the main process's CPU share of its wall time."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rate": count / wall, "main_cpu": cpu / wall}


def doors(
    work: str, images: str, files: list[tuple[str, str]], encode: str
) -> dict[str, Callable[[str], Any]]:
    """Door name -> a function writing the images into a new dataset at OUT."""
    common: dict[str, Any] = {"workers": 2, "overwrite": True, "encode": encode}
    out: dict[str, Callable[[str], Any]] = {
        "folder": lambda o: datumio.ingest(images, o, **common),
    }
    if encode == "keep":

        def paths(o: str) -> None:
            with datumio.Writer(o, **common) as writer:
                for path, name in files:
                    writer.add(path, name)

        def raw(o: str) -> None:
            with datumio.Writer(o, **common) as writer:
                for path, name in files:
                    with open(path, "rb") as fh:
                        writer.add(fh.read(), name)

        saved, parquet = hf_inputs(work, files)
        out["Writer(paths)"] = paths
        out["Writer(bytes)"] = raw
        out["huggingface (save_to_disk)"] = lambda o: datumio.ingest(saved, o, **common)
        out["huggingface (parquet)"] = lambda o: datumio.ingest(parquet, o, **common)
        return out
    arrays = []
    for path, name in files:
        with Image.open(path) as img:
            arrays.append((np.asarray(img.convert("RGB")), name))

    def from_arrays(o: str) -> None:
        with datumio.Writer(o, **common) as writer:
            for array, name in arrays:
                writer.add(array, name)

    out["Writer(arrays)"] = from_arrays
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(_REPO, "bench-out"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    images, files = prepare(args.work)
    out = os.path.join(args.work, "doors", "out.lmdb")
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for encode in ("keep", "jpeg"):
        table = doors(args.work, images, files, encode)
        names = list(table)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                got = timed(lambda run=table[name]: run(out), len(files))
                results.setdefault(encode, {}).setdefault(name, []).append(got)
                print(f"{encode:5} {name:28} {got['rate']:7.0f} img/s", file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    summary = {
        encode: {
            name: {
                "rate": statistics.median(r["rate"] for r in runs),
                "main_cpu": statistics.median(r["main_cpu"] for r in runs),
                "runs": [round(r["rate"]) for r in runs],
            }
            for name, runs in by_door.items()
        }
        for encode, by_door in results.items()
    }
    if args.json:
        print(json.dumps({"images": len(files), "results": summary}, indent=2))
        return 0
    for encode, by_door in summary.items():
        base = by_door["folder"]["rate"]
        print(f"\nencode={encode}: images/s, median of {args.rounds} (vs folder ingest)")
        for name, row in by_door.items():
            runs = " / ".join(str(v) for v in row["runs"])
            print(
                f"  {name:28} {row['rate']:7.0f}  {row['rate'] / base:5.2f}x  "
                f"main CPU {row['main_cpu']:.0%}  ({runs})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
