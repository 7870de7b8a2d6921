"""``size`` takes an int (square), a (height, width) pair, or text ``"224"`` / ``"HxW"`` with
the height first, the same everywhere in Python (``Transform``, a JSON spec, ``datumio
preview``); the ingest CLI keeps its documented ``WxH``. Bad values are an OptionError that
says what is accepted, and a CLI exit 2, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datumio
from datumio.augment import Transform, apply, sample_rng
from datumio.augment.spec import parse_size, transform_from_dict
from datumio.errors import OptionError
from datumio.tools import preview_cmd

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (224, (224, 224)),
        ("224", (224, 224)),
        ("224x160", (224, 160)),
        (" 224 X 160 ", (224, 160)),
        ("224\u00d7160", (224, 160)),
        ((224, 160), (224, 160)),
        ([224.0, 160], (224, 160)),
        (np.int64(32), (32, 32)),
        (np.array([16, 8]), (16, 8)),
    ],
)
def test_every_form_gives_height_width(given: object, expected: tuple[int, int]) -> None:
    spec = Transform(size=given)  # type: ignore[arg-type]
    assert spec.size == expected and all(type(side) is int for side in spec.size)
    assert spec == Transform(size=expected)
    assert pickle.loads(pickle.dumps(spec)) == spec  # what a worker receives
    assert spec.output_shape(3) == (3, *expected)  # CHW: channels, height, width
    assert dataclasses.replace(spec, size=8).size == (8, 8)


@pytest.mark.parametrize(
    "bad",
    ["224,160", "0x3", "16x0", "abc", "224x", "", True, (224,), (224, 160, 3), 224.5, -1, None],
)
def test_a_bad_size_says_what_is_accepted(bad: object) -> None:
    with pytest.raises(OptionError) as raised:
        Transform(size=bad)  # type: ignore[arg-type]
    text = str(raised.value)
    assert text.startswith("Transform(size=...)") and repr(bad) in text
    assert "an int N" in text and "(height, width)" in text and '"HxW"' in text
    assert "height first" in text


def test_text_is_height_first_in_the_pixels() -> None:
    """A 64-high, 32-wide image at "32x16" is a plain 2x shrink: no crop, no transpose."""
    ramp = np.add.outer(np.arange(64) * 3, np.arange(32)).astype(np.uint8)
    image = np.repeat(ramp[:, :, None], 3, axis=2)
    out = {}
    for given in ("32x16", (32, 16)):
        spec = Transform(size=given, layout="HWC", dtype="uint8")  # type: ignore[arg-type]
        out[given] = np.empty(spec.output_shape(3), np.uint8)
        apply(spec, image, sample_rng(0, 0, 0), out[given])
    np.testing.assert_array_equal(out["32x16"], out[(32, 16)])
    assert out["32x16"].shape == (32, 16, 3)
    halved = image.reshape(32, 2, 16, 2, 3).mean(axis=(1, 3))
    assert np.abs(out["32x16"].astype(float) - halved).max() <= 3


def test_json_specs_and_the_original_names_take_the_same_forms() -> None:
    forms = [{"size": 24}, {"size": "24"}, {"size": "24x24"}, {"size": [24, 24]}]
    assert {transform_from_dict(f).size for f in forms} == {(24, 24)}
    assert transform_from_dict({"size": "24x12"}).size == (24, 12)
    original = transform_from_dict({"output_shape": "30x20", "warp_kwargs": {"mode": "reflect"}})
    assert original.size == (30, 20) and original.keep_scale
    assert Transform.from_original(output_shape=20).size == (20, 20)
    assert parse_size("7", "where") == (7, 7)
    with pytest.raises(OptionError, match=r"^Transform\.from_original\(output_shape=\.\.\.\)"):
        Transform.from_original(output_shape="7y")


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"size": 8, "flip": "yes"}, r"Transform\(flip='yes'\); give a probability"),
        ({"size": 8, "rotation_range": 3}, "rotation_range"),
        ({"flip": 0.5}, "give size"),
    ],
)
def test_a_json_spec_of_the_wrong_shape_is_an_option_error(spec: dict, why: str) -> None:
    with pytest.raises(OptionError, match=why):
        transform_from_dict(spec)


def _preview(dataset: Path, spec: str, out: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from datumio.tools.entry import datumio; sys.exit(datumio())"
    argv = ["preview", str(dataset), "--transform", spec, "-o", str(out), "--per-class", "2"]
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("size", ['"24x24"', "24", "[24, 24]", '"24"'])
def test_datumio_preview_takes_every_size_form(tiny_lmdb: Path, tmp_path: Path, size: str) -> None:
    out = tmp_path / "grid.png"
    done = _preview(tiny_lmdb, f'{{"size": {size}, "do_flip_lr": true}}', out)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as img:
        assert img.size == preview_cmd.preview_size(2, 2, 2)


@pytest.mark.parametrize(
    "spec", ['{"size": "24x"}', '{"size": true}', '{"size": 8, "flip": "yes"}', '{"size": [8]}']
)
def test_datumio_preview_bad_spec_is_exit_2(tiny_lmdb: Path, tmp_path: Path, spec: str) -> None:
    done = _preview(tiny_lmdb, spec, tmp_path / "grid.png")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("datumio preview: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "grid.png").exists()


def test_a_spec_file_that_is_not_utf8_is_exit_2(tiny_lmdb: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_bytes(b'{"size": "\xff"}')
    done = _preview(tiny_lmdb, str(spec), tmp_path / "grid.png")
    assert done.returncode == 2 and "UTF-8" in done.stderr and "Traceback" not in done.stderr


def test_the_ingest_cli_keeps_width_x_height_and_takes_one_number(
    tiny_lmdb: Path, tmp_path: Path
) -> None:
    """``--size 20x10`` is 20 wide, 10 high (the CLI's documented WxH); ``--size 12`` is 12x12."""
    src = str(tiny_lmdb.parent / "src")
    code = "import sys; from datumio.tools.entry import datumio_ingest; sys.exit(datumio_ingest())"
    shapes = {}
    for flag in ("20x10", "12"):
        out = tmp_path / f"{flag}.lmdb"
        argv = [src, str(out), "--size", flag, "--encode", "raw", "--workers", "1", "--json"]
        done = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["records"] == 8
        with datumio.open(out) as ds:
            shapes[flag] = {ds.shape(i) for i in range(len(ds))}
    assert shapes == {"20x10": {(10, 20, 3)}, "12": {(12, 12, 3)}}
    bad = subprocess.run(
        [sys.executable, "-c", code, src, str(tmp_path / "x.lmdb"), "--size", "20by10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--size '20by10'" in bad.stderr and "WxH" in bad.stderr
