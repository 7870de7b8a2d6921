"""``datumio demo``: draw a small long-tailed image set, ingest it, and show what is in it.

The images are drawn procedurally (no download): eight shape classes from 240 images
down to 10, 64x64, each with random colours, position, size and noise, saved as JPEG
and PNG files in a class-per-folder tree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from datumio.augment import Transform, opencv_probe
from datumio.errors import DatumioError, printable
from datumio.ingest import IngestOptions, ingest
from datumio.loader import Loader
from datumio.tools.outputs import check_output_folder
from datumio.tools.render import json_text, progress_bar, render_ingest

DEMO_CLASSES = ("circle", "square", "triangle", "cross", "ring", "stripes", "diamond", "star")
DEMO_COUNTS = (240, 150, 95, 60, 38, 24, 15, 10)
DEMO_SIZE = 64
#: The file that marks an image folder as the demo's own (only such a folder is replaced).
DEMO_MARK = ".datumio-demo"


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    angles = np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1]
    radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return [(cx + rr * np.cos(a), cy + rr * np.sin(a)) for a, rr in zip(angles, radii, strict=True)]


def draw_shape(name: str, rng: np.random.Generator, size: int = DEMO_SIZE) -> Image.Image:
    """One demo image of class ``name``."""
    bg = tuple(int(v) for v in rng.integers(0, 110, 3))
    fg = tuple(int(v) for v in rng.integers(140, 256, 3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    r = float(rng.uniform(0.22, 0.4) * size)
    cx, cy = (float(v) for v in rng.uniform(r, size - r, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    width = max(2, int(r / 3))
    if name == "circle":
        draw.ellipse(box, fill=fg)
    elif name == "square":
        draw.rectangle(box, fill=fg)
    elif name == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif name == "cross":
        draw.line((cx - r, cy, cx + r, cy), fill=fg, width=width)
        draw.line((cx, cy - r, cx, cy + r), fill=fg, width=width)
    elif name == "ring":
        draw.ellipse(box, outline=fg, width=width)
    elif name == "stripes":
        for x in range(int(cx - r), int(cx + r), 2 * width):
            draw.rectangle((x, cy - r, x + width - 1, cy + r), fill=fg)
    elif name == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fg)
    else:
        draw.polygon(_star(cx, cy, r), fill=fg)
    noise = rng.normal(0, 8, (size, size, 3))
    pixels = np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def write_demo_images(root: str, seed: int = 0) -> int:
    """Write the demo image tree below ``root``; returns the number of files."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, DEMO_MARK), "w", encoding="utf-8") as fh:
        fh.write("drawn by datumio demo; a later `datumio demo` run replaces this folder\n")
    total = 0
    for c, (name, count) in enumerate(zip(DEMO_CLASSES, DEMO_COUNTS, strict=True)):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, c, i])
            img = draw_shape(name, rng)
            ext = "png" if i % 4 == 0 else "jpg"
            img.save(os.path.join(folder, f"{name}_{i:03d}.{ext}"), quality=92)
            total += 1
    return total


def build_parser(prog: str = "datumio demo") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Draw a small long-tailed image set (8 shape classes, 240 down to 10 "
        "images), ingest it into an LMDB dataset, print what is in it, and run one "
        "label-balanced epoch through the Loader.",
        epilog="examples:\n  datumio demo\n  datumio demo --out /tmp/demo --json\n\n"
        "exit status: 0 done, 1 failed, 2 bad usage (an --out that cannot be written).\n\n"
        "datumio demo and datumio-demo are the same command.\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(prog=prog)
    parser.add_argument(
        "--out", default="datumio-demo", help="working folder (default ./datumio-demo)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn images")
    parser.add_argument("--workers", type=int, help="ingest processes (default: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    return parser


def run(args: argparse.Namespace) -> int:
    prog = getattr(args, "prog", "datumio demo")
    try:
        check_output_folder("--out", args.out)
    except DatumioError as exc:
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return 2
    images = os.path.join(args.out, "images")
    dataset = os.path.join(args.out, "demo.lmdb")
    if os.path.lexists(images):
        if not os.path.isfile(os.path.join(images, DEMO_MARK)):
            print(
                f"{prog}: {printable(images)} exists and was not drawn by datumio demo: nothing "
                "there is deleted; choose another --out",
                file=sys.stderr,
            )
            return 2
        shutil.rmtree(images)  # the demo's own images of an earlier run
    write_demo_images(images, args.seed)
    bar = progress_bar("ingest", unit="img", quiet=args.quiet)
    try:
        report = ingest(
            images,
            dataset,
            IngestOptions(overwrite=True, workers=args.workers),
            progress=bar.update,
        )
    except DatumioError as exc:
        bar.close()
        print(f"{prog}: {printable(exc)}", file=sys.stderr)
        return 1
    bar.close()
    if args.json:
        print(json_text(report.to_dict()))
        return 0
    print(render_ingest(report))
    print(_loader_tour(dataset, args.workers or 2))
    shown = printable(dataset)
    print(
        f"\nimages drawn in {printable(images)}/; dataset at {shown}\n"
        f"read it:  python -c \"import datumio; ds = datumio.open('{shown}'); "
        'print(ds, ds[0][0].shape)"'
    )
    return 0


def _loader_tour(dataset: str, workers: int) -> str:
    """One balanced epoch through the Loader: what the model would see."""
    spec = Transform(size=(DEMO_SIZE, DEMO_SIZE), flip=0.5)
    started = time.perf_counter()
    with Loader(
        dataset, 32, sampling="balanced", workers=workers, transform=spec, drop_last=False
    ) as loader:
        names = loader.dataset.class_names
        drawn = np.zeros(len(names), dtype=np.int64)
        shape = None
        for images, labels in loader:
            drawn += np.bincount(labels, minlength=len(names))
            shape = shape or images.shape
        seconds = time.perf_counter() - started
    per_class = ", ".join(f"{n} {c}" for n, c in zip(names, drawn.tolist(), strict=True))
    return (
        f"\none balanced epoch through datumio.Loader ({workers} workers, batches of "
        f"{shape} float32): {int(drawn.sum())} images in {seconds:.1f} s\n"
        f"  drawn per class: {per_class}\n"
        f"  decoding and augmentation: {opencv_probe.describe()}"
    )


def main(argv: Sequence[str] | None = None, prog: str = "datumio demo") -> int:
    """Entry point of ``datumio demo`` and ``datumio-demo`` (``prog`` names it)."""
    return run(build_parser(prog).parse_args(argv))
