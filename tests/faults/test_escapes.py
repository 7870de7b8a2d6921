"""Names from data reach a terminal escaped: class and group names, field values, paths and
reasons from labels files, file names and manifests never send a control sequence, forge a
line or hide text behind a bidi override, in the tools' text, their errors, --json, --html,
the pictures, and the library's errors and logs.

The hostile names are real: image files and folders named with escapes on disk, labels
files (CSV and JSONL) that hold them, a manifest edited by hand as a server could serve it.
The tools run as a user runs them (``python -m datumio ...``, a fresh process).
"""

from __future__ import annotations

import csv
import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from builders import build_dataset
from PIL import Image

import datumio
from datumio.errors import BadInputError

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

EVIL = "evil\x1b]0;PWNED\x07\x1b[2J"  # retitles the terminal, then clears the screen
RTL = "rtl\u202eabc"  # a bidi override: the rest of the line reads backwards
C1 = "c1\x9b31m"  # the one-byte CSI of C1
NEWLINE = "new\nline"  # would forge a line of the output
LABELS = (EVIL, RTL, C1, NEWLINE)
GROUP = "g\x1b[5m"
NOTE = "v\x1b]0;X\x07\u2028"
TAG = "t\x1b[1m"
#: Not an image: rejected, and its path shown in the rejects report.
BAD_FILE = "bad\x1b[31m.png"
#: A file name that is not UTF-8 (byte 0xff): the surrogate os.fsdecode gives it.
UNDECODABLE = os.fsdecode(b"u\xff.png")
HOSTILE_DIR = "d\x1b[2J\u202e"

#: What each hostile text shows as (Python's escapes; the byte of a non-UTF-8 name).
SHOWN = {
    EVIL: r"evil\x1b]0;PWNED\x07\x1b[2J",
    RTL: r"rtl\u202eabc",
    C1: r"c1\x9b31m",
    NEWLINE: r"new\nline",
    GROUP: r"g\x1b[5m",
    TAG: r"t\x1b[1m",
    BAD_FILE: r"bad\x1b[31m.png",
    UNDECODABLE: r"u\xff.png",
    HOSTILE_DIR: r"d\x1b[2J\u202e",
}
#: Controls, format characters (bidi, zero-width), surrogates, line/paragraph separators.
_HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def raw_hidden(text: str) -> list[str]:
    """The hidden characters in ``text`` other than line breaks (the tool's own lines)."""
    return sorted({ch for ch in text if ch != "\n" and unicodedata.category(ch) in _HIDDEN})


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert raw_hidden(text) == [], ascii(text[:3000])  # ascii: the report is safe too


def run_cli(*argv: object, cwd: Path | None = None) -> tuple[int, str, str]:
    """``python -m datumio ARGV`` in a fresh process: (exit status, stdout, stderr); bytes
    that are not UTF-8 come back as surrogates (and fail :func:`assert_clean`)."""
    done = subprocess.run(
        [sys.executable, "-m", "datumio", *map(str, argv)],
        capture_output=True,
        timeout=180,
        cwd=cwd,
    )
    out, err = (raw.decode("utf-8", "surrogateescape") for raw in (done.stdout, done.stderr))
    return done.returncode, out, err


def picture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (12, 10, 3), dtype=np.uint8)


def corrupt(dataset: Path, record: int) -> None:
    """Flip bytes in the middle of ``record``'s payload in its shard (its CRC32 then fails)."""
    with datumio.open(dataset) as ds:
        payload = ds.read(record)
        shard = Path(ds.shard_path(ds.locate(record)[0]))
    middle = len(payload) // 2
    flipped = bytes(b ^ 0xFF for b in payload[middle : middle + 32])
    damaged = payload[:middle] + flipped + payload[middle + 32 :]
    data = shard.read_bytes()
    assert payload in data
    shard.write_bytes(data.replace(payload, damaged))  # LMDB may hold an old copy too


#: (file name, label, group, note, tags) of the labels file's rows.
ROWS = [
    ("plain.png", EVIL, GROUP, NOTE, [TAG, "ok"]),
    ("a\u202eb.png", RTL, "g2", "x", ["ok"]),
    ("c\x9bd.png", C1, "g2", "y", [TAG]),
    ("e\nf.png", NEWLINE, "g2", "z", []),
    (BAD_FILE, EVIL, "g2", "z", []),
]


def draw_source(root: Path) -> Path:
    """Images named with escapes (and one that is no image) below ``root/src``."""
    src = root / "src"
    src.mkdir(parents=True)
    for k, (name, *_) in enumerate(ROWS):
        if name == BAD_FILE:
            (src / name).write_bytes(b"not an image")
        else:
            Image.fromarray(picture(k)).save(src / name, format="PNG")
    Image.fromarray(picture(9)).save(src / UNDECODABLE, format="PNG")
    return src


