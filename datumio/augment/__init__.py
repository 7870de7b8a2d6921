"""Per-sample image transforms: picklable specs applied in worker processes.

:class:`Transform` is plain data; :func:`apply` decodes one record and writes the result
straight into a caller-provided output array (a slot of the loader's shared-memory ring).
"""

from datumio.augment.geometry import Affine
from datumio.augment.pipeline import apply, decode_for
from datumio.augment.seeds import sample_rng
from datumio.augment.spec import Transform

__all__ = ["Affine", "Transform", "apply", "decode_for", "sample_rng"]
