"""The original import path of the transform functions: see :mod:`datumio.datagen.transforms`."""

from datumio.datagen.transforms import *  # noqa: F403
from datumio.datagen.transforms import __all__  # noqa: F401
