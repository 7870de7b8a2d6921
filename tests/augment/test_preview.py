"""``datumio preview``: writes a PNG of the expected size; bad specs are usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from datumio.tools import preview_cmd

pytestmark = pytest.mark.timeout(40)


SPEC = (
    '{"size": [40, 40], "rotation_range": [-20, 20], "zoom_range": [0.9, 1.1], "do_flip_lr": true}'
)


def _grid(dataset: Path, out: Path, *args: str) -> tuple[int, int]:
    """Run ``datumio preview`` and return the (width, height) of the PNG it wrote."""
    assert preview_cmd.main([str(dataset), "--transform", SPEC, "-o", str(out), *args]) == 0
    with Image.open(out) as img:
        assert img.format == "PNG"
        return img.size


def test_the_grid_has_a_row_per_class_and_a_tile_per_record_and_view(
    tiny_lmdb: Path, tmp_path: Path
) -> None:
    """The documented layout (``datumio preview --help``): a row per class, and per record a
    stored tile then its views, each tile --thumb pixels square. The margins and gaps are
    the drawing's own, so the test measures what one more row, view, record or pixel of
    --thumb adds, never the code's size formula."""

    def size(*args: str) -> tuple[int, int]:
        return _grid(tiny_lmdb, tmp_path / "grid.png", "--seed", "1", *args)

    base = size("--per-class", "2", "--views", "3", "--thumb", "48")
    one_row = size("--per-class", "2", "--views", "3", "--thumb", "48", "--max-classes", "1")
    more_views = size("--per-class", "2", "--views", "4", "--thumb", "48")
    more_records = size("--per-class", "3", "--views", "3", "--thumb", "48")
    bigger = size("--per-class", "2", "--views", "3", "--thumb", "58")
    row_pitch = base[1] - one_row[1]  # one class: a tile and the gap below it
    tile_pitch = (more_views[0] - base[0]) // 2  # one view more for each of 2 records
    assert more_views[0] - base[0] == 2 * tile_pitch and more_views[1] == base[1]
    assert base[0] == one_row[0]  # a row less: as wide
    assert row_pitch == tile_pitch and 48 < tile_pitch < 48 + 24  # a tile and a small gap
    # One record more: its stored tile and 3 views (and the gap between records).
    assert 4 * tile_pitch <= more_records[0] - base[0] < 5 * tile_pitch
    assert more_records[1] == base[1]
    # 10 pixels more per tile: 2 records x (1 + 3) tiles across, 2 rows down.
    assert (bigger[0] - base[0], bigger[1] - base[1]) == (2 * 4 * 10, 2 * 10)


def test_preview_reads_a_json_file_and_original_names(tiny_lmdb: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "output_shape": [30, 30],
                "warp_kwargs": {"mode": "reflect"},
                "rotation_range": [0, 360],
            }
        )
    )
    out = tmp_path / "g.png"
    argv = [str(tiny_lmdb), "--transform", str(spec), "-o", str(out), "--seed", "3"]
    argv += ["--thumb", "48"]
    assert preview_cmd.main(argv) == 0
    # The same grid as from the same spec in datumio's own names, as a JSON object.
    same = (
        '{"size": [30, 30], "keep_scale": true, "fill_mode": "reflect", "rotation_range": [0, 360]}'
    )
    again = tmp_path / "again.png"
    argv = [str(tiny_lmdb), "--transform", same, "-o", str(again), "--seed", "3", "--thumb", "48"]
    assert preview_cmd.main(argv) == 0
    with Image.open(out) as a, Image.open(again) as b:
        assert a.size == b.size and a.tobytes() == b.tobytes()


def test_preview_bad_spec_is_a_usage_error(tiny_lmdb: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    assert (
        preview_cmd.main([str(tiny_lmdb), "--transform", '{"size": [8, 8], "spin": 1}', "-o", out])
        == 2
    )
    assert preview_cmd.main([str(tiny_lmdb), "--transform", "nope.json", "-o", out]) == 2
    assert preview_cmd.main([str(tmp_path), "--transform", '{"size": [8, 8]}', "-o", out]) == 1
