"""``import datumio`` (and datumio.adapters, datumio.datagen) imports no framework, OpenCV
only when a warp first needs it, and h5py/lmdb only when a shard is opened."""

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


def test_storage_backends_load_when_a_shard_is_first_opened():
    """h5py alone costs about 20 ms of start-up: ``import datumio`` and ``--help`` skip it."""
    code = (
        "import sys, datumio, datumio.tools.ingest_cmd, datumio.tools.inspect_cmd\n"
        "loaded = [m for m in ('h5py', 'lmdb') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
