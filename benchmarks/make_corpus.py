#!/usr/bin/env python3
"""Deterministic long-tailed JPEG image-classification corpus (ImageFolder layout).

    python make_corpus.py OUT_DIR [--classes N] [--max-per-class N]
                                  [--min-per-class N] [--seed S] [--jobs J]

Writes OUT_DIR/<class_name>/<class_name>_<idx>.jpg plus OUT_DIR/manifest.csv
(relative path, label index, class name, width, height, bytes) and
OUT_DIR/corpus.json (parameters, per-class counts, size statistics).

Content: real photographs and textures bundled inside the scikit-image wheel
(skimage/data/*.png|jpg, no download).  Each class gets a primary source photo,
a secondary one and its own colour tint; every image is a random crop
(scale + aspect jitter) of one of the class's sources (15% of the time a random
other source, so classes are not trivially separable), rescaled so that its
sides fall in roughly 250-600 px (ImageNet-like), randomly flipped, tinted,
brightness/contrast/gamma-jittered, given mild Gaussian + chroma noise, and
saved as baseline JPEG quality 90, 4:2:0 (Pillow's default subsampling).

Class sizes follow the exponential long-tail profile used by CIFAR-10/100-LT
(n_i = max * (min/max)^(i/(C-1))), so the defaults (20 classes, 800 -> 10,
imbalance ratio 80) give ~3,850 images.

Determinism: every image draws from its own numpy Generator seeded by
(seed, class, index), so the output does not depend on --jobs.  Files are
byte-identical for the same seed, numpy, Pillow/libjpeg-turbo and scikit-image
versions.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

# Real photos / textures shipped in the scikit-image wheel.  (name, is_colour)
SOURCES = [
    ("astronaut.png", True),
    ("coffee.png", True),
    ("chelsea.png", True),
    ("rocket.jpg", True),
    ("motorcycle_left.png", True),
    ("motorcycle_right.png", True),
    ("hubble_deep_field.jpg", True),
    ("retina.jpg", True),
    ("ihc.png", True),
    ("camera.png", False),
    ("brick.png", False),
    ("grass.png", False),
    ("gravel.png", False),
    ("moon.png", False),
    ("coins.png", False),
    ("cell.png", False),
    ("clock_motion.png", False),
]

MIN_SIDE, MAX_SIDE = 250, 600
JPEG_QUALITY = 90

_SRC_CACHE: list[np.ndarray] | None = None


def skimage_data_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "scikit-image is required (pip install scikit-image): "
            "its bundled photos are the content source"
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), "data")


def load_sources() -> list[np.ndarray]:
    global _SRC_CACHE
    if _SRC_CACHE is None:
        d = skimage_data_dir()
        out = []
        for name, _colour in SOURCES:
            im = Image.open(os.path.join(d, name)).convert("RGB")
            out.append(np.asarray(im, dtype=np.uint8))
        _SRC_CACHE = out
    return _SRC_CACHE


def class_counts(n_classes: int, max_per_class: int, min_per_class: int) -> list[int]:
    if n_classes == 1:
        return [max_per_class]
    r = min_per_class / max_per_class
    return [max(1, round(max_per_class * r ** (i / (n_classes - 1)))) for i in range(n_classes)]


def class_style(seed: int, c: int, n_src: int) -> dict:
    rng = np.random.default_rng([seed, 1_000_003, c])
    primary = (c * 7 + 3) % n_src
    secondary = (primary + 1 + int(rng.integers(0, n_src - 1))) % n_src
    hue = (c / 20.0 + rng.uniform(-0.02, 0.02)) % 1.0
    # tint = multiplicative RGB gain around 1.0 in a class-specific hue direction
    ang = 2 * math.pi * hue
    tint = 1.0 + 0.22 * np.array([math.cos(ang), math.cos(ang - 2.094), math.cos(ang + 2.094)])
    return {"primary": primary, "secondary": secondary, "tint": tint.tolist()}


def class_name(c: int) -> str:
    return f"class_{c:02d}"


def sample_out_size(rng: np.random.Generator) -> tuple[int, int]:
    # ImageNet-ish: long side mostly 375-600, common aspect ratios, short side >= 250
    ar = float(rng.choice([1.0, 4 / 3, 4 / 3, 3 / 2, 3 / 2, 16 / 9, 5 / 4])) * math.exp(
        rng.normal(0, 0.05)
    )
    long_side = int(rng.triangular(300, 520, MAX_SIDE + 1))
    long_side = min(long_side, MAX_SIDE)
    short_side = max(MIN_SIDE, min(long_side, round(long_side / ar)))
    if rng.random() < 0.3:  # portrait
        return short_side, long_side
    return long_side, short_side


def make_image(seed: int, c: int, idx: int, style: dict) -> Image.Image:
    srcs = load_sources()
    rng = np.random.default_rng([seed, c, idx])
    u = rng.random()
    if u < 0.6:
        si = style["primary"]
    elif u < 0.85:
        si = style["secondary"]
    else:
        si = int(rng.integers(0, len(srcs)))
    src = srcs[si]
    sh, sw = src.shape[:2]
    out_w, out_h = sample_out_size(rng)
    out_ar = out_w / out_h

    # random crop of the source with the output's aspect ratio, 25-100% of the max area
    max_cw = min(sw, sh * out_ar)
    frac = math.sqrt(rng.uniform(0.25, 1.0))
    cw = max(32.0, max_cw * frac)
    ch = cw / out_ar
    x0 = rng.uniform(0, max(0.0, sw - cw))
    y0 = rng.uniform(0, max(0.0, sh - ch))
    im = Image.fromarray(src)
    im = im.resize((out_w, out_h), Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    # pointwise colour jitter (contrast, brightness, class tint, gamma) as one
    # 256-entry lookup table per channel, applied by Pillow
    tint = np.asarray(style["tint"]) * rng.uniform(0.93, 1.07, size=3)
    gain = rng.uniform(0.8, 1.2)
    contrast = rng.uniform(0.8, 1.25)
    gamma = rng.uniform(0.85, 1.15)
    mean = float(np.asarray(im.reduce(8)).mean())
    x = np.arange(256, dtype=np.float64)
    lut = []
    for ch in range(3):
        y = ((x - mean) * contrast + mean * gain) * tint[ch]
        y = 255.0 * np.clip(y / 255.0, 0, 1) ** gamma
        lut.append(np.clip(y + 0.5, 0, 255).astype(np.uint8))
    im = im.point(np.concatenate(lut).tolist())

    # sensor-like noise: luminance + weaker chroma noise, sigma varies per image.
    # Slices of a fixed Gaussian bank at random offsets (much cheaper than fresh draws).
    bank = noise_bank()
    sigma = rng.uniform(2.0, 7.0)
    hw = out_h * out_w
    o1 = int(rng.integers(0, bank.size - hw))
    o2 = int(rng.integers(0, bank.size - 3 * hw))
    noise = bank[o1 : o1 + hw].reshape(out_h, out_w, 1) * np.float32(sigma)
    noise = noise + bank[o2 : o2 + 3 * hw].reshape(out_h, out_w, 3) * np.float32(0.35 * sigma)
    a = np.asarray(im, dtype=np.float32)
    a += noise
    a += 0.5
    np.clip(a, 0, 255, out=a)
    return Image.fromarray(a.astype(np.uint8), "RGB")


_BANK: np.ndarray | None = None


def noise_bank() -> np.ndarray:
    global _BANK
    if _BANK is None:
        _BANK = np.random.default_rng(12345).standard_normal(
            2 * 3 * MAX_SIDE * MAX_SIDE, dtype=np.float32
        )
    return _BANK


def _work(args):
    seed, c, idx, style, path = args
    im = make_image(seed, c, idx, style)
    im.save(path, format="JPEG", quality=JPEG_QUALITY)
    return path, c, im.size[0], im.size[1], os.path.getsize(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--max-per-class", type=int, default=800)
    ap.add_argument("--min-per-class", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (output is identical for any value)",
    )
    args = ap.parse_args(argv)
    if args.min_per_class > args.max_per_class or args.min_per_class < 1 or args.classes < 1:
        ap.error("need classes >= 1 and 1 <= min-per-class <= max-per-class")

    t0 = time.perf_counter()
    n_src = len(load_sources())
    noise_bank()  # build once before forking workers
    counts = class_counts(args.classes, args.max_per_class, args.min_per_class)
    jobs = []
    for c, n in enumerate(counts):
        style = class_style(args.seed, c, n_src)
        d = os.path.join(args.out_dir, class_name(c))
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            jobs.append((args.seed, c, i, style, os.path.join(d, f"{class_name(c)}_{i:05d}.jpg")))

    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            rows = list(ex.map(_work, jobs, chunksize=32))
    else:
        rows = [_work(j) for j in jobs]
    elapsed = time.perf_counter() - t0

    with open(os.path.join(args.out_dir, "manifest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "class_name", "width", "height", "bytes"])
        for path, c, width, height, nbytes in rows:
            w.writerow(
                [os.path.relpath(path, args.out_dir), c, class_name(c), width, height, nbytes]
            )

    sizes = np.array([r[4] for r in rows])
    ws = np.array([r[2] for r in rows])
    hs = np.array([r[3] for r in rows])
    info = {
        "seed": args.seed,
        "classes": args.classes,
        "class_counts": {class_name(c): n for c, n in enumerate(counts)},
        "total_images": len(rows),
        "imbalance_ratio": counts[0] / counts[-1],
        "jpeg_quality": JPEG_QUALITY,
        "bytes_total": int(sizes.sum()),
        "bytes_mean": float(sizes.mean()),
        "bytes_median": float(np.median(sizes)),
        "bytes_p5_p95": [float(np.percentile(sizes, 5)), float(np.percentile(sizes, 95))],
        "width_min_mean_max": [int(ws.min()), float(ws.mean()), int(ws.max())],
        "height_min_mean_max": [int(hs.min()), float(hs.mean()), int(hs.max())],
        "megapixels_mean": float((ws * hs).mean() / 1e6),
        "generation_seconds": round(elapsed, 2),
        "versions": {"numpy": np.__version__, "Pillow": Image.__version__},
    }
    with open(os.path.join(args.out_dir, "corpus.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(
        f"wrote {len(rows)} images in {args.classes} classes to {args.out_dir} in {elapsed:.1f}s; "
        f"counts {counts[0]}..{counts[-1]}; mean {sizes.mean() / 1024:.1f} KiB "
        f"(median {np.median(sizes) / 1024:.1f}, total {sizes.sum() / 2**20:.1f} MiB); "
        f"mean {ws.mean():.0f}x{hs.mean():.0f} px"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
