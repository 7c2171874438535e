"""The project's own import graph: no circle, and every import points down the layer order below.

This is the one place the order is written (the README's layout section points here). A package may
import its own modules and any package in a lower layer; never one of its layer-mates or a higher one.
Imports are read statically (pipeline/core/codebase.py), lazy ones inside functions included, those
under `if TYPE_CHECKING:` (annotations only) left out.
"""
import ast
from pathlib import Path

import pytest
from conftest import REPO

from pipeline.core import codebase

LAYERS = (
    ("core",),        # errors, atomic writes, the import graph, hardware: knows no params block and no method
    ("runtime",),     # progress bars, Ctrl-C, MLflow: how a stage runs, never what it writes
    ("config",),      # params.yaml -> typed config, one module per block
    ("settings",),    # named sets of params overrides (quick, standard, paper), checked against config
    ("artifacts",),   # where every artefact lives and its file formats (no networks)
    ("data",),        # dataset sources, download, preparation
    ("model",),       # networks and the pure mathematics on tensors
    ("methods",),     # the registry and one file per method
    ("eval",),        # features, probes, diagnostics
    ("pretrain",),    # the training loop
    ("report",),      # the results table and figures
    ("gate", "bench", "dag"),  # tools over everything below
    ("stages",),      # the DVC stage entry points
)
RANK = {package: i for i, layer in enumerate(LAYERS) for package in layer}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] == "stages" else parts[1]


def project_modules() -> dict[str, Path]:
    out = {}
    for root in codebase.PACKAGES:
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if module not in ("pipeline", "stages"):
                out[module] = path
    return out


def imports_of(module: str, path: Path) -> set[str]:
    """The project modules `module` imports directly: `from a import b` is a.b where that is a module, else a."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in codebase._runs(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{module}: relative import (the project imports absolutely)"
            names = [f"{node.module}.{a.name}" if codebase.module_file(f"{node.module}.{a.name}") else node.module
                     for a in node.names]
        else:
            continue
        out |= {n for n in names if codebase.module_file(n) is not None and n != module}
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {module: imports_of(module, path) for module, path in project_modules().items()}


def test_every_package_has_a_layer(graph):
    assert {package_of(m) for m in graph} == set(RANK)


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                return path[path.index(other):] + [other]
            if other not in state and (found := visit(other)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module)):
            return circle
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in graph.items():
        mine = package_of(module)
        for other in imported:
            theirs = package_of(other)
            if theirs != mine and RANK[theirs] >= RANK[mine]:
                wrong.append(f"{module} -> {other}")
    return wrong


def test_imports_point_down_the_layers(graph):
    wrong = upward_imports(graph)
    assert not wrong, f"imports from a lower layer up to a higher one (or across a layer): {wrong}"


def test_the_import_graph_has_no_circle(graph):
    circle = find_circle(graph)
    assert circle is None, f"import circle: {' -> '.join(circle)}"


def test_the_checks_see_a_circle_and_an_upward_import():
    """The checks above can fail: a package importing a higher one, and modules importing each other."""
    graph = {"pipeline.core.a": {"pipeline.report.b"}, "pipeline.report.b": {"pipeline.core.c"},
             "pipeline.core.c": {"pipeline.core.a"}}
    assert find_circle(graph) == ["pipeline.core.a", "pipeline.report.b", "pipeline.core.c", "pipeline.core.a"]
    assert upward_imports(graph) == ["pipeline.core.a -> pipeline.report.b"]
    assert find_circle({"pipeline.core.a": {"pipeline.core.c"}, "pipeline.core.c": set()}) is None
