"""``import datumio`` (and datumio.adapters, datumio.datagen) imports no framework, OpenCV
only when a warp first needs it, and h5py/lmdb only when a shard is opened. An adapter
module imports its own framework, and only its own; without it, importing the adapter
says how to install it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from side_by_side import side_by_side

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "cv2")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_datumio_imports_no_framework():
    code = (
        "import sys, datumio, datumio.adapters, datumio.datagen\n"
        f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr


def test_plain_import_check():
    code = f"import datumio, sys; assert not any(m in sys.modules for m in {FRAMEWORKS!r})"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


#: Each adapter module and the framework importing it loads (``tf`` loads TensorFlow when
#: ``tf_dataset`` is called: its ``output_shapes`` needs none).
ADAPTERS = [("torch", "torch"), ("keras", "keras"), ("jax", "jax"), ("tf", None)]


def _frameworks_loaded_by(module: str) -> set[str]:
    code = (
        "import json, os, sys\n"
        "os.environ.setdefault('KERAS_BACKEND', 'torch')\n"
        f"import {module}\n"
        f"print(json.dumps([m for m in {FRAMEWORKS!r} if m in sys.modules]))\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("adapter", "framework"), ADAPTERS, ids=[a for a, _ in ADAPTERS])
def test_an_adapter_imports_its_framework_and_no_other(adapter: str, framework: str | None):
    """What the framework itself loads (Keras loads its backend, and more) is allowed."""
    if framework is not None and importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    if framework is None:
        assert _frameworks_loaded_by(f"datumio.adapters.{adapter}") == set()
        return
    # The adapter's interpreter and the framework's alone, side by side.
    loaded, alone = side_by_side(
        {m: partial(_frameworks_loaded_by, m) for m in (f"datumio.adapters.{adapter}", framework)}
    ).values()
    assert framework in loaded
    assert loaded == alone


#: The adapter, the framework hidden from it, and the install hint its error must give.
MISSING = [
    ("torch", "torch", "pip install torch"),
    ("keras", "keras", "pip install keras"),
    ("jax", "jax", "pip install jax"),
]


@pytest.mark.parametrize(("adapter", "framework", "hint"), MISSING, ids=[a for a, _, _ in MISSING])
def test_an_adapter_without_its_framework_says_how_to_install_it(
    adapter: str, framework: str, hint: str
) -> None:
    """``sys.modules[name] = None`` is how Python marks a module that cannot be imported."""
    code = (
        "import sys\n"
        f"sys.modules[{framework!r}] = None\n"
        "try:\n"
        f"    import datumio.adapters.{adapter}\n"
        "except ImportError as exc:\n"
        "    print(exc.name)\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without its framework')\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    name, text = done.stdout.strip().split("\n", 1)
    assert name == framework
    assert f"datumio.adapters.{adapter} needs {framework}" in text and hint in text, text


def test_tf_dataset_without_tensorflow_says_how_to_install_it(shapes_lmdb: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        "import datumio\n"
        "from datumio.adapters.tf import output_shapes, tf_dataset\n"
        "with datumio.Loader(sys.argv[1], 4, workers=1) as loader:\n"
        "    print(output_shapes(loader)[1])\n"
        "    try:\n"
        "        tf_dataset(loader)\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(shapes_lmdb)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shapes, text = done.stdout.strip().split("\n", 1)
    assert shapes == "((4,), 'int64')"
    assert "datumio.adapters.tf needs tensorflow" in text and "pip install tensorflow" in text


def test_storage_backends_load_when_a_shard_is_first_opened():
    """h5py alone costs about 20 ms of start-up: ``import datumio`` and ``--help`` skip it."""
    code = (
        "import sys, datumio, datumio.tools.ingest_cmd, datumio.tools.inspect_cmd\n"
        "loaded = [m for m in ('h5py', 'lmdb') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
