"""``datumio preview PATH --transform SPEC -o grid.png``: what the model will see.

One row per class; for each of ``--per-class`` records, the stored image then ``--views``
augmented versions drawn exactly as the loader's workers draw them (same transform code, the
per-sample stream of (seed, epoch 0, position)). Pixels are shown after the geometric and
photometric ops and ``user_fn``, before normalisation (which has no picture).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from datumio.augment.geometry import Affine
from datumio.augment.pipeline import apply
from datumio.augment.seeds import sample_rng
from datumio.augment.spec import Transform, transform_from_dict
from datumio.errors import DatumioError, OptionError, printable
from datumio.shards.dataset import Dataset
from datumio.tools.annotate import Annotations, follow, has_annotations, record_annotations
from datumio.tools.annotate import draw as draw_annotations
from datumio.tools.outputs import check_output_file
from datumio.tools.pictures import _fit, _font

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
THUMB = 96
GAP = 6
LABEL_WIDTH = 160
TITLE_HEIGHT = 44
_BG, _INK, _MUTED, _TILE = (250, 250, 250), (34, 34, 34), (120, 120, 120), (228, 228, 228)
_ORIGINAL_EDGE, _AUG_EDGE = (92, 124, 168), (230, 140, 50)

EXAMPLES = """\
examples:
  datumio preview out.lmdb --transform '{"size": [224, 224], "rotation_range": [-20, 20],
      "zoom_range": [0.9, 1.1], "do_flip_lr": true}' -o grid.png
  datumio preview out.lmdb --transform spec.json -o grid.png --per-class 6 --views 3
      spec.json: {"size": [224, 224], "crop_scale": [0.3, 1.0], "brightness_range": [0.7, 1.3]}
  datumio preview out.lmdb --transform '{"output_shape": [200, 200], "rotation_range": [0, 360],
      "warp_kwargs": {"mode": "reflect"}}' -o grid.png
      the original datumio's names (output_shape, warp_kwargs) work too

SPEC is a JSON object of datumio.augment.Transform fields (docs/augment.md) or a path to a
.json file holding one. "size" is [height, width], one number N (NxN) or "HxW" text
("224x160": height 224, width 160; unlike datumio ingest --size, which is WxH). Each row is a
class: a blue-framed stored image, then its augmented views (orange frames), in uint8 before
normalisation. A dataset's boxes, masks and keypoints are drawn over them (boxes coloured by
class, masks translucent, keypoints as dots), moved as each view was; --no-annotations
leaves them out. The -o folder must exist; it is checked before the dataset is read.

exit status: 0 done, 1 failed (not a dataset, unreadable), 2 bad usage (a bad SPEC, an -o
that cannot be written).

datumio preview and datumio-preview are the same command.
"""


def build_parser(prog: str = "datumio preview") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Draw a grid of stored vs augmented samples per class, to see what a "
        "transform spec shows the model.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help="dataset directory (out.lmdb, out.h5)")
    parser.add_argument(
        "--transform", required=True, metavar="SPEC", help="JSON object or path to a .json file"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.png", help="PNG to write")
    parser.add_argument("--per-class", type=int, default=4, metavar="N", help="records per class")
    parser.add_argument("--views", type=int, default=2, metavar="V", help="augmented views each")
    parser.add_argument("--seed", type=int, default=0, help="record choice and augmentation seed")
    parser.add_argument("--thumb", type=int, default=THUMB, metavar="PX", help="tile size")
    parser.add_argument(
        "--max-classes", type=int, default=30, metavar="K", help="rows at most (largest classes)"
    )
    parser.add_argument(
        "--no-annotations",
        action="store_true",
        help="do not draw boxes, masks and keypoints (drawn by default when the dataset has "
        "such fields, moved with each augmented view)",
    )
    return parser


def load_spec(text: str) -> Transform:
    """A Transform from a JSON object or the path of a JSON file."""
    source = text
    if not text.lstrip().startswith("{"):
        if not os.path.isfile(text):
            raise OptionError(f"--transform {text!r}: neither a JSON object nor a file")
        try:
            with open(text, encoding="utf-8") as f:
                source = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise OptionError(
                f"--transform {text!r}: cannot read it as UTF-8 JSON ({exc})"
            ) from exc
    try:
        obj = json.loads(source)
    except json.JSONDecodeError as exc:
        raise OptionError(f"--transform: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise OptionError("--transform: give a JSON object of Transform fields")
    return transform_from_dict(obj)


def preview_size(rows: int, per_class: int, views: int, thumb: int = THUMB) -> tuple[int, int]:
    """(width, height) of a preview grid."""
    cell = thumb + GAP
    width = LABEL_WIDTH + per_class * ((1 + views) * cell + GAP) + GAP
    return width, TITLE_HEIGHT + rows * cell + GAP


def _tile(
    pixels: np.ndarray, thumb: int, edge: tuple[int, int, int], ann: Annotations | None = None
) -> Image.Image:
    tile = Image.new("RGB", (thumb, thumb), _TILE)
    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
    grow = max(img.size) < thumb
    method = Image.Resampling.NEAREST if grow else Image.Resampling.LANCZOS
    img = ImageOps.contain(img, (thumb - 4, thumb - 4), method=method)
    if ann is not None:
        img = draw_annotations(img, ann, _font(10))
    tile.paste(img, ((thumb - img.width) // 2, (thumb - img.height) // 2))
    ImageDraw.Draw(tile).rectangle((0, 0, thumb - 1, thumb - 1), outline=edge, width=2)
    return tile


def _augmented(
    ds: Dataset, spec: Transform, record: int, position: int, seed: int
) -> tuple[np.ndarray, Affine]:
    """The sample's pixels and the map they were warped with (output to stored pixels)."""
    channels = ds.shape(record)[2]
    out = np.empty(spec.output_shape(channels), np.uint8)
    m = apply(
        spec,
        ds.read(record),
        sample_rng(seed, 0, position),
        out,
        encoding=ds.encoding,
        shape=ds.shape(record),
        background=ds.background,
        return_affine=True,
    )
    return out, m


