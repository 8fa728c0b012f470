"""The project's own import graph, read statically with ``ast`` (nothing is imported or run).

Used by the dvc.yaml code-deps test and the structure tests (no circles, nothing upward). Every
import counts, including the lazy ones inside functions: a module a stage imports only on one path
still decides what that stage computes.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# where a top-level name of ours lives: edgeproof.* under src/, stages.* at the root
ROOTS = {"edgeproof": REPO / "src", "stages": REPO}


def module_file(name: str) -> Path | None:
    """The file of module ``name`` (``pkg/__init__.py`` for a package), or None if not ours."""
    root = ROOTS.get(name.split(".")[0])
    if root is None:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    """The dotted module name of one of our files."""
    path = path.resolve()
    for root in (REPO / "src", REPO):
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            break
    else:
        return path.stem  # not ours (a test's scratch file): only absolute imports resolve from it
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _named(node: ast.AST, here: str, is_package: bool) -> list[str]:
    """Module names one import statement can load (a ``from x import y`` may name submodule x.y)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = here.split(".") if is_package else here.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _encloses(target: Path, path: Path) -> bool:
    return target.name == "__init__.py" and path.resolve().is_relative_to(target.parent.resolve())


@cache
def direct_imports(path: Path) -> frozenset[Path]:
    """Our files that ``path`` imports directly, packages' ``__init__.py`` on the way included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    found: set[Path] = set()
    for node in ast.walk(tree):
        for name in _named(node, here, path.name == "__init__.py"):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                target = module_file(".".join(parts[:i]))
                # ...except the packages that hold ``path`` itself: Python has run those before it
                if target is not None and target != path and not _encloses(target, path):
                    found.add(target)
    return frozenset(found)


def transitive_imports(path: Path) -> set[Path]:
    """Every file of ours that importing ``path`` can load, ``path`` itself included."""
    seen = {path}
    todo = [path]
    while todo:
        for target in direct_imports(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def rel(path: Path) -> str:
    """``path`` relative to the repository, with forward slashes (as dvc.yaml writes it)."""
    return path.resolve().relative_to(REPO).as_posix()


def source_files() -> list[Path]:
    """Every Python file of the installed package."""
    return sorted((REPO / "src" / "edgeproof").rglob("*.py"))


def cycles(files: list[Path]) -> list[list[str]]:
    """Strongly connected groups of more than one file among ``files`` (import circles), by Tarjan."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    found: list[list[str]] = []
    members = set(files)

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in direct_imports(node) & members:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(rel(top))
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for file in files:
        if file not in index:
            visit(file)
    return found