def write_jsonl(path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for name, label, group, note, tags in ROWS:
            row = {"path": name, "label": label, "group": group, "note": note, "tags": tags}
            fh.write(json.dumps(row) + "\n")  # JSON escapes: the file's lines stay lines
        # A file name that is not UTF-8 can only be written as a JSON escape (\udcff).
        row = {"path": UNDECODABLE, "label": RTL, "group": "g2", "note": "w", "tags": []}
        fh.write(json.dumps(row) + "\n")
    return path


def write_csv(path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["path", "label", "group"])
        out.writerows((name, label, group) for name, label, group, *_ in ROWS)
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset, in a folder named with escapes, ingested from the JSONL labels file."""
    root = tmp_path_factory.mktemp("escapes")
    src = draw_source(root)
    labels = write_jsonl(root / "l.jsonl")
    return build_dataset(src, root / HOSTILE_DIR / "set.lmdb", rejects=1, labels_file=str(labels))


def test_printable_rule() -> None:
    from datumio.errors import printable

    shown = {
        "cat": "cat",
        "café 猫 🐈": "café 猫 🐈",
        "a\\x1b": "a\\x1b",  # a backslash is kept
        "\x00\x07\x1b\x7f": r"\x00\x07\x1b\x7f",
        "\t\n\r": r"\t\n\r",
        "\x85\x9b\x9f": r"\x85\x9b\x9f",
        "\u200b\u200d\u202a\u202e\u2066\ufeff\u00ad": r"\u200b\u200d\u202a\u202e\u2066\ufeff\xad",
        "\u2028\u2029": r"\u2028\u2029",
        "\U000e0041": r"\U000e0041",
        os.fsdecode(b"\xff\x9b"): r"\xff\x9b",
        "\ud800": r"\ud800",
        "a\u00a0b": "a\u00a0b",  # a no-break space draws as a space: kept
    }
    for text, expected in shown.items():
        assert printable(text) == expected
        assert printable(expected) == expected  # escaping twice changes nothing
        assert raw_hidden(printable(text)) == [] and "\n" not in printable(text)
    assert printable(Path("a\x1b")) == r"a\x1b"


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_ingest_prints_names_escaped_and_its_json_keeps_them(tmp_path: Path, kind: str) -> None:
    src = draw_source(tmp_path)
    labels = write_csv(tmp_path / "l.csv") if kind == "csv" else write_jsonl(tmp_path / "l.jsonl")
    code, out, err = run_cli("ingest", src, tmp_path / "text.lmdb", "--labels", labels, "--quiet")
    assert code == 0, err
    assert_clean(out, err)
    for name in (EVIL, RTL, C1, NEWLINE):
        assert SHOWN[name][:24] in out  # the bar chart cuts names at 24 characters
    assert "rejected 1 file(s)" in out and "not an image" in out

    code, out, err = run_cli(
        "ingest", src, tmp_path / "json.lmdb", "--labels", labels, "--quiet", "--json"
    )
    assert code == 0, err
    assert_clean(out, err)
    report = json.loads(out)
    assert set(report["classes"]) == set(LABELS)  # the exact names, through JSON escapes
    assert [r["path"] for r in report["rejects_sample"]] == [BAD_FILE]


def test_a_rejected_path_in_a_stopped_ingest_is_escaped(tmp_path: Path) -> None:
    src = draw_source(tmp_path)
    labels = write_jsonl(tmp_path / "l.jsonl")
    code, out, err = run_cli("ingest", src, tmp_path / "o.lmdb", "--labels", labels, "--strict")
    assert code == 3
    assert_clean(out, err)
    assert SHOWN[BAD_FILE] in err and "not an image" in err
    options = datumio.IngestOptions(workers=1, labels_file=str(labels), on_error="raise")
    with pytest.raises(BadInputError) as raised:
        datumio.ingest(src, tmp_path / "lib.lmdb", options)
    assert SHOWN[BAD_FILE] in str(raised.value) and raw_hidden(str(raised.value)) == []
    assert BAD_FILE in raised.value.args[0]  # the exact text stays in args


def test_inspect_text_record_and_sampling_show_names_escaped(hostile: Path) -> None:
    code, out, err = run_cli("inspect", hostile, "--sampling", "balanced")
    assert code == 0, err
    assert_clean(out, err)
    for text in (SHOWN[HOSTILE_DIR], SHOWN[RTL], SHOWN[C1], SHOWN[NEWLINE], SHOWN[TAG]):
        assert text in out
    assert f"e.g. {SHOWN[BAD_FILE]}: not an image" in out  # the rejects report line
    table = out[out.index("sampling: balanced") :]
    assert r"evil\x1b]0;PWNED" in table and SHOWN[NEWLINE] in table

    with datumio.open(hostile) as ds:
        record = int(ds.class_index(EVIL)[0])
        undecodable = int(ds.class_index(RTL)[-1])
    code, out, err = run_cli("inspect", hostile, "--record", record)
    assert code == 0, err
    assert_clean(out, err)
    assert f"class     {SHOWN[EVIL]} (label" in out and f"group     {SHOWN[GROUP]}" in out
    assert r'"v\u001b]0;X\u0007\u2028"' in out  # a field value: JSON, escaped
    code, out, err = run_cli("inspect", hostile, "--record", undecodable)
    assert code == 0, err
    assert_clean(out, err)
    assert f"source    {SHOWN[UNDECODABLE]}" in out


def test_inspect_json_and_html_keep_the_exact_names(hostile: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, out, err = run_cli("inspect", hostile, "--json", "--html", page, "--sampling", "natural")
    assert code == 0, err
    assert_clean(out, err)
    summary = json.loads(out)
    assert [c["name"] for c in summary["classes"]] == sorted(LABELS)
    assert summary["groups"]["names"] == sorted([GROUP, "g2"])
    assert {r["path"] for r in summary["rejects"]["sample"]} == {BAD_FILE}

    text = page.read_text(encoding="utf-8")
    assert_clean(text)
    for name in (EVIL, RTL, C1, NEWLINE, BAD_FILE):
        assert html.escape(SHOWN[name]) in text
    shown_json = re.search(r"<pre>(\{.*?)</pre>", text, re.S)
    assert shown_json is not None
    page_summary = json.loads(html.unescape(shown_json.group(1)))
    assert [c["name"] for c in page_summary["classes"]] == sorted(LABELS)


def test_verify_and_preview_show_paths_and_names_escaped(hostile: Path, tmp_path: Path) -> None:
    damaged = tmp_path / HOSTILE_DIR / "copy.lmdb"
    shutil.copytree(hostile, damaged)
    corrupt(damaged, 0)
    code, out, err = run_cli("verify", damaged)
    assert code == 1, err
    assert_clean(out, err)
    assert SHOWN[HOSTILE_DIR] in out and "problem(s):" in out

    grid = tmp_path / "grid\x1b[2J.png"
    spec = '{"size": [16, 16], "flip": 0.5}'
    code, out, err = run_cli("preview", hostile, "--transform", spec, "-o", grid)
    assert code == 0, err
    assert_clean(out, err)
    assert r"wrote " in out and r"grid\x1b[2J.png" in out and grid.is_file()


def test_pictures_draw_the_escaped_names() -> None:
    from datumio.tools.pictures import class_histogram

    drawn = np.asarray(class_histogram([NEWLINE, EVIL], [3, 1]))
    shown = np.asarray(class_histogram([SHOWN[NEWLINE], SHOWN[EVIL]], [3, 1]))
    np.testing.assert_array_equal(drawn, shown)  # one line each, not two overlapping


def test_a_hand_edited_manifest_is_shown_escaped(hostile: Path, tmp_path: Path) -> None:
    """A server can serve any manifest: its class names and source are shown escaped."""
    served = tmp_path / "served.lmdb"
    shutil.copytree(hostile, served)
    manifest = json.loads((served / "manifest.json").read_text(encoding="utf-8"))
    forged = ["a\x1b]0;OWNED\x07", "b\u202e", "c\x9b2J", "d\r\nforged line"]
    manifest["class_names"] = forged
    manifest["ingest"]["source"] = "/srv/\x1b[2J"
    (served / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    code, out, err = run_cli("inspect", served)
    assert code == 0, err
    assert_clean(out, err)
    for text in (r"a\x1b]0;OWNED\x07", r"b\u202e", r"c\x9b2J", r"d\r\nforged line"):
        assert text in out
    assert r"ingested  from /srv/\x1b[2J" in out
    assert not any(line.startswith("forged line") for line in out.splitlines())


def test_the_loaders_log_shows_the_shard_path_escaped(
    hostile: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A record that fails is logged with its shard, whose path holds the folder's escapes."""
    damaged = tmp_path / HOSTILE_DIR / "copy.lmdb"
    shutil.copytree(hostile, damaged)
    with datumio.open(damaged) as ds:
        bad = int(ds.class_index(RTL)[0])
    corrupt(damaged, bad)
    caplog.set_level(logging.WARNING, logger="datumio")
    with datumio.Loader(damaged, 2, sampling="natural", workers=1, extras=("ids",)) as loader:
        for _ in loader:
            pass
        assert loader.stats.replaced == 1
    messages = [r.getMessage() for r in caplog.records if f"record {bad}" in r.getMessage()]
    assert len(messages) == 1
    assert raw_hidden(messages[0]) == [] and "\n" not in messages[0]
    assert SHOWN[HOSTILE_DIR] in messages[0]
