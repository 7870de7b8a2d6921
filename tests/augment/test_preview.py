"""``datumio preview``: writes a PNG of the expected size; bad specs are usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from datumio.tools import preview_cmd

pytestmark = pytest.mark.timeout(40)


def test_preview_writes_a_grid(tiny_dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    spec = (
        '{"size": [40, 40], "rotation_range": [-20, 20], "zoom_range": [0.9, 1.1], '
        '"do_flip_lr": true}'
    )
    argv = [tiny_dataset, "--transform", spec, "-o", str(out), "--per-class", "2", "--views", "3"]
    assert preview_cmd.main(argv) == 0
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.size == preview_cmd.preview_size(2, 2, 3)


def test_preview_reads_a_json_file_and_original_names(tiny_dataset: str, tmp_path: Path) -> None:
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
    argv = [tiny_dataset, "--transform", str(spec), "-o", str(out), "--seed", "3", "--thumb", "48"]
    assert preview_cmd.main(argv) == 0
    with Image.open(out) as img:
        assert img.size == preview_cmd.preview_size(2, 4, 2, 48)


def test_preview_bad_spec_is_a_usage_error(tiny_dataset: str, tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    assert (
        preview_cmd.main([tiny_dataset, "--transform", '{"size": [8, 8], "spin": 1}', "-o", out])
        == 2
    )
    assert preview_cmd.main([tiny_dataset, "--transform", "nope.json", "-o", out]) == 2
    assert preview_cmd.main([str(tmp_path), "--transform", '{"size": [8, 8]}', "-o", out]) == 1
