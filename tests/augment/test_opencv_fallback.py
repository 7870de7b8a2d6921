"""OpenCV is a dependency, but a ``cv2`` that cannot be imported (a broken install, a missing
system library) must not stop training: Pillow takes over and one warning says so."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import numpy as np
    from datumio.augment import Transform, decode_for, opencv_probe, sample_rng

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    image = np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3)
    spec = Transform(size=(24, 24), rotation_range=(-10.0, 10.0), dtype="uint8")
    out = decode_for(spec, image, sample_rng(0, 0, 0))
    out = decode_for(spec, image, sample_rng(0, 0, 1))
    print("OUT", out.shape, opencv_probe.describe())
    """
)


def test_a_cv2_that_fails_to_import_falls_back_to_pillow_with_one_warning(
    tmp_path: Path,
) -> None:
    (tmp_path / "cv2.py").write_text('raise ImportError("libGL.so.1: cannot open shared object")\n')
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=50,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OUT (24, 24, 3) Pillow (OpenCV cannot be imported" in done.stdout, done.stdout
    assert done.stderr.count("OpenCV (cv2) cannot be imported") == 1, done.stderr
    assert "libGL.so.1" in done.stderr and "opencv-python-headless" in done.stderr


def test_with_opencv_the_tools_name_it() -> None:
    cv2 = pytest.importorskip("cv2")
    from datumio.augment import opencv_probe

    assert opencv_probe.describe() == f"OpenCV {cv2.__version__}"
