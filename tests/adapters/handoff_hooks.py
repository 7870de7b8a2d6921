"""Top-level functions the transfer-thread tests hand to workers through ``Transform(user_fn=...)``.

Kept out of the test module so that a worker process unpickling them imports numpy only,
not torch and pytest.
"""

from __future__ import annotations

import numpy as np

#: The call on which :func:`fail_on_ninth_call` raises (the first image of batch 2 for a
#: single worker and batches of 4).
FAILING_CALL = 9

_calls = 0


def fail_on_ninth_call(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image unchanged, but raise on this worker process's ninth call."""
    global _calls
    _calls += 1
    if _calls == FAILING_CALL:
        raise ValueError(f"boom on call {FAILING_CALL} from user_fn")
    return image
