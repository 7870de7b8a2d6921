"""The default ``data_loader`` of :class:`~datumio.datagen.DataGenerator`: :func:`img_loader`."""

from __future__ import annotations

import numpy as np
from PIL import Image

from datumio.shards.index import load_npy

#: Pillow modes kept as they are stored when no ``mode`` is asked for; others become RGB(A).
_KEPT_MODES = ("L", "RGB", "RGBA", "I", "I;16", "F")


def img_loader(data_path: str, mode: str | None = None) -> np.ndarray:
    """Load an image file (anything Pillow opens) or a ``.npy`` array.

    Images come back HxWxC (grey as HxWx1; palette and CMYK as RGB), as they are stored.

    Args:
        data_path: the file.
        mode: a Pillow mode (``"RGB"``, ``"L"``, ``"RGBA"``) every image file is converted
            to, so that grey and colour files give the same channels (``DataGenerator(...,
            dl_kwargs={"mode": "RGB"})``); None keeps each file's own. ``.npy`` arrays are
            returned as saved.
    """
    if str(data_path).lower().endswith(".npy"):
        arr = load_npy(str(data_path), mmap_mode=None)
    else:
        with Image.open(data_path) as opened:
            img: Image.Image = opened
            if mode is not None:
                img = img.convert(mode)
            elif img.mode not in _KEPT_MODES:
                img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
            arr = np.asarray(img)
    return arr[:, :, None] if arr.ndim == 2 else arr
