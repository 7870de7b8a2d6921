"""The original datumio API in Python 3: ``BatchGenerator``, ``DataGenerator`` and the
transform functions of :mod:`datumio.datagen.transforms` (also importable as
``datumio.transforms``), run on the loader's worker pool.

.. code-block:: python

    from datumio.datagen import BatchGenerator, DataGenerator
"""

from datumio.datagen.generators import BatchGenerator, DataGenerator
from datumio.datagen.loaders import img_loader
from datumio.sampling import resample_data

__all__ = ["BatchGenerator", "DataGenerator", "img_loader", "resample_data"]