def preview_grid(
    ds: Dataset,
    spec: Transform,
    *,
    per_class: int = 4,
    views: int = 2,
    seed: int = 0,
    thumb: int = THUMB,
    max_classes: int = 30,
    annotations: bool | None = None,
) -> Image.Image:
    """The preview picture (see the module docstring). ``annotations`` draws the records'
    boxes, masks and keypoints, following each view's augmentation; None: when the dataset
    has such fields."""
    if per_class < 1 or views < 1 or thumb < 8 or max_classes < 1:
        raise OptionError("--per-class, --views and --max-classes must be >= 1, --thumb >= 8")
    if annotations is None:
        annotations = has_annotations(ds)
    shown = replace(spec, layout="HWC", dtype="uint8", sample_zmuv=False, batch_zmuv=False)
    counts = ds.counts
    classes = list(range(ds.num_classes))
    if len(classes) > max_classes:
        classes = sorted(sorted(classes, key=lambda c: -int(counts[c]))[:max_classes])
    sheet = Image.new("RGB", preview_size(len(classes), per_class, views, thumb), _BG)
    draw = ImageDraw.Draw(sheet)
    name = printable(os.path.basename(ds.path.rstrip("/")))
    head = f"{name}: stored (blue) vs augmented (orange)"
    draw.text((GAP + 4, 6), _fit(draw, head, _font(16), sheet.width - 12), _INK, font=_font(16))
    geo = f"size {spec.size[0]}x{spec.size[1]} (height x width), seed {seed}"
    draw.text((GAP + 4, 26), _fit(draw, geo, _font(12), sheet.width - 12), _MUTED, font=_font(12))
    cell = thumb + GAP
    for row, c in enumerate(classes):
        top = TITLE_HEIGHT + row * cell
        draw.text(
            (GAP + 4, top + thumb // 2 - 16),
            _fit(draw, printable(ds.class_names[c]), _font(14), LABEL_WIDTH - 12),
            _INK,
            font=_font(14),
        )
        draw.text(
            (GAP + 4, top + thumb // 2 + 4), f"#{c} · {int(counts[c])}", _MUTED, font=_font(12)
        )
        ids = ds.class_index(c)
        if ids.size == 0:
            continue
        pick = np.random.default_rng([seed, c]).choice(ids.size, min(per_class, ids.size), False)
        for k, pos in enumerate(np.sort(pick).tolist()):
            record = int(ids[pos])
            left = LABEL_WIDTH + k * ((1 + views) * cell + GAP)
            ann = record_annotations(ds, record) if annotations else None
            sheet.paste(_tile(ds.image(record), thumb, _ORIGINAL_EDGE, ann), (left, top))
            for v in range(views):
                position = (row * per_class + k) * views + v
                pixels, m = _augmented(ds, shown, record, position, seed)
                moved = None if ann is None else follow(ann, m, spec.size)
                tile = _tile(pixels, thumb, _AUG_EDGE, moved)
                sheet.paste(tile, (left + (1 + v) * cell, top))
    return sheet


def run(args: argparse.Namespace) -> int:
    try:
        check_output_file("-o/--output", args.output)
        spec = load_spec(args.transform)
        with Dataset(args.path) as ds:
            grid = preview_grid(
                ds,
                spec,
                per_class=args.per_class,
                views=args.views,
                seed=args.seed,
                thumb=args.thumb,
                max_classes=args.max_classes,
                annotations=False if args.no_annotations else None,
            )
        grid.save(args.output, format="PNG", optimize=True)
    except OptionError as exc:
        print(f"{args.prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (DatumioError, OSError) as exc:
        print(f"{args.prog}: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {printable(args.output)} ({grid.width}x{grid.height})")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "datumio preview") -> int:
    """Entry point of ``datumio preview`` and ``datumio-preview`` (``prog`` names it)."""
    parser = build_parser(prog)
    args: Any = parser.parse_args(argv)
    args.prog = parser.prog
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
