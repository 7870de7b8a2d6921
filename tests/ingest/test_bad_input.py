"""Ingest on broken and awkward image files, drawn in code (see ``awkward.py``).

One "zoo" input tree is ingested twice: inline with the original bytes kept
(``workers=1, encode="keep"``) and in a real two-process pool re-encoded as lossless PNG
(``workers=2, encode="png"``). The PNG dataset holds the pixels ingest decoded; the keep
dataset decodes the original bytes again at read time, so comparing them proves that
kept bytes decode to the pixels ingest checked.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import awkward as aw
import numpy as np
import pytest
from image_helpers import draw_image, read_rejects_jsonl
from PIL import Image

import datumio
from datumio import codec
from datumio.errors import DecodeError, IngestError, TooManyRejectsError

GRAY16 = np.array([[0, 1, 255, 256, 32767, 32768, 40000, 65534, 65535]], dtype=np.uint16)
RGB16 = np.array(
    [[[0, 32768, 65535], [255, 32767, 4660], [65535, 65535, 65535], [0, 0, 0]]], dtype=np.uint16
)

# Every file of the zoo and the reject reason it must get (None: accepted).
ZOO_BAD = {
    "c_bad/empty.jpg": "empty file",
    "c_bad/half.jpg": "truncated",
    "c_bad/half.png": "truncated",
    "c_bad/notes.txt": "not an image",
    "c_bad/noise.jpg": "not an image",
    "c_bad/bomb.png": "decompression bomb",
}
ZOO_GOOD = [
    "a_good/1x1.png",
    "a_good/cmyk.jpg",
    "a_good/gray16.png",
    "a_good/rgb16.png",
    "a_good/onebit.png",
    "a_good/palette_key.png",
    "a_good/palette_alpha.png",
    "a_good/rgba.png",
    "a_good/la.png",
    "a_good/key_l.png",
    "a_good/key_rgb.png",
    "a_good/key_1.png",
    "a_good/key_i16.png",
    "a_good/exif6.jpg",
    "a_good/exif8.jpg",
    "a_good/anim.gif",
    "a_good/png_inside.jpg",
    "a_good/UPPER.JPG",
    "a_good/UPPER.PNG",
    "d_good/plain.png",
]


def draw_zoo(root: Path) -> None:
    a, c = root / "a_good", root / "c_bad"
    draw_image(a / "1x1.png", size=(1, 1), colour=(12, 34, 56))
    aw.cmyk_jpeg(a / "cmyk.jpg")
    aw.gray16_png(a / "gray16.png", GRAY16)
    aw.rgb16_png(a / "rgb16.png", RGB16)
    aw.one_bit_png(a / "onebit.png")
    aw.palette_png(a / "palette_key.png", 0)
    aw.palette_png(a / "palette_alpha.png", [0, 255, 128, 255])
    aw.rgba_png(a / "rgba.png")
    aw.la_png(a / "la.png")
    aw.colour_key_png(a / "key_l.png", "L")
    aw.colour_key_png(a / "key_rgb.png", "RGB")
    aw.colour_key_png(a / "key_1.png", "1")
    aw.colour_key_png(a / "key_i16.png", "I;16")
    aw.exif_jpeg(a / "exif6.jpg", 6)
    aw.exif_jpeg(a / "exif8.jpg", 8)
    aw.animated_gif(a / "anim.gif", [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    draw_image(a / "png_inside.jpg", size=(5, 4), fmt="PNG")
    draw_image(a / "UPPER.JPG", size=(8, 8), fmt="JPEG")
    draw_image(a / "UPPER.PNG", size=(8, 8), fmt="PNG")
    (root / "b_empty").mkdir()
    aw.zero_byte(c / "empty.jpg")
    aw.truncated(c / "half.jpg", "JPEG")
    aw.truncated(c / "half.png", "PNG")
    aw.text_file(c / "notes.txt")
    aw.random_bytes(c / "noise.jpg")
    aw.bomb_png(c / "bomb.png", 12000, 12000)  # 144M pixels > Pillow's default limit
    draw_image(root / "d_good" / "plain.png", size=(6, 6))


class Run:
    """One ingest of the zoo and lookups by source name."""

    def __init__(self, out: Path, report: datumio.IngestReport) -> None:
        self.out = out
        self.report = report
        self.ds = datumio.open(out)
        self.by_source = {self.ds.source(i): i for i in range(len(self.ds))}

    def pixels(self, name: str) -> np.ndarray:
        return self.ds[self.by_source[name]][0]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo") / "src"
    draw_zoo(root)
    return root


@pytest.fixture(scope="module")
def zoo_runs(zoo: Path) -> dict[str, Run]:
    runs = {}
    for name, options in (
        ("keep", datumio.IngestOptions(workers=1, encode="keep")),
        ("png", datumio.IngestOptions(workers=2, encode="png", shard_records=3)),
    ):
        out = zoo.parent / f"{name}.lmdb"
        runs[name] = Run(out, datumio.ingest(zoo, out, options))
    return runs


@pytest.fixture(params=["keep", "png"])
def run(request: pytest.FixtureRequest, zoo_runs: dict[str, Run]) -> Run:
    return zoo_runs[request.param]


# -- nothing is lost -----------------------------------------------------------------------


def test_every_file_is_accepted_or_rejected_with_its_reason(run: Run) -> None:
    got = {r.path: r.reason for r in run.report.rejects}
    assert got == ZOO_BAD
    assert sorted(run.by_source) == sorted(ZOO_GOOD)
    assert run.report.files_seen == len(ZOO_BAD) + len(ZOO_GOOD)
    assert run.report.num_records + len(run.report.rejects) == run.report.files_seen


def test_rejects_jsonl_lists_every_reject(run: Run) -> None:
    rows = read_rejects_jsonl(run.out)
    assert {r["path"]: r["reason"] for r in rows} == ZOO_BAD
    assert len(rows) == len(ZOO_BAD)
    assert run.report.manifest.rejects is not None
    by_reason = run.report.manifest.rejects.by_reason
    assert by_reason == dict(collections.Counter(ZOO_BAD.values()))


def test_empty_and_all_rejected_classes_keep_their_ids(run: Run) -> None:
    m = run.report.manifest.to_json()
    assert m["class_names"] == ["a_good", "b_empty", "c_bad", "d_good"]
    assert m["class_counts"] == [len(ZOO_GOOD) - 1, 0, 0, 1]
    assert m["class_rejected"] == [0, 0, len(ZOO_BAD), 0]
    assert m["empty_classes"] == [
        {"id": 1, "name": "b_empty", "why": "no files"},
        {"id": 2, "name": "c_bad", "why": f"all {len(ZOO_BAD)} file(s) rejected"},
    ]
    assert run.ds[run.by_source["d_good/plain.png"]][1] == 3
    assert list(run.ds.counts) == [len(ZOO_GOOD) - 1, 0, 0, 1]


def test_keep_stores_original_bytes_and_decodes_like_ingest(
    zoo: Path, zoo_runs: dict[str, Run]
) -> None:
    keep, png = zoo_runs["keep"], zoo_runs["png"]
    assert keep.ds.encoding == "keep"
    for name in ZOO_GOOD:
        i = keep.by_source[name]
        assert keep.ds.read(i) == (zoo / name).read_bytes()
        np.testing.assert_array_equal(keep.pixels(name), png.pixels(name), err_msg=name)
        assert keep.ds.shape(i) == png.ds.shape(png.by_source[name])


def test_workers_do_not_change_order_or_labels(zoo_runs: dict[str, Run]) -> None:
    keep, png = zoo_runs["keep"], zoo_runs["png"]
    assert [keep.ds.source(i) for i in range(len(keep.ds))] == [
        png.ds.source(i) for i in range(len(png.ds))
    ]
    np.testing.assert_array_equal(keep.ds.labels, png.ds.labels)


# -- decode rules, checked on the stored pixels --------------------------------------------


def test_1x1_is_accepted(run: Run) -> None:
    np.testing.assert_array_equal(run.pixels("a_good/1x1.png"), [[[12, 34, 56]]])


def test_cmyk_jpeg_matches_pillow_convert(run: Run, zoo: Path) -> None:
    with Image.open(zoo / "a_good/cmyk.jpg") as img:
        assert img.mode == "CMYK"
        expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(run.pixels("a_good/cmyk.jpg"), expected)


def test_gray16_is_scaled_not_clipped(run: Run, zoo: Path) -> None:
    with Image.open(zoo / "a_good/gray16.png") as img:
        assert img.mode.startswith("I")
    got = run.pixels("a_good/gray16.png")
    assert got.shape == (1, GRAY16.shape[1], 3)
    assert (got == got[..., :1]).all()  # gray stays gray in RGB
    row = got[0, :, 0].astype(int)
    expected = np.round(GRAY16[0].astype(float) * 255 / 65535).astype(int)
    np.testing.assert_array_equal(row, expected)
    assert dict(zip(GRAY16[0].tolist(), row.tolist(), strict=True))[65535] == 255
    assert dict(zip(GRAY16[0].tolist(), row.tolist(), strict=True))[32768] == 128
    assert (np.diff(row) >= 0).all()  # ordering kept


def test_gray16_gradient_keeps_its_ordering(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 1024).astype(np.uint16).reshape(1, -1)
    path = aw.gray16_png(tmp_path / "ramp.png", ramp)
    row = codec.decode(path.read_bytes(), gray=True)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert (np.diff(row) >= 0).all()
    assert len(np.unique(row)) == 256  # every 8-bit level used: scaled, not clipped


def test_rgb16_keeps_the_high_byte(run: Run) -> None:
    # Pillow has no 16-bit RGB mode and keeps each sample's high byte (v >> 8); that is
    # within 1 of the scaled value v * 255 / 65535 and never clips.
    got = run.pixels("a_good/rgb16.png").astype(int)
    scaled = np.round(RGB16.astype(float) * 255 / 65535).astype(int)
    assert np.abs(got - scaled).max() <= 1
    np.testing.assert_array_equal(got[0, 0], [0, 128, 255])
    np.testing.assert_array_equal(got[0, 2], [255, 255, 255])


def test_one_bit_becomes_black_and_white(run: Run) -> None:
    got = run.pixels("a_good/onebit.png")
    yy, xx = np.mgrid[0:6, 0:8]
    expected = np.where((xx + yy) % 2 == 0, 255, 0).astype(np.uint8)
    np.testing.assert_array_equal(got, np.repeat(expected[..., None], 3, axis=2))


def test_palette_transparency_is_composited_on_white(run: Run) -> None:
    np.testing.assert_array_equal(
        run.pixels("a_good/palette_key.png")[0],
        [[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
    )
    partial = run.pixels("a_good/palette_alpha.png")[0].astype(int)
    np.testing.assert_array_equal(partial[:2], [[255, 255, 255], [255, 0, 0]])
    assert np.abs(partial[2] - [127, 255, 127]).max() <= 1  # green at alpha 128 over white
    np.testing.assert_array_equal(partial[3], [0, 0, 255])


def test_rgba_and_la_alpha_is_composited_on_white(run: Run) -> None:
    rgba = run.pixels("a_good/rgba.png")[0].astype(int)
    np.testing.assert_array_equal(rgba[0], [255, 255, 255])  # transparent -> background
    np.testing.assert_array_equal(rgba[1], [200, 100, 50])  # opaque -> its colour
    assert np.abs(rgba[2] - 127).max() <= 1  # black at alpha 128 over white
    np.testing.assert_array_equal(run.pixels("a_good/la.png")[0], [[255, 255, 255], [40, 40, 40]])


def test_colour_key_transparency_is_composited(run: Run) -> None:
    np.testing.assert_array_equal(
        run.pixels("a_good/key_l.png")[0], [[255] * 3, [100] * 3, [200] * 3]
    )
    np.testing.assert_array_equal(
        run.pixels("a_good/key_rgb.png")[0], [[255] * 3, [200, 100, 50], [9, 9, 9]]
    )
    np.testing.assert_array_equal(
        run.pixels("a_good/key_1.png")[0], [[255] * 3, [255] * 3, [255] * 3]
    )
    # The 16-bit key is matched before scaling: 1000 scales to 4, and stays opaque.
    np.testing.assert_array_equal(
        run.pixels("a_good/key_i16.png")[0], [[255] * 3, [4] * 3, [255] * 3]
    )


def _corner_colours(img: np.ndarray) -> dict[str, np.ndarray]:
    h, w = img.shape[:2]
    k = 3
    return {
        "top-left": img[:k, :k].reshape(-1, 3).mean(0),
        "top-right": img[:k, w - k :].reshape(-1, 3).mean(0),
        "bottom-left": img[h - k :, :k].reshape(-1, 3).mean(0),
        "bottom-right": img[h - k :, w - k :].reshape(-1, 3).mean(0),
    }


@pytest.mark.parametrize(("name", "marker_at"), [("exif6", "top-right"), ("exif8", "bottom-left")])
def test_exif_rotated_jpeg_comes_out_upright(run: Run, name: str, marker_at: str) -> None:
    img = run.pixels(f"a_good/{name}.jpg")
    assert img.shape == (24, 16, 3)  # stored 24 wide x 16 high; upright it is 16 x 24
    for corner, colour in _corner_colours(img).items():
        expected = aw.MARKER if corner == marker_at else aw.FIELD
        assert np.abs(colour - expected).max() < 40, (corner, colour)
    assert run.report.manifest.stats is not None
    stats = run.report.manifest.stats.source_size
    assert stats["width"]["min"] <= 16 and stats["height"]["max"] >= 24


def test_animated_gif_gives_its_first_frame(run: Run) -> None:
    img = run.pixels("a_good/anim.gif")
    assert img.shape == (4, 6, 3)
    assert (img == [255, 0, 0]).all()


def test_content_not_name_decides_the_format(run: Run, zoo: Path) -> None:
    with Image.open(zoo / "a_good/png_inside.jpg") as img:
        expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(run.pixels("a_good/png_inside.jpg"), expected)
    with Image.open(zoo / "a_good/UPPER.PNG") as img:
        np.testing.assert_array_equal(
            run.pixels("a_good/UPPER.PNG"), np.asarray(img.convert("RGB"))
        )
    assert run.pixels("a_good/UPPER.JPG").shape == (8, 8, 3)
    assert run.report.manifest.stats is not None
    formats = run.report.manifest.stats.source_formats
    assert formats["PNG"] >= 2 and formats["JPEG"] >= 2


# -- backgrounds ---------------------------------------------------------------------------


def _transparent_tree(root: Path) -> Path:
    aw.palette_png(root / "c" / "palette.png", 0)
    aw.rgba_png(root / "c" / "rgba.png")
    aw.la_png(root / "c" / "la.png")
    return root


@pytest.mark.parametrize("encode", ["png", "raw"])
def test_background_option_changes_the_composite_colour(tmp_path: Path, encode: str) -> None:
    src = _transparent_tree(tmp_path / "src")
    options = datumio.IngestOptions(workers=1, encode=encode, background=(0, 128, 0))
    datumio.ingest(src, tmp_path / "out", options)
    ds = datumio.open(tmp_path / "out")
    by_source = {ds.source(i): ds[i][0] for i in range(len(ds))}
    np.testing.assert_array_equal(by_source["c/palette.png"][0, 0], [0, 128, 0])
    np.testing.assert_array_equal(by_source["c/rgba.png"][0, :2], [[0, 128, 0], [200, 100, 50]])
    np.testing.assert_array_equal(by_source["c/la.png"][0], [[0, 128, 0], [40, 40, 40]])


def test_kept_originals_decode_over_the_ingest_background(tmp_path: Path) -> None:
    src = _transparent_tree(tmp_path / "src")
    options = datumio.IngestOptions(workers=1, encode="keep", background=(0, 128, 0))
    datumio.ingest(src, tmp_path / "out", options)
    ds = datumio.open(tmp_path / "out")
    i = [ds.source(k) for k in range(len(ds))].index("c/rgba.png")
    np.testing.assert_array_equal(ds[i][0][0, 0], [0, 128, 0])


# -- decompression bombs -------------------------------------------------------------------


def test_max_pixels_option_rejects_large_images(tmp_path: Path) -> None:
    src = tmp_path / "src"
    aw.bomb_png(src / "c" / "big.png", 4000, 4000)
    aw.bomb_png(src / "c" / "limit.png", 1000, 1000)
    draw_image(src / "c" / "small.png")
    options = datumio.IngestOptions(workers=1, max_pixels=1_000_000)
    report = datumio.ingest(src, tmp_path / "out", options)
    assert [(r.path, r.reason) for r in report.rejects] == [("c/big.png", "decompression bomb")]
    assert "max_pixels=1000000" in report.rejects[0].detail
    assert report.num_records == 2  # exactly max_pixels is allowed


def test_max_pixels_above_pillows_limit_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow checks its own global limit (MAX_IMAGE_PIXELS) when it opens a file; the
    # max_pixels option must win over it, for a GIF (frames scanned) and a PNG alike.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    gif = aw.animated_gif(tmp_path / "anim.gif", [(255, 0, 0), (0, 255, 0)]).read_bytes()
    png = draw_image(tmp_path / "p.png", size=(8, 8)).read_bytes()
    assert codec.decode(gif, max_pixels=1000).shape == (4, 6, 3)
    assert codec.decode(png, max_pixels=1000).shape == (8, 8, 3)


@pytest.mark.parametrize(("fmt", "keep_bytes"), [("JPEG", 200), ("PNG", 20)])
def test_file_cut_inside_its_header_is_truncated(fmt: str, keep_bytes: int) -> None:
    data = aw.encoded(aw.noise_rgb(16, 16), fmt)[:keep_bytes]
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert info.value.reason == "truncated"


def test_default_limit_refuses_a_tiny_file_with_huge_dimensions_cheaply(tmp_path: Path) -> None:
    path = aw.bomb_png(tmp_path / "bomb.png", 12000, 12000)
    assert path.stat().st_size < 64_000
    small = tmp_path / "small.png"
    Image.new("RGB", (8, 8)).save(small)
    # Peak memory of a fresh process: decoding the bomb would need >= 144 MB (432 MB as RGB);
    # refusing it from the header costs no more than decoding an 8x8 image.
    script = (
        "import resource, sys\n"
        "from datumio import codec\n"
        "from datumio.errors import DecodeError\n"
        "try:\n"
        "    codec.decode(open(sys.argv[1], 'rb').read())\n"
        "    print('decoded')\n"
        "except DecodeError as exc:\n"
        "    print(exc.reason.replace(' ', '_'))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )

    def peak(image: Path) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", script, str(image)], capture_output=True, text=True, check=True
        ).stdout.split()
        return out[0], int(out[1])

    reason, bomb_kib = peak(path)
    baseline_reason, baseline_kib = peak(small)
    assert reason == "decompression_bomb" and baseline_reason == "decoded"
    assert bomb_kib < baseline_kib + 50_000


# -- error policies ------------------------------------------------------------------------


def _small_bad_tree(root: Path) -> Path:
    draw_image(root / "a" / "1.png")
    aw.zero_byte(root / "a" / "2_empty.png")
    draw_image(root / "a" / "3.png")
    aw.text_file(root / "b" / "4_notes.png")
    draw_image(root / "b" / "5.png")
    return root


@pytest.mark.parametrize("workers", [1, 2])
def test_on_error_raise_names_the_file_and_leaves_no_output(tmp_path: Path, workers: int) -> None:
    src = _small_bad_tree(tmp_path / "src")
    options = datumio.IngestOptions(workers=workers, on_error="raise", shard_records=1)
    with pytest.raises(IngestError, match=r"a/2_empty\.png: empty file"):
        datumio.ingest(src, tmp_path / "out", options)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]  # no temporary left behind


@pytest.mark.parametrize("workers", [1, 2])
def test_max_errors(tmp_path: Path, workers: int) -> None:
    src = _small_bad_tree(tmp_path / "src")
    ok = datumio.ingest(src, tmp_path / "ok", datumio.IngestOptions(workers=workers, max_errors=2))
    assert ok.num_records == 3 and len(ok.rejects) == 2
    with pytest.raises(TooManyRejectsError, match=r"b/4_notes\.png: not an image") as info:
        datumio.ingest(
            src, tmp_path / "too_many", datumio.IngestOptions(workers=workers, max_errors=1)
        )
    assert "--max-errors 1" in str(info.value)
    assert not (tmp_path / "too_many").exists()
    with pytest.raises(TooManyRejectsError, match=r"a/2_empty\.png"):
        datumio.ingest(src, tmp_path / "zero", datumio.IngestOptions(workers=1, max_errors=0))


def test_only_bad_files_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "src"
    aw.zero_byte(src / "a" / "x.png")
    with pytest.raises(IngestError, match=r"no usable image.*a/x\.png: empty file"):
        datumio.ingest(src, tmp_path / "out", datumio.IngestOptions(workers=1))
    assert not (tmp_path / "out").exists()


def test_report_to_dict_is_json(zoo_runs: dict[str, Run]) -> None:
    summary: dict[str, Any] = zoo_runs["keep"].report.to_dict()
    json.dumps(summary)
    assert summary["rejected"] == len(ZOO_BAD)
    assert summary["files_seen"] == len(ZOO_BAD) + len(ZOO_GOOD)
