"""Single awkward images and a dataset's rejects, for test modules (import them, not conftest;
whole drawn datasets come from ``builders.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

MakeImage = Callable[..., Path]


def draw_image(
    path: Path,
    size: tuple[int, int] = (8, 6),
    mode: str = "RGB",
    fmt: str = "PNG",
    colour: int | tuple[int, ...] | None = None,
) -> Path:
    """Write a small image (``size`` is width, height); a gradient unless ``colour`` is given."""
    if colour is None:
        width, height = size
        ramp = (np.arange(width * height, dtype=np.uint32) * 7 % 256).astype(np.uint8)
        img = Image.fromarray(ramp.reshape(height, width), "L").convert(mode)
    else:
        img = Image.new(mode, size, colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def read_rejects_jsonl(dataset: str | Path) -> list[dict[str, object]]:
    """The rows of a dataset's ``rejects.jsonl``."""
    text = (Path(dataset) / "rejects.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
