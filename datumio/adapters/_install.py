"""What importing an adapter says when its framework cannot be imported.

Each adapter module imports its framework when it is imported, inside
``try: ... except ImportError as exc: raise missing(...) from exc``, so that a missing
framework reads as an install hint instead of a bare ``No module named``.
"""

from __future__ import annotations

#: How to install each framework, by the module the adapter imports.
INSTALL = {
    "torch": (
        "pip install torch (for the CPU-only wheel: pip install torch "
        "--index-url https://download.pytorch.org/whl/cpu)"
    ),
    "keras": (
        "pip install keras, with one backend (pip install torch, jax or tensorflow) "
        "named by KERAS_BACKEND before keras is imported"
    ),
    "tensorflow": "pip install tensorflow (or tensorflow-cpu, without GPU support)",
    "jax": "pip install jax (CPU; for GPUs see the JAX installation guide)",
    "lightning": "pip install lightning (or pip install pytorch-lightning: either is used)",
}


def missing(adapter: str, framework: str, cause: ImportError) -> ImportError:
    """The error of ``import datumio.adapters.ADAPTER`` when ``import FRAMEWORK`` fails.

    Args:
        adapter: the adapter module (``"datumio.adapters.torch"``).
        framework: the module it needs, a key of :data:`INSTALL` (``"torch"``).
        cause: what ``import FRAMEWORK`` raised (its text is kept: a framework that is
            installed can still fail to import, e.g. Keras without its backend).

    Returns:
        An ``ImportError`` naming the framework, what failed and how to install it.
    """
    return ImportError(
        f"{adapter} needs {framework}, but importing it failed ({cause}); "
        f"install it: {INSTALL[framework]}",
        name=framework,
    )
