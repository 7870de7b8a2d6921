"""``datumio inspect``, ``preview`` and ``verify`` on datasets with fields (run as commands).

The statistics are checked exactly against counts worked out here from the rows written;
the pictures by where the box outline colour lies relative to a white rectangle drawn at
the box, before and after an augmentation.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import build_dataset
from console import console_argv
from fields_support import write_jsonl
from PIL import Image

from datumio.tools import preview_cmd
from datumio.tools.annotate import KEYPOINT_COLOUR, box_colour

pytestmark = pytest.mark.timeout(120)

#: (width, height) of each record's image.
SIZES = [(20, 10), (40, 20), (16, 16), (30, 30), (10, 40), (24, 12)]
KIND = [3, 1, 3, None, 3, 1]
TAGS = [["x", "y"], ["y"], [], None, ["z", "y"], ["x"]]
SCORE = [0.5, 0.25, None, 1.0, -0.5, 0.75]
EMB = [[1.0, 2.0], [3.0], None, [0.5, -1.5, 4.0], [2.0], [1.0, 1.0]]
NOTE = ["ab", "", "héllo", None, "xyz", "q"]
BOXES: list[Any] = [
    [[0, 0, 20, 10, 1]],
    [[0, 0, 4, 3, 0], [10, 10, 30, 20, 2]],
    [],
    None,
    [[0, 0, 1, 1, c] for c in (1, 1, 0, 1, 3)],
    [[1, 1, 2.5, 2, 2], [0, 0, 0.2, 0.5, 2]],
]
KPS: list[Any] = [[[1, 1, 2], [2, 2, 0]], [[5, 5, 1]], [], None, [[1, 1, 2], [2, 2, 2]], None]
DECLARED = {"tags": "multilabel", "emb": "array:float32", "boxes": "boxes", "kps": "keypoints"}
DECLARED_MASK = {**DECLARED, "seg": "mask"}


def _masks() -> list[np.ndarray | None]:
    m0 = np.zeros((10, 20), np.uint8)
    m0[:, 10:] = 1
    m1 = np.full((20, 40), 255, np.uint8)
    m4 = np.zeros((40, 10), np.uint8)
    m4[:10] = 2
    return [m0, m1, None, None, m4, None]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        console_argv(["datumio", *argv]), capture_output=True, text=True, timeout=100
    )


@pytest.fixture(scope="module")
def stats_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("inspect-fields")
    src = tmp / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for k, (w, h) in enumerate(SIZES):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(src / f"{k}.png")
        row: dict[str, Any] = {
            "path": f"{k}.png",
            "label": "ab"[k % 2],
            "kind": KIND[k],
            "tags": TAGS[k],
            "score": SCORE[k],
            "emb": EMB[k],
            "note": NOTE[k],
            "boxes": BOXES[k],
            "kps": KPS[k],
            "seg": None,
        }
        mask = _masks()[k]
        if mask is not None:
            Image.fromarray(mask, "L").save(src / f"m{k}.png")
            row["seg"] = f"m{k}.png"
        rows.append(row)
    labels = write_jsonl(tmp / "labels.jsonl", rows)
    return build_dataset(
        src, tmp / "stats.lmdb", labels_file=str(labels), fields=DECLARED_MASK, shard_records=4
    )


def _present(values: list[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def _expected_fields() -> dict[str, dict[str, Any]]:
    """The ``fields`` entries, worked out from the rows above."""
    n = len(SIZES)
    kinds = Counter(_present(KIND))
    labels = Counter(t for tags in _present(TAGS) for t in tags)
    scores = _present(SCORE)
    elements = [x for e in _present(EMB) for x in e]
    lengths = [len(t) for t in _present(NOTE)]
    per_image = [len(b) for b in _present(BOXES)]
    areas, box_classes = [], Counter()
    for (w, h), boxes in zip(SIZES, BOXES, strict=True):
        for x0, y0, x1, y1, c in boxes or []:
            x0, y0, x1, y1 = (float(np.float32(v)) for v in (x0, y0, x1, y1))
            areas.append((x1 - x0) * (y1 - y0) / (w * h))
            box_classes[c] += 1
    area_buckets = [
        ["<0.1%", sum(a < 0.001 for a in areas)],
        ["0.1-1%", sum(0.001 <= a < 0.01 for a in areas)],
        ["1-10%", sum(0.01 <= a < 0.1 for a in areas)],
        ["10-50%", sum(0.1 <= a < 0.5 for a in areas)],
        [">=50%", sum(a >= 0.5 for a in areas)],
    ]
    count_buckets = [["0", 0], ["1", 0], ["2-3", 0], ["4-7", 0]]
    for count in per_image:
        count_buckets[{0: 0, 1: 1, 2: 2, 3: 2}.get(count, 3)][1] += 1
    count_buckets += [["8-15", 0], ["16-31", 0], ["32-63", 0], ["64+", 0]]
    points = [p for kps in _present(KPS) for p in kps]
    visibility = Counter(p[2] for p in points)
    pixels: Counter[int] = Counter()
    for mask in _present(_masks()):
        pixels.update(Counter(mask.ravel().tolist()))
    total = sum(pixels.values())
    read = {"from": "records", "records_read": n}
    return {
        "kind": {
            "type": "int",
            "dtype": "<i8",
            "records": len(_present(KIND)),
            "from": "index",
            "records_read": 0,
            "top": [[3, kinds[3]], [1, kinds[1]]],
            "distinct": 2,
            "min": 1,
            "max": 3,
        },
        "tags": {
            "type": "multilabel",
            "dtype": "<i4",
            "records": len(_present(TAGS)),
            "per_record": round(sum(labels.values()) / n, 4),
            "from": "index",
            "records_read": 0,
            "top": [["y", labels["y"]], ["x", labels["x"]], ["z", labels["z"]]],
            "distinct": 3,
            "no_labels": sum(not t for t in TAGS),
        },
        "score": {
            "type": "float",
            "dtype": "<f8",
            "records": len(scores),
            **read,
            "seen": len(scores),
            "min": min(scores),
            "mean": round(sum(scores) / len(scores), 6),
            "max": max(scores),
        },
        "emb": {
            "type": "array",
            "dtype": "<f4",
            "records": len(_present(EMB)),
            "per_record": round(len(elements) / n, 4),
            **read,
            "seen": len(_present(EMB)),
            "min": min(elements),
            "mean": round(sum(elements) / len(elements), 6),
            "max": max(elements),
            "length": {"min": 1, "max": 3},
        },
        "note": {
            "type": "text",
            "dtype": "utf-8",
            "records": len(lengths),
            **read,
            "seen": len(lengths),
            "length": {
                "min": min(lengths),
                "mean": round(sum(lengths) / len(lengths), 6),
                "max": max(lengths),
            },
        },
        "boxes": {
            "type": "boxes",
            "dtype": "<f4",
            "records": len(per_image),
            "per_record": round(len(areas) / n, 4),
            **read,
            "seen": len(per_image),
            "boxes": len(areas),
            "per_image": {
                "mean": round(sum(per_image) / len(per_image), 6),
                "max": max(per_image),
                "histogram": count_buckets,
            },
            "area": {"mean": round(sum(areas) / len(areas), 6), "histogram": area_buckets},
            "classes": sorted(([c, k] for c, k in box_classes.items()), key=lambda p: -p[1]),
        },
        "kps": {
            "type": "keypoints",
            "dtype": "<f4",
            "records": len(_present(KPS)),
            "per_record": round(len(points) / n, 4),
            **read,
            "seen": len(_present(KPS)),
            "points": len(points),
            "per_record_max": 2,
            "visible_fraction": round(sum(p[2] > 0 for p in points) / len(points), 6),
            "visibility": [[v, visibility[v]] for v in sorted(visibility)],
        },
        "seg": {
            "type": "mask",
            "dtype": "|u1",
            "records": len(_present(_masks())),
            **read,
            "seen": len(_present(_masks())),
            "pixels": total,
            "pixel_share": [[v, round(pixels[v] / total, 6)] for v in sorted(pixels)],
        },
    }


def test_json_field_statistics_are_exact(stats_dataset: Path) -> None:
    proc = _run("inspect", str(stats_dataset), "--json", "--no-duplicates")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    fields = {f.pop("name"): f for f in json.loads(proc.stdout)["fields"]}
    expected = _expected_fields()
    # Box classes tie at 2 boxes each (0 and 2): the smaller id first.
    expected["boxes"]["classes"].sort(key=lambda p: (-p[1], p[0]))
    assert set(fields) == set(expected)
    for name, entry in expected.items():
        assert fields[name] == entry, name


def test_text_summary_shows_the_statistics(stats_dataset: Path) -> None:
    proc = _run("inspect", str(stats_dataset), "--no-duplicates")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "fields: 8 (int and multilabel fields from the global index; others from all 6 " in out
    line = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ") and ln.split()}
    assert "top: 3 3, 1 2" in line["kind"]
    assert "top: y 3, x 2, z 1; 2 records with none" in line["tags"]
    assert "min -0.5, mean 0.4, max 1" in line["score"]
    assert "10 boxes" in line["boxes"] and "80.0% visible" in line["kps"]
    assert "per image  mean 2.00, max 5; 0: 1, 1: 1, 2-3: 2, 4-7: 1" in out
    assert "size       mean" in out and "<0.1%: 1, 0.1-1%: 6, 1-10%: 1, 10-50%: 1, >=50%: 1" in out
    assert "length mean 2.2 characters (0-5)" in line["note"]
    assert "pixels: 255 57.1%, 0 28.6%, 1 7.1%, 2 7.1%" in line["seg"]


def test_a_sample_of_records_is_read_when_asked(stats_dataset: Path) -> None:
    proc = _run("inspect", str(stats_dataset), "--json", "--no-duplicates", "--field-sample", "2")
    assert proc.returncode == 0, proc.stderr
    fields = {f["name"]: f for f in json.loads(proc.stdout)["fields"]}
    expected = _expected_fields()
    for name in ("score", "emb", "note", "boxes", "kps", "seg"):
        assert fields[name]["from"] == "records" and fields[name]["records_read"] == 2
        assert fields[name]["seen"] <= 2
    for name in ("kind", "tags"):  # from the index, whole
        assert fields[name]["top"] == expected[name]["top"]
    text = _run("inspect", str(stats_dataset), "--no-duplicates", "--field-sample", "2").stdout
    assert "others from a sample of 2 of 6 records" in text
    bad = _run("inspect", str(stats_dataset), "--field-sample", "0")
    assert bad.returncode == 2 and "--field-sample" in bad.stderr


def test_record_shows_its_fields(stats_dataset: Path) -> None:
    proc = _run("inspect", str(stats_dataset), "--record", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    fields = json.loads(proc.stdout)["fields"]
    assert fields == {
        "tags": ["y"],
        "emb": [3.0],
        "boxes": {"boxes": [[0.0, 0.0, 4.0, 3.0], [10.0, 10.0, 30.0, 20.0]], "classes": [0, 2]},
        "kps": [[5.0, 5.0, 1.0]],
        "seg": {"shape": [20, 40], "values": [[255, 800]]},
        "kind": 1,
        "score": 0.25,
        "note": "",
    }
    text = _run("inspect", str(stats_dataset), "--record", "2").stdout
    assert "  fields" in text and "    score          (none)" in text
    assert '    note           "héllo"' in text


def test_verify_names_the_fields(stats_dataset: Path) -> None:
    proc = _run("verify", str(stats_dataset), "--decode")
    assert proc.returncode == 0, proc.stderr
    assert "fields: 8 (tags, emb, boxes, kps, seg, kind, score, note)" in proc.stdout


# -- pictures ------------------------------------------------------------------------------

#: The drawn record: a black 40x30 image with a white rectangle exactly at its box.
BOX = (8, 6, 28, 22)
SPOT = (30, 2, 38, 10)  # the mask's label-1 square (the rest is 255, drawn clear)


@pytest.fixture(scope="module")
def box_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("inspect-boxes")
    src = tmp / "src"
    src.mkdir()
    pixels = np.zeros((30, 40, 3), np.uint8)
    pixels[BOX[1] : BOX[3], BOX[0] : BOX[2]] = 255
    Image.fromarray(pixels).save(src / "img.png")
    mask = np.full((30, 40), 255, np.uint8)
    mask[SPOT[1] : SPOT[3], SPOT[0] : SPOT[2]] = 1
    Image.fromarray(mask, "L").save(src / "mask.png")
    row = {"path": "img.png", "label": "shape", "box": [list(BOX)], "seg": "mask.png"}
    row["pt"] = [[34, 25, 2]]
    labels = write_jsonl(tmp / "labels.jsonl", [row])
    declared = {"box": "boxes", "seg": "mask", "pt": "keypoints"}
    return build_dataset(src, tmp / "box.lmdb", labels_file=str(labels), fields=declared)


def _tiles(png: Path, thumb: int) -> tuple[np.ndarray, np.ndarray]:
    """(stored tile, first augmented tile) of a one-record, one-view preview."""
    grid = np.asarray(Image.open(png).convert("RGB"))
    top, left = preview_cmd.TITLE_HEIGHT, preview_cmd.LABEL_WIDTH
    cell = thumb + preview_cmd.GAP
    return (
        grid[top : top + thumb, left : left + thumb],
        grid[top : top + thumb, left + cell : left + cell + thumb],
    )


def _bbox(where: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(where)
    assert xs.size, "nothing found"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _is(tile: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return (tile == np.asarray(colour, np.uint8)).all(axis=2)


def _preview(dataset: Path, out: Path, spec: dict[str, Any], *extra: str) -> None:
    argv = ["preview", str(dataset), "--transform", json.dumps(spec), "-o", str(out)]
    argv += ["--per-class", "1", "--views", "1", "--thumb", "84", *extra]
    proc = _run(*argv)
    assert proc.returncode == 0, proc.stderr


def test_preview_outlines_the_box_when_not_augmented(box_dataset: Path, tmp_path: Path) -> None:
    outline = box_colour(0, None)
    _preview(box_dataset, tmp_path / "on.png", {"size": [30, 40]})
    _preview(box_dataset, tmp_path / "off.png", {"size": [30, 40]}, "--no-annotations")
    on, off = _tiles(tmp_path / "on.png", 84), _tiles(tmp_path / "off.png", 84)
    for tile, plain in zip(on, off, strict=True):
        assert not _is(plain, outline).any()
        # 40x30 shown at 80x60 (scale 2), the outline along the box's own edge pixels:
        # the white inside is the box less the outline's width, all around.
        ring = _is(tile, outline)
        x0, y0, x1, y1 = _bbox(ring)
        assert (x1 - x0 + 1, y1 - y0 + 1) == (2 * (BOX[2] - BOX[0]), 2 * (BOX[3] - BOX[1]))
        pen = int(np.argmin(ring[(y0 + y1) // 2, x0:]))
        assert pen in (1, 2)
        assert _bbox((tile == 255).all(axis=2)) == (x0 + pen, y0 + pen, x1 - pen, y1 - pen)
        assert ring[y0 : y1 + 1, [x0, x1]].all() and ring[[y0, y1], x0 : x1 + 1].all()
        # The mask's label-1 square is tinted; its 255 elsewhere is left clear.
        changed = (tile != plain).any(axis=2) & ~ring
        changed &= ~_is(tile, KEYPOINT_COLOUR) & ~(tile == 0).all(axis=2)
        sx0, sy0, sx1, sy1 = _bbox(changed)
        assert (sx1 - sx0 + 1, sy1 - sy0 + 1) == (16, 16) and sx0 > x1
        assert _is(tile, KEYPOINT_COLOUR).any()


def test_preview_boxes_follow_the_augmentation(box_dataset: Path, tmp_path: Path) -> None:
    spec = {"size": [30, 40], "rotation_range": [25, 25], "do_flip_lr": True}
    _preview(box_dataset, tmp_path / "aug.png", spec, "--seed", "3")
    stored, view = _tiles(tmp_path / "aug.png", 84)
    outline = box_colour(0, None)
    ox0, oy0, ox1, oy1 = _bbox(_is(view, outline))
    white = (view >= 240).all(axis=2)  # not the tiles' light grey
    wx0, wy0, wx1, wy1 = _bbox(white)
    # The turned white rectangle lies inside the outline, which hugs it on every side
    # (up to the 2 px pen and a source pixel of blur at scale 2).
    assert ox0 < wx0 and oy0 < wy0 and wx1 < ox1 and wy1 < oy1
    assert max(wx0 - ox0, wy0 - oy0, ox1 - wx1, oy1 - wy1) <= 6
    # ... and it is the turned box's bounds, larger than the stored box.
    sx0, sy0, sx1, sy1 = _bbox(_is(stored, outline))
    assert ox1 - ox0 > sx1 - sx0 + 6 and oy1 - oy0 > sy1 - sy0 + 6


def test_grid_and_html_draw_the_annotations(
    box_dataset: Path, stats_dataset: Path, tmp_path: Path
) -> None:
    outline = box_colour(0, None)
    proc = _run("inspect", str(box_dataset), "--grid", str(tmp_path / "g.png"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    grid = np.asarray(Image.open(tmp_path / "g.png").convert("RGB"))
    x0, y0, x1, y1 = _bbox(_is(grid, outline))
    wx0, wy0, wx1, wy1 = _bbox((grid == 255).all(axis=2))
    assert x0 < wx0 and y0 < wy0 and wx1 < x1 and wy1 < y1
    plain = tmp_path / "plain.png"
    argv = ["inspect", str(box_dataset), "--grid", str(plain), "--no-annotations", "--quiet"]
    assert _run(*argv).returncode == 0
    assert not _is(np.asarray(Image.open(plain).convert("RGB")), outline).any()
    # Boxes with classes: each class in its colour (class 3's only box is in record 4).
    html = tmp_path / "r.html"
    argv = ["inspect", str(stats_dataset), "--grid", str(tmp_path / "s.png"), "--html", str(html)]
    assert _run(*argv, "--quiet", "--per-class", "3").returncode == 0
    sheet = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"))
    for c in (0, 1, 2, 3):
        assert _is(sheet, box_colour(0, c)).any(), c
    page = html.read_text("utf-8")
    assert "<h2>Fields</h2>" in page and "per image  mean 2.00" in page
