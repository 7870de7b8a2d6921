"""The shape of the package, checked from its source: no import cycle, layers point one way.

Every ``import`` and ``from ... import`` under ``datumio/`` counts, wherever it stands (module
level, inside a function, under ``TYPE_CHECKING``): an import moved into a function still
ties the two modules together. ``from datumio.x import y`` is an edge to ``datumio.x.y``
when that is a module, else to ``datumio.x``. The implicit import of a parent package
(``datumio/x/__init__.py`` runs before ``datumio.x.y``) is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "datumio"

#: Lowest first. A unit (a subpackage, or a module directly under datumio/) may import from
#: itself and from units of lower layers only; units of one layer are peers that must not
#: import each other (shards, augment and sampling are independent; ingest and loader too).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors", ("datumio.errors", "datumio._version")),
    (
        "base",
        (
            "datumio._process",
            "datumio._shm",
            "datumio._jpegroi",
            "datumio.checks",
            "datumio.codec",
            "datumio.fields",
        ),
    ),
    ("stores and specs", ("datumio.shards", "datumio.augment", "datumio.sampling")),
    ("remote stores", ("datumio.remote",)),
    ("pipelines", ("datumio.ingest", "datumio.loader", "datumio.inspect")),
    ("original API and frameworks", ("datumio.datagen", "datumio.adapters")),
    ("command line", ("datumio.tools",)),
    ("public face", ("datumio", "datumio.transforms", "datumio.__main__")),
)

#: The only modules allowed directly under datumio/ (everything else lives in a subpackage).
LOOSE_MODULES = frozenset(
    {
        "datumio.errors",
        "datumio._version",
        "datumio._process",
        "datumio._shm",  # shared-memory segments (the loader's slots, ingest's chunks)
        "datumio._jpegroi",  # compiled (datumio/_native/jpegroi.c): region JPEG decoding
        "datumio.checks",  # the shared value checks of options and manifests
        "datumio.codec",
        "datumio.transforms",  # re-export shim of datumio.datagen.transforms
        "datumio.__main__",
    }
)

#: Floors inside datumio.augment, lowest first: a module imports only from lower floors.
AUGMENT_FLOORS: tuple[tuple[str, ...], ...] = (
    # leaves: nothing from augment
    ("opencv_probe", "seeds", "jpeg", "jpeg_roi", "bridge_torchvision", "bridge_albumentations"),
    ("spec",),
    ("params",),
    ("geometry",),
    ("opencv",),
    ("warp",),
    ("photometric", "normalize", "finish", "device", "annotations"),
    ("pipeline",),
    ("records",),
    ("__init__",),
)

#: Compiled modules (built from ``datumio/_native`` by ``setup.py``): nodes with no imports.
COMPILED = frozenset({"datumio._jpegroi"})

Graph = dict[str, set[str]]


def _module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir``."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names ``node`` imports (modules or names in them), relative ones resolved."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        anchor = here[: len(here) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        yield f"{base}.{alias.name}"


def import_graph(package_dir: Path = PACKAGE_DIR, compiled: frozenset[str] = COMPILED) -> Graph:
    """Module -> the modules of the same package it imports (``compiled``: modules built
    from C, which import nothing of the package)."""
    files = _module_files(package_dir)
    graph: Graph = {name: set() for name in [*files, *compiled]}
    known = set(graph)
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, is_package):
                while target and target not in known:  # a name in a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """Import cycles as chains ``[a, b, ..., a]``, one per back edge of a depth-first walk."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        todo = [iter(sorted(graph[start]))]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                done.add(path[-1])
                on_path.discard(path.pop())
                todo.pop()
            elif nxt in on_path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                todo.append(iter(sorted(graph[nxt])))
    return cycles


def _unit_of(module: str) -> str | None:
    """The layer unit ``module`` belongs to: itself, or the subpackage holding it."""
    for _, units in LAYERS:
        for unit in units:
            if module == unit or (unit != "datumio" and module.startswith(unit + ".")):
                return unit
    return None


def layer_violations(graph: Graph) -> list[str]:
    rank = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}
    problems = []
    for module in sorted(graph):
        unit = _unit_of(module)
        if unit is None:
            problems.append(f"{module} is in no layer: add its package to LAYERS")
            continue
        for target in sorted(graph[module]):
            other = _unit_of(target)
            if other is None or other == unit or rank[other] < rank[unit]:
                continue
            layer, other_layer = LAYERS[rank[unit]][0], LAYERS[rank[other]][0]
            where = "a peer" if rank[other] == rank[unit] else "a higher layer"
            problems.append(
                f"{module} (layer {layer!r}) imports {target} ({where}: {other_layer!r})"
            )
    return problems


def test_there_is_no_import_cycle_in_datumio() -> None:
    cycles = find_cycles(import_graph())
    chains = "\n".join(" -> ".join(chain) for chain in cycles)
    assert not cycles, f"import cycles in datumio/:\n{chains}"


def test_layers_point_one_way() -> None:
    problems = layer_violations(import_graph())
    assert not problems, "layer order broken:\n" + "\n".join(problems)


def test_only_the_listed_modules_sit_directly_under_datumio() -> None:
    loose = {f"datumio.{path.stem}" for path in PACKAGE_DIR.glob("*.py") if path.stem != "__init__"}
    assert loose <= LOOSE_MODULES, (
        f"new modules directly under datumio/: {sorted(loose - LOOSE_MODULES)}; put them in "
        "the subpackage of their layer (or list them here and in LAYERS)"
    )


def test_augment_modules_import_only_from_lower_floors() -> None:
    graph = import_graph()
    floor = {name: i for i, names in enumerate(AUGMENT_FLOORS) for name in names}
    prefix = "datumio.augment."
    problems = []
    for module, targets in sorted(graph.items()):
        if module != "datumio.augment" and not module.startswith(prefix):
            continue
        name = module.removeprefix(prefix) if module.startswith(prefix) else "__init__"
        if name not in floor:
            problems.append(f"{module} is on no floor: add it to AUGMENT_FLOORS")
            continue
        for target in sorted(t for t in targets if t.startswith(prefix)):
            other = target.removeprefix(prefix)
            if other in floor and floor[other] >= floor[name]:
                problems.append(
                    f"{module} (floor {floor[name]}) imports {target} (floor {floor[other]})"
                )
    assert not problems, "augment floors broken:\n" + "\n".join(problems)


def test_import_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.sub import thing\n",
        "pkg/sub/__init__.py": "from . import leaf\n",
        "pkg/sub/leaf.py": "import os\nfrom ..base import Name\n",
        "pkg/sub/lazy.py": "def f():\n    from pkg import sub\n",
        "pkg/sub/typed.py": "if TYPE_CHECKING:\n    import pkg.sub.leaf\n",
        "pkg/base.py": "from numpy import ndarray\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert import_graph(tmp_path / "pkg", frozenset()) == {
        "pkg": {"pkg.sub"},  # a name in a package: the package
        "pkg.base": set(),
        "pkg.sub": {"pkg.sub.leaf"},  # a submodule by relative import
        "pkg.sub.leaf": {"pkg.base"},
        "pkg.sub.lazy": {"pkg.sub"},  # inside a function
        "pkg.sub.typed": {"pkg.sub.leaf"},  # under TYPE_CHECKING
    }


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, ["a", "b", "a"]),
    ],
)
def test_find_cycles_reports_the_chain(graph: Graph, cycle: list[str]) -> None:
    assert find_cycles(graph) == [cycle]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
