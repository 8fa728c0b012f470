"""dvc.yaml's code deps cannot go stale: every module a stage can import is a dep of that stage.

A module missing from a stage's deps means `dvc repro` calls the stage up to date after that module
changed, and the verdict comes from old code. The deps are derived here from the stage's own source
(static imports, lazy ones included, followed transitively through `src/edgeproof` and `stages/`).

The one exception is the shared plumbing (PLUMBING below, named in dvc.yaml's header): the params
loader, atomic file writing, the stage runner. It is deliberately not a dep of every stage (after
changing it, `dvc repro -f` reruns everything), and imports are not followed through it: config.py
imports every section's schema to validate params.yaml, which runs none of their code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.imports import REPO, direct_imports, rel

DVC_YAML = REPO / "dvc.yaml"
STAGES = yaml.safe_load(DVC_YAML.read_text())["stages"]
PLUMBING = frozenset(
    {
        "src/edgeproof/config.py",  # params.yaml -> validated sections
        "src/edgeproof/params_file.py",  # reading a params file as DVC reads it
        "src/edgeproof/schema.py",  # the pydantic base of every section
        "src/edgeproof/settings.py",  # the same for the pydantic-free (device) sections
        "src/edgeproof/io.py",  # atomic writes, JSON reading, hashing
        "src/edgeproof/folders.py",  # atomic folder writes (the folder side of io.py)
        "src/edgeproof/paths.py",  # where local state lives (checkpoints, outbox)
        "src/edgeproof/stage_clock.py",  # each stage's note of its time (for the MLflow run's time_s.*)
        "stages/_common.py",  # argument parsing, logging, exit codes
        "stages/__init__.py",  # puts the checkout's src/ first on sys.path
    }
)


def _declared(stage: dict) -> list[str]:
    return [next(iter(d)) if isinstance(d, dict) else d for d in stage.get("deps", [])]


def _is_bare_init(path: Path) -> bool:
    """An ``__init__.py`` that only holds a docstring, ``from __future__`` and dunder constants."""
    if path.name != "__init__.py":
        return False
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id.startswith("__") for t in node.targets
        ):
            continue
        return False
    return True


def stage_modules(name: str) -> set[str]:
    """The files a stage can run (besides the plumbing), as dvc.yaml paths."""
    start = REPO / "stages" / f"{name}.py"
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        if rel(here) in PLUMBING:
            continue  # not followed: see the module docstring
        for target in direct_imports(here):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return {rel(p) for p in seen if rel(p) not in PLUMBING and not _is_bare_init(p)}


def _covers(dep: str, module: str) -> bool:
    dep = dep.rstrip("/")
    return module == dep or module.startswith(dep + "/")


def missing_deps(name: str, deps: list[str]) -> list[str]:
    """Modules stage ``name`` can import that none of ``deps`` covers (a file, or a folder above it)."""
    return sorted(m for m in stage_modules(name) if not any(_covers(d, m) for d in deps))


def unused_code_deps(name: str, deps: list[str]) -> list[str]:
    """Code deps of stage ``name`` that cover nothing it imports: reruns for nothing."""
    needed = stage_modules(name)
    code = [d for d in deps if d.startswith(("src/", "stages/"))]
    return sorted(d for d in code if not any(_covers(d, m) for m in needed))


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_module_a_stage_imports_is_a_dep(name):
    missing = missing_deps(name, _declared(STAGES[name]))
    assert not missing, f"dvc.yaml stage {name!r} misses code deps (add them under its deps): {missing}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_no_code_dep_is_unused(name):
    unused = unused_code_deps(name, _declared(STAGES[name]))
    assert not unused, f"dvc.yaml stage {name!r} depends on code it never imports (remove them): {unused}"


def test_the_check_fails_on_a_removed_dep():
    # drop the gate stage's own rule module from its real deps: the check names exactly that file
    deps = _declared(STAGES["gate"])
    victim = "src/edgeproof/gate.py"
    assert victim in deps
    assert victim in missing_deps("gate", [d for d in deps if d != victim])
    assert missing_deps("gate", sorted(stage_modules("gate"))) == []
    assert missing_deps("gate", sorted(stage_modules("gate") - {victim})) == [victim]
    # a folder dep covers what is below it, and only that
    loader = "src/edgeproof/runtime/image.py"  # the one image decoder, shared with the runtime
    assert missing_deps("data", ["stages/data.py", "src/edgeproof/data", loader]) == []
    assert missing_deps("data", ["stages/data.py", "src/edgeproof/data"]) == [loader]
    assert missing_deps("data", ["stages/data.py", "src/edgeproof/dat", loader]) != []


def test_lazy_imports_are_followed(tmp_path):
    # an import inside a function still decides what the stage computes
    from tests.imports import direct_imports as imports

    mod = tmp_path / "lazy.py"
    mod.write_text("def f():\n    from edgeproof.runtime import deploy\n    return deploy\n")
    assert REPO / "src/edgeproof/runtime/deploy.py" in imports(mod)


def test_the_plumbing_exception_is_explicit():
    header = DVC_YAML.read_text().split("stages:", 1)[0]
    for path in PLUMBING:
        assert (REPO / path).is_file(), f"{path} is listed as plumbing but does not exist"
        assert path in header, f"dvc.yaml's header must name the plumbing module {path}"


def test_plumbing_runs_no_stage_code():
    # Imports are not followed through the plumbing, so it may only lean on other plumbing; config.py
    # is the one exception, and it may only import sections' schemas (classes), never call them.
    for path in PLUMBING - {"src/edgeproof/config.py"}:
        theirs = {rel(p) for p in direct_imports(REPO / path) if not _is_bare_init(p)}
        assert theirs <= PLUMBING, f"plumbing module {path} imports stage code: {sorted(theirs - PLUMBING)}"
