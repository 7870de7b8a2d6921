"""Class names to class ids, and the message for a name that is no class."""

from __future__ import annotations

from collections.abc import Sequence

from datumio.errors import UnknownClassError


class ClassNames:
    """Looks up a dataset's class ids by name (the table is built on first use).

    Args:
        names: the class names, by class id.
        where: the dataset, for messages (its path).
    """

    def __init__(self, names: Sequence[str], where: str) -> None:
        self.names = names
        self.where = where
        self._numbers: dict[str, int] | None = None

    def number(self, name: str) -> int:
        """The class id (label) of the class called ``name``.

        Raises:
            UnknownClassError: (a ``KeyError``) no class has that name; the message lists the
                closest names and the number of classes.
        """
        if self._numbers is None:
            self._numbers = {n: i for i, n in enumerate(self.names)}
        number = self._numbers.get(name)
        if number is None:
            raise UnknownClassError(self._unknown(name))
        return number

    def _unknown(self, name: str) -> str:
        import difflib  # only on this error path: keeps `import datumio` light

        folded = [n for n in self.names if n.casefold() == name.casefold()]
        close = folded or difflib.get_close_matches(name, self.names, n=5, cutoff=0.6)
        hint = f"; the closest: {', '.join(repr(n) for n in close)}" if close else ""
        return (
            f"no class named {name!r} in {self.where} ({len(self.names)} classes{hint}); "
            "ds.class_names lists them all, and ds.class_index takes a name or a class id"
        )
