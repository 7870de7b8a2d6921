"""Boxes, masks and keypoints drawn over a picture of a record (contact sheet, preview).

A record's geometric fields are gathered as :class:`Annotations` in the pixels of its stored
image (:func:`record_annotations`), follow a sample's augmentation through the map
``datumio.augment.apply(..., return_affine=True)`` returned (:func:`follow`), and are drawn
with Pillow over the picture at whatever size it is shown (:func:`draw`):

* boxes: rectangle outlines, coloured by class (:func:`box_colour`) with the class id in a
  tag above the box, or by field for a boxes field without classes;
* masks: a translucent colour per label value, the ignore value 255 left clear;
* keypoints: dots, filled when visible (v >= 2), hollow when labelled but hidden (0 < v < 2);
  absent ones (v = 0) are not drawn.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from datumio.augment.annotations import boxes_after, keypoints_after, mask_after
from datumio.augment.geometry import Affine
from datumio.fields.spec import GEOMETRIC
from datumio.shards.dataset import Dataset

#: Box outline colours, by class id (or by field, for boxes without classes), in turn.
BOX_COLOURS = (
    (255, 0, 220),
    (0, 230, 255),
    (255, 235, 0),
    (40, 255, 40),
    (255, 70, 0),
    (150, 80, 255),
)
KEYPOINT_COLOUR = (0, 255, 120)
#: The mask label drawn clear (what ``mask_after`` fills outside the image with).
IGNORE = 255
#: Opacity (0-255) of a mask's colours.
MASK_ALPHA = 110
_INK = (0, 0, 0)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Annotations:
    """The geometric fields of one picture, in its own pixel coordinates.

    ``size`` is the (height, width) those coordinates refer to; ``boxes`` holds one
    ``(boxes float32 (k, 4), classes int32 (k,) or None)`` pair per boxes field.
    """

    size: tuple[int, int]
    boxes: tuple[tuple[np.ndarray, np.ndarray | None], ...] = ()
    keypoints: tuple[np.ndarray, ...] = ()
    masks: tuple[np.ndarray, ...] = ()


def has_annotations(ds: Dataset) -> bool:
    """Whether the dataset has a boxes, mask or keypoints field."""
    return any(spec.type in GEOMETRIC for spec in ds.fields.values())


def record_annotations(ds: Dataset, i: int) -> Annotations:
    """Record ``i``'s boxes, masks and keypoints in stored-image pixels (fields it lacks are
    left out).

    Raises:
        RecordError: its fields fail their CRC32 or do not decode.
    """
    boxes, keypoints, masks = [], [], []
    for name, spec in ds.fields.items():
        if spec.type not in GEOMETRIC:
            continue
        value = ds.field(i, name)
        if value is None:
            continue
        if spec.type == "boxes":
            boxes.append((value.boxes, value.classes))
        elif spec.type == "keypoints":
            keypoints.append(value)
        else:
            masks.append(value)
    h, w, _ = ds.shape(i)
    return Annotations((h, w), tuple(boxes), tuple(keypoints), tuple(masks))


def follow(ann: Annotations, m: Affine, out_hw: tuple[int, int]) -> Annotations:
    """``ann`` in the output of a sample warped through ``m`` (output to stored pixels):
    boxes by :func:`~datumio.augment.annotations.boxes_after` (those mostly out of view
    dropped), keypoints and masks by ``keypoints_after`` and ``mask_after`` (255 outside)."""
    hw = (int(out_hw[0]), int(out_hw[1]))
    boxes = []
    for b, classes in ann.boxes:
        if len(b):
            after = boxes_after(m, b, hw, classes=classes)
            boxes.append((after.boxes, after.classes))
    return Annotations(
        hw,
        tuple(boxes),
        tuple(keypoints_after(m, k, hw) for k in ann.keypoints),
        tuple(mask_after(m, mask, hw, fill=IGNORE) for mask in ann.masks),
    )


def box_colour(field: int, box_class: int | None) -> tuple[int, int, int]:
    """The outline of a box of class ``box_class`` (None: the field has no classes) in the
    ``field``-th boxes field."""
    return BOX_COLOURS[(field if box_class is None else box_class) % len(BOX_COLOURS)]


@functools.lru_cache(maxsize=1)
def _mask_palette() -> np.ndarray:
    """uint8 (256, 3): a colour per label value, neighbouring values far apart in hue."""
    hues = (np.arange(256) * 0.618034) % 1.0
    rgb = [colorsys.hsv_to_rgb(float(h), 0.9, 1.0) for h in hues]
    return np.round(np.asarray(rgb) * 255).astype(np.uint8)


def _overlay(img: Image.Image, mask: np.ndarray) -> Image.Image:
    labels = np.asarray(Image.fromarray(mask, "L").resize(img.size, Image.Resampling.NEAREST))
    rgba = np.empty((*labels.shape, 4), np.uint8)
    rgba[..., :3] = _mask_palette()[labels]
    rgba[..., 3] = np.where(labels == IGNORE, 0, MASK_ALPHA)
    out = Image.alpha_composite(img.convert("RGBA"), Image.fromarray(rgba, "RGBA"))
    return out.convert("RGB")


def draw(img: Image.Image, ann: Annotations, font: Font | None = None) -> Image.Image:
    """``img`` (the picture the coordinates of ``ann`` describe, at any size) with the
    annotations drawn over it, scaled to its size; a new RGB image."""
    out = img.convert("RGB")
    for mask in ann.masks:
        out = _overlay(out, mask)
    h, w = ann.size
    sx, sy = out.width / max(w, 1), out.height / max(h, 1)
    pen = 1 if min(out.size) < 64 else 2
    canvas = ImageDraw.Draw(out)
    for field, (boxes, classes) in enumerate(ann.boxes):
        for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64).tolist()):
            box_class = None if classes is None else int(classes[k])
            colour = box_colour(field, box_class)
            # Pixel i covers [i, i + 1): the outline runs along the box's own edge pixels.
            left, top = max(round(x0 * sx), 0), max(round(y0 * sy), 0)
            right = min(max(round(x1 * sx) - 1, left), out.width - 1)
            bottom = min(max(round(y1 * sy) - 1, top), out.height - 1)
            canvas.rectangle((left, top, right, bottom), outline=colour, width=pen)
            if box_class is not None:
                _tag(canvas, str(box_class), (left, top), colour, font)
    radius = 2 if min(out.size) < 64 else 3
    for kps in ann.keypoints:
        for x, y, v in np.asarray(kps, dtype=np.float64).reshape(-1, 3).tolist():
            if v <= 0:
                continue
            cx, cy = x * sx, y * sy
            dot = (cx - radius, cy - radius, cx + radius, cy + radius)
            fill = KEYPOINT_COLOUR if v >= 2 else None
            canvas.ellipse(dot, fill=fill, outline=KEYPOINT_COLOUR if fill is None else _INK)
    return out


def _tag(
    canvas: ImageDraw.ImageDraw,
    text: str,
    at: tuple[int, int],
    colour: tuple[int, int, int],
    font: Font | None,
) -> None:
    """The class on a tag of the box's colour, above its top-left corner (inside when the
    box touches the top)."""
    font = font or ImageFont.load_default()
    left, top, right, bottom = canvas.textbbox((0, 0), text, font=font)
    tw, th = int(right - left) + 2, int(bottom - top) + 2
    x, y = at
    y = y - th if y >= th else y
    canvas.rectangle((x, y, x + tw - 1, y + th - 1), fill=colour)
    canvas.text((x + 1 - left, y + 1 - top), text, _INK, font=font)
