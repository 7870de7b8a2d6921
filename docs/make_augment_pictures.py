"""Draw docs/img/augment-*.png: the conventions of datumio's transforms, on a test card."""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image, ImageDraw

from datumio.augment import Transform, decode_for, sample_rng
from datumio.tools.pictures import _font
from datumio.transforms import transform_image

W, H = 160, 120


def card() -> np.ndarray:
    img = Image.new("RGB", (W, H), (235, 235, 225))
    d = ImageDraw.Draw(img)
    for x in range(0, W, 20):
        d.line((x, 0, x, H), (200, 200, 190))
    for y in range(0, H, 20):
        d.line((0, y, W, y), (200, 200, 190))
    # An "F": its bars point right and its stem stands on the left, so turns and mirrors read.
    d.rectangle((50, 25, 62, 95), (40, 70, 160))
    d.rectangle((50, 25, 105, 37), (40, 70, 160))
    d.rectangle((50, 55, 92, 66), (40, 70, 160))
    d.ellipse((118, 18, 138, 38), (220, 90, 40))  # a sun, top right
    d.rectangle((0, H - 10, W, H), (90, 150, 70))  # ground
    return np.asarray(img)


def panel(img: np.ndarray, title: str) -> Image.Image:
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    out = Image.new("RGB", (pic.width + 10, pic.height + 28), (250, 250, 250))
    out.paste(pic, (5, 23))
    ImageDraw.Draw(out).text((5, 4), title, (34, 34, 34), font=_font(13))
    return out


def row(panels: list[Image.Image], path: str) -> None:
    w = sum(p.width for p in panels)
    h = max(p.height for p in panels)
    sheet = Image.new("RGB", (w, h), (250, 250, 250))
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width
    sheet.save(path, optimize=True)


def main(out: str) -> None:
    img = card()
    row(
        [
            panel(img, "original"),
            panel(transform_image(img, rotation=30), "rotation=30"),
            panel(transform_image(img, rotation=-30), "rotation=-30"),
            panel(transform_image(img, rotation=90, output_shape=(H, W)), "rotation=90"),
        ],
        f"{out}/augment-rotation.png",
    )
    row(
        [
            panel(img, "original"),
            panel(transform_image(img, zoom=1.5), "zoom=1.5 (in)"),
            panel(transform_image(img, zoom=0.7), "zoom=0.7 (out)"),
            panel(transform_image(img, zoom=(1.4, 1.0)), "zoom=(1.4, 1) x only"),
        ],
        f"{out}/augment-zoom.png",
    )
    row(
        [
            panel(img, "original"),
            panel(transform_image(img, shear=20), "shear=20"),
            panel(transform_image(img, shear=-20), "shear=-20"),
        ],
        f"{out}/augment-shear.png",
    )
    row(
        [
            panel(img, "original"),
            panel(transform_image(img, translation=(30, 0)), "translation=(30, 0)"),
            panel(transform_image(img, translation=(0, 20)), "translation=(0, 20)"),
        ],
        f"{out}/augment-translation.png",
    )
    row(
        [
            panel(img, "original"),
            panel(transform_image(img, flip_lr=True), "flip_lr"),
            panel(transform_image(img, flip_ud=True), "flip_ud"),
        ],
        f"{out}/augment-flips.png",
    )
    fills = [panel(img, "original")]
    for mode in ("constant", "edge", "reflect", "symmetric", "wrap"):
        kw = {"mode": mode, "cval": 128}
        fills.append(panel(transform_image(img, zoom=0.6, rotation=20, warp_kwargs=kw), mode))
    row(fills, f"{out}/augment-fill.png")
    spec = Transform(size=(H, W), crop_scale=(0.2, 1.0), dtype="uint8", layout="HWC")
    crops = [panel(img, "original")]
    crops += [
        panel(decode_for(spec, img, sample_rng(0, 0, p)), f"crop_scale draw {p}") for p in range(4)
    ]
    row(crops, f"{out}/augment-random-crop.png")
    phot = [panel(img, "original")]
    for title, kw in [
        ("brightness 0.6", {"brightness_range": (0.6, 0.6)}),
        ("contrast 0.4", {"contrast_range": (0.4, 0.4)}),
        ("saturation 0", {"saturation_range": (0.0, 0.0)}),
        ("saturation 2", {"saturation_range": (2.0, 2.0)}),
    ]:
        s = Transform(size=(H, W), keep_scale=True, dtype="uint8", layout="HWC", **kw)  # type: ignore[arg-type]
        phot.append(panel(decode_for(s, img, sample_rng(0, 0, 0)), title))
    row(phot, f"{out}/augment-photometric.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
