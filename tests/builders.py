"""How the tests build datasets: a class-folder tree of small images drawn in code, ingested.

* :class:`Drawing` says what a tree holds (images per class, their size, channels, picture,
  file format, file names, seed); ``drawing.draw(root)`` writes ``root/CLASS/NAME.EXT``.
  :func:`draw_classes` is the same in one call; :func:`draw_file` draws one image (inputs
  that a labels file names).
* :func:`build_dataset` ingests a tree through :func:`datumio.ingest`; :func:`ingest_cli`
  runs ``python -m datumio ingest`` in a fresh interpreter, for tests of the command line.
* :func:`make_dataset` does both below one folder: ``ROOT/src`` drawn, ``ROOT/data.lmdb``
  (or ``.h5``) ingested.
* The drawings of the shared fixtures (``tests/conftest.py``): :data:`SMALL` (``small_lmdb``),
  :data:`TINY` (``tiny_lmdb``), :data:`SHAPES` (``shapes_lmdb``); ``dataset_factory`` builds
  a test's own drawing (one of these in HDF5, say) with its own ingest options.

A drawing is deterministic: the same drawing writes the same bytes on every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import datumio


@dataclass(frozen=True)
class Slot:
    """Which picture a :data:`Picture` draws: class ``label`` (folder ``name``), its
    ``k``-th image, of ``height`` x ``width`` pixels and ``channels`` channels."""

    label: int
    name: str
    k: int
    height: int
    width: int
    channels: int


#: Draws the pixels (uint8, HxWxC, or HxW for one channel) of a slot with the drawing's rng.
Picture = Callable[[Slot, np.random.Generator], np.ndarray]

#: Every image one (height, width); each side drawn from a range; or a size per k.
Size = tuple[int, int] | range | Callable[[int], tuple[int, int]]

#: The JPEG quality of drawn ``.jpg`` files.
JPEG_QUALITY = 92

#: File names that differ between drawings of other seeds (inputs ingested into one dataset).
SEEDED_NAMES = "{seed}-{k:03d}"


def widening(height: int, width: int, step: int) -> Callable[[int], tuple[int, int]]:
    """A :data:`Size`: ``height`` x ``width``, the k-th image ``k % step`` pixels wider."""
    return lambda k: (height, width + k % step)


def _fit(slot: Slot, rgb: np.ndarray) -> np.ndarray:
    return rgb if slot.channels == 3 else rgb[..., 0]


def noise(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    """Random pixels: any misplaced pixel shows."""
    shape = (slot.height, slot.width, slot.channels)
    return _fit(slot, rng.integers(0, 256, shape, dtype=np.uint8))


def gradient(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    """A horizontal gradient, a colour per class and image, a bright left-hand bar (flips
    and crops show)."""
    h, w = slot.height, slot.width
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = (80 * slot.label + 7 * slot.k) % 256
    img[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[:, : w // 5] = 255
    return _fit(slot, img)


def solid(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    """One colour, (60 * label, k, 0): a class and an image tell apart by a pixel."""
    img = np.empty((slot.height, slot.width, 3), np.uint8)
    img[:] = (60 * slot.label % 256, slot.k % 256, 0)
    return _fit(slot, img)


def shape(slot: Slot, rng: np.random.Generator) -> np.ndarray:
    """``datumio demo``'s shape named like the class (square images; seeded by (label, k))."""
    from datumio.tools.demo import draw_shape

    own = np.random.default_rng([slot.label, slot.k])
    return _fit(slot, np.asarray(draw_shape(slot.name, own, size=slot.height)))


PICTURES: dict[str, Picture] = {
    "noise": noise,
    "gradient": gradient,
    "solid": solid,
    "shape": shape,
}


def _picture(picture: str | Picture) -> Picture:
    return PICTURES[picture] if isinstance(picture, str) else picture


