"""Per-sample image transforms: picklable specs applied in worker processes.

:class:`Transform` is plain data; :func:`apply` decodes one record, warps it once, applies
the photometric ops and writes the result straight into a caller-provided output array (a
slot of the loader's shared-memory ring); :func:`normalize_batch` finishes a written batch.
"""

from datumio.augment.geometry import Affine
from datumio.augment.normalize import normalize_batch
from datumio.augment.params import AffineParams
from datumio.augment.pipeline import apply, decode_for
from datumio.augment.seeds import sample_rng
from datumio.augment.spec import Transform, transform_from_dict

__all__ = [
    "Affine",
    "AffineParams",
    "Transform",
    "apply",
    "decode_for",
    "normalize_batch",
    "sample_rng",
    "transform_from_dict",
]
