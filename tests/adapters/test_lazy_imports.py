"""``import datumio`` (and datumio.adapters, datumio.datagen) imports no framework, and
OpenCV only when a warp first needs it."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "cv2")


def test_import_datumio_imports_no_framework():
    code = (
        "import sys, datumio, datumio.adapters, datumio.datagen, datumio.adapters.torch, "
        "datumio.adapters.keras, datumio.adapters.tf, datumio.adapters.jax\n"
        f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_plain_import_check():
    code = f"import datumio, sys; assert not any(m in sys.modules for m in {FRAMEWORKS!r})"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