@dataclass(frozen=True)
class Drawing:
    """A class-folder tree of drawn images, written by :meth:`draw`.

    Attributes:
        counts: images per class folder, in label order (0 makes an empty folder).
        size: ``(height, width)`` of every image; ``range(lo, hi)``: each side drawn from
            it; or a function of k (the image's number within its class).
        channels: 3 (RGB) or 1 (grey).
        picture: a name of :data:`PICTURES` or a :data:`Picture`.
        fmt: the file suffix and format (``png``, ``jpg`` at :data:`JPEG_QUALITY`, ...).
        names: the file name without suffix, formatted with ``k``, ``label`` and ``seed``.
        seed: seeds the one generator that draws every size and picture in turn.
    """

    counts: Mapping[str, int]
    size: Size = (16, 16)
    channels: int = 3
    picture: str | Picture = "noise"
    fmt: str = "png"
    names: str = "{k:03d}"
    seed: int = 0

    def draw(self, root: Path) -> Path:
        """Write the tree below ``root`` (folders may exist already); ``root``."""
        draw_picture = _picture(self.picture)
        rng = np.random.default_rng(self.seed)
        for name in self.counts:
            (root / name).mkdir(parents=True, exist_ok=True)
        for label, name, k, rel in self.files():
            height, width = self._size(k, rng)
            pixels = draw_picture(Slot(label, name, k, height, width, self.channels), rng)
            _save(pixels, root / rel)
        return root

    def files(self) -> Iterator[tuple[int, str, int, str]]:
        """(label, class name, k, path relative to the root) of every image, in drawing order."""
        for label, (name, count) in enumerate(self.counts.items()):
            for k in range(count):
                stem = self.names.format(k=k, label=label, seed=self.seed)
                yield label, name, k, f"{name}/{stem}.{self.fmt}"

    def write_labels(self, path: Path, groups: int = 0) -> Path:
        """A CSV labels file of the tree (``path,label``; with ``groups``, a ``group`` column:
        ``site{k % groups}``); ``path``."""
        rows = ["path,label" + (",group" if groups else "")]
        for _, name, k, rel in self.files():
            rows.append(f"{rel},{name}" + (f",site{k % groups}" if groups else ""))
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return path

    def _size(self, k: int, rng: np.random.Generator) -> tuple[int, int]:
        if isinstance(self.size, range):
            lo, hi = self.size.start, self.size.stop
            return int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
        if callable(self.size):
            return self.size(k)
        return self.size


def _save(pixels: np.ndarray, path: Path) -> None:
    extra: dict[str, Any] = {"quality": JPEG_QUALITY} if path.suffix in (".jpg", ".jpeg") else {}
    Image.fromarray(pixels).save(path, **extra)


def draw_classes(root: Path, counts: Mapping[str, int], **drawing: Any) -> Path:
    """``Drawing(counts, **drawing).draw(root)``: the tree below ``root``; ``root``."""
    return Drawing(counts, **drawing).draw(root)


def draw_file(
    path: Path,
    size: tuple[int, int],
    *,
    seed: int = 0,
    picture: str | Picture = "noise",
    channels: int = 3,
) -> np.ndarray:
    """One image of ``size`` (height, width) at ``path``, drawn with a generator of its own
    seeded by ``seed`` (for inputs named by a labels file); its pixels."""
    pixels = _picture(picture)(Slot(0, "", 0, *size, channels), np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(pixels, path)
    return pixels


def build_dataset(src: Path | str, out: Path | str, *, rejects: int = 0, **options: Any) -> Path:
    """Ingest ``src`` into ``out`` (its suffix picks LMDB or HDF5) with ``IngestOptions``
    (one worker unless ``workers`` is given); the run must reject exactly ``rejects`` files.
    """
    options.setdefault("workers", 1)
    report = datumio.ingest(str(src), str(out), datumio.IngestOptions(**options))
    assert len(report.rejects) == rejects, report.rejects
    return Path(out)


def make_dataset(
    root: Path, drawing: Drawing | Mapping[str, int], *, suffix: str = ".lmdb", **options: Any
) -> Path:
    """``drawing`` (or a Drawing of these counts) drawn into ``root/src`` and ingested into
    ``root/data{suffix}`` with :func:`build_dataset`; the dataset's path."""
    if not isinstance(drawing, Drawing):
        drawing = Drawing(drawing)
    src = drawing.draw(root / "src")
    return build_dataset(src, root / f"data{suffix}", **options)


#: The ``dataset_factory`` fixture: ``(drawing or counts, suffix=".lmdb", **options) -> path``.
DatasetFactory = Callable[..., Path]

#: The longest a test's ingest run on the command line may take.
INGEST_TIMEOUT_S = 120


def ingest_cli(
    src: Path | str,
    out: Path | str,
    *args: str,
    flags: Iterable[str] = (),
    hook: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``datumio ingest SRC OUT *flags *args`` in a fresh interpreter (``hook``: the
    ``DATUMIO_TEST_HOOK`` it runs with; ``check``: its exit status must be 0)."""
    env = {**os.environ, "DATUMIO_TEST_HOOK": hook} if hook else None
    proc = subprocess.run(
        [sys.executable, "-m", "datumio", "ingest", str(src), str(out), *flags, *args],
        capture_output=True,
        text=True,
        timeout=INGEST_TIMEOUT_S,
        env=env,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# -- the drawings of the shared fixtures ------------------------------------------------------

#: 21 JPEGs of 3 classes (12, 6, 3: long-tailed), each side 40..71 pixels.
SMALL = Drawing(
    {"cat": 12, "dog": 6, "eel": 3}, size=range(40, 72), picture="gradient", fmt="jpg", seed=1234
)
#: 8 JPEGs of 2 classes, each side 48..79 pixels.
TINY = Drawing({"red": 5, "blue": 3}, size=range(48, 80), picture="gradient", fmt="jpg", seed=5)
#: 46 PNGs of drawn shapes, 32x32, long-tailed over 4 classes.
SHAPES = Drawing(
    {"circle": 24, "square": 12, "triangle": 6, "star": 4}, size=(32, 32), picture="shape"
)
