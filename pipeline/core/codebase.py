"""Which of this repository's source files a module runs: its import graph, read from the source.

The same answer serves two checks that must never drift apart: a test that every stage's dvc.yaml
deps cover the files its command imports, and the code fingerprint that keeps a resumed checkpoint
or a half-converted dataset from mixing in state that other code made.

Imports are found statically (every `import` and `from ... import` anywhere in a file, including
the lazy ones inside functions, but not those under `if TYPE_CHECKING:`), so nothing is executed.
Left out: `pipeline.runtime`, which decides how a stage runs (progress bars, Ctrl-C, MLflow), never
what it writes, and files that hold only a docstring.
"""
from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "stages")
# Modules that cannot change a stage's output; neither deps nor fingerprints include them.
OUTPUT_NEUTRAL = ("pipeline.runtime",)


def module_file(module: str, repo: Path = REPO) -> Path | None:
    """The source file of a dotted module in this repository, or None (a third-party or missing module)."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = repo.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _runs(node: ast.AST) -> list[ast.AST]:
    """Every node of `node` except the bodies of `if TYPE_CHECKING:` (imports for type checkers only)."""
    out = []
    todo = [node]
    while todo:
        current = todo.pop()
        out.append(current)
        if isinstance(current, ast.If) and "TYPE_CHECKING" in ast.unparse(current.test):
            todo += current.orelse
            continue
        todo += list(ast.iter_child_nodes(current))
    return out


def _only_docstring(path: Path) -> bool:
    """A file that holds nothing but a docstring (a package marker) runs no code that could change an output."""
    body = ast.parse(path.read_text(), filename=str(path)).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


@lru_cache(maxsize=None)
def _direct_imports(path: Path, module: str) -> tuple[str, ...]:
    """Dotted names this file imports; `from a import b` yields both a and a.b (b may be a submodule)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if _is_package(path) else module.rpartition(".")[0]
    found = []
    for node in _runs(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb from this module's package
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return tuple(found)


def imported_modules(entries: list[str], repo: Path = REPO) -> dict[str, Path]:
    """{module: file} for the entry modules and everything of this repository they import, transitively.

    Importing a.b.c also runs a/__init__.py and a/b/__init__.py, so parent packages are included.
    """
    seen: dict[str, Path] = {}
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module in seen or _neutral(module):
            continue
        path = module_file(module, repo)
        if path is None:
            continue
        seen[module] = path
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += list(_direct_imports(path, module))
    return seen


def _neutral(module: str) -> bool:
    return any(module == n or module.startswith(n + ".") for n in OUTPUT_NEUTRAL)


def code_files(entries: list[str], repo: Path = REPO) -> list[Path]:
    """The repository files `entries` run, sorted, as paths relative to the repository; files that hold
    only a docstring (package markers) are left out."""
    return sorted(p.relative_to(repo) for p in imported_modules(entries, repo).values() if not _only_docstring(p))


def code_fingerprint(entries: list[str], repo: Path = REPO) -> str:
    """A hash of the source of every file `entries` run: changes with any of them, and only with them."""
    digest = hashlib.sha256()
    for rel in code_files(entries, repo):
        digest.update(str(rel).encode() + b"\0")
        digest.update((repo / rel).read_bytes())
    return digest.hexdigest()[:12]
