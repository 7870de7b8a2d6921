"""The package people install: a wheel and an sdist that build, pass ``twine check``, carry
the license, the type marker and the code, and nothing of the tests or benchmark data."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import datumio

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` of this tree (no isolation: the test environment has the
    build requirements, and nothing is downloaded)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_twine_check_passes(dist: Path) -> None:
    files = [str(p) for p in sorted(dist.iterdir())]
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_the_wheel_holds_the_code_the_license_and_py_typed_only(dist: Path) -> None:
    # py3-none-any without a C compiler; with one, the region JPEG decoder makes it a
    # platform wheel (datumio/_native, setup.py)
    wheel = _one(dist, f"datumio-{datumio.__version__}-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(f"datumio-{datumio.__version__}.dist-info/METADATA").decode()
        entry_points = zf.read(f"datumio-{datumio.__version__}.dist-info/entry_points.txt")
    assert "datumio/py.typed" in names and "datumio/__init__.py" in names
    assert "datumio/loader/worker.py" in names and "datumio/datagen/job.py" in names
    assert "datumio/_jpegroi.pyi" in names
    if "py3-none-any" not in wheel.name:
        assert any(n.startswith("datumio/_jpegroi") and n.endswith(".so") for n in names)
    tops = {n.split("/")[0] for n in names}
    assert tops == {"datumio", f"datumio-{datumio.__version__}.dist-info"}, tops
    info = f"datumio-{datumio.__version__}.dist-info"
    assert any(n.startswith(f"{info}/") and n.endswith("LICENSE") for n in names), names
    for requirement in ("numpy", "opencv-python-headless", "cloudpickle", "lmdb", "h5py"):
        assert f"Requires-Dist: {requirement}" in metadata, requirement
    assert "License: MIT" in metadata or "License-Expression: MIT" in metadata
    assert b"datumio = datumio.tools.entry:datumio" in entry_points


def test_the_sdist_builds_the_same_package_without_data(dist: Path) -> None:
    sdist = _one(dist, f"datumio-{datumio.__version__}.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    base = f"datumio-{datumio.__version__}"
    for needed in (
        "LICENSE",
        "README.md",
        "setup.cfg",
        "setup.py",
        "pyproject.toml",
        "datumio/py.typed",
        "datumio/_native/jpegroi.c",
        "datumio/_native/libjpeg/jpeglib.h",
        "datumio/_native/libjpeg/README.ijg",
    ):
        assert f"{base}/{needed}" in names, needed
    assert not [n for n in names if "/bench-out/" in n or n.endswith((".lmdb", ".mdb", ".h5"))]
