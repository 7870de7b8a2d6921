"""The keys of ``weights=``: class ids or class names, resolved against the classes the
sampler balances (the one rule of ``Sampler``, ``Loader`` and ``datumio inspect``)."""

from __future__ import annotations

from collections.abc import Sequence

from datumio.errors import OptionError
from datumio.sampling._options import ClassWeights


def resolve_weights(
    weights: ClassWeights,
    class_names: Sequence[str] | None,
    num_classes: int | None,
    where: str = "weights",
) -> dict[int, float]:
    """``{class id: weight}`` of ``weights`` keyed by class ids or class names.

    A text key is a class name; one that names no class but is written as a class id
    (``"3"``) is that id (names win, so the keys of a JSON file, always text, give ids too).
    When the number of classes is known (a dataset's), every key must be one of its classes;
    otherwise (a labels array) a key past the largest label is left to the sampler, which
    skips it with a warning (a class without records).

    Raises:
        OptionError: a key that is no class, or two keys for one class; the message lists
            the valid ids and names.
    """
    names = list(class_names or [])
    by_name = {name: c for c, name in enumerate(names)}
    resolved: dict[int, float] = {}
    for key, weight in weights.items():
        c = by_name.get(key) if isinstance(key, str) else int(key)
        if c is None and isinstance(key, str) and key.strip().isdigit():
            c = int(key)
        if c is None or c < 0 or (num_classes is not None and c >= num_classes):
            raise OptionError(f"{where}: {key!r} {_not_a_class(key, names, num_classes)}")
        if c in resolved:
            raise OptionError(f"{where}: class {c} is given twice (by id and by name); keep one")
        resolved[c] = weight
    return resolved


def _not_a_class(key: int | str, names: list[str], num_classes: int | None) -> str:
    """Why ``key`` names no class, and which keys do."""
    if num_classes is None:
        if isinstance(key, str):
            return (
                "is not a class id, and a sampler over a labels array (or groups) has no "
                "class names: give class ids, or build the Sampler from the dataset"
            )
        return "is not a class id: give non-negative class ids"
    shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
    valid = f"class ids 0-{num_classes - 1}" + (f" or names: {shown}" if names else "")
    return f"is neither a class name nor a class id of the dataset; give {valid}"
