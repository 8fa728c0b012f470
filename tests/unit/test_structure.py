"""The package's structure, read statically: the installed package stands alone (no test tooling, no
checkout), and its imports form no circle."""

from __future__ import annotations

import ast

import pytest

from edgeproof.cli import main as cli_main
from tests.imports import REPO, cycles, source_files


def _imported_top_names(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_installed_package_imports_no_test_tooling():
    for path in source_files():
        leaked = _imported_top_names(path) & {"reliability", "tests", "stages"}
        assert not leaked, f"{path.relative_to(REPO)} imports {sorted(leaked)}: not part of the installed package"


def test_the_installed_package_does_not_locate_a_checkout():
    # the reliability tooling found its checkout as parents[3] of its own file; nothing installed may
    for path in source_files():
        assert "parents[3]" not in path.read_text(), path.relative_to(REPO)


def test_no_import_circle_in_the_package():
    assert cycles(source_files()) == []


def test_the_reliability_developer_command_needs_a_checkout(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["reliability", "--no-faults"]) == 2
    assert "run it inside an edgeproof checkout" in caplog.text


def test_the_variants_are_defined_once():
    from edgeproof.profiles import VARIANTS
    from edgeproof.release.params import ReleaseParams
    from edgeproof.training.params import OptimizeParams

    spelled = [p for p in source_files() if '"fp32", "fp16", "int8"' in p.read_text()]
    assert [p.relative_to(REPO).as_posix() for p in spelled] == ["src/edgeproof/profiles.py"]
    assert tuple(OptimizeParams().variants) == VARIANTS
    with pytest.raises(ValueError, match="int4"):
        OptimizeParams(variants=["int4"])
    with pytest.raises(ValueError, match="unmeasured_variant"):
        ReleaseParams(unmeasured_variant="int4")


# The device runner is what a board installs: Python 3.8, numpy, Pillow/OpenCV, PyYAML, onnxruntime. The
# verdict (gate, report: pycocotools) runs on the CI side; device/gate.py and device/report.py are on
# their way to edgeproof/verdict/ and are not part of the runner.
VERDICT_IN_DEVICE = {"gate.py", "report.py"}
RUNNER_MAY_IMPORT = ("device/", "runtime/", "profiles.py", "settings.py", "io.py", "__init__.py")
RUNNER_THIRD_PARTY = {"numpy", "PIL", "cv2", "yaml", "onnxruntime", "tensorrt"}  # tensorrt: JetPack's, optional


def runner_files() -> list:
    return sorted(p for p in (REPO / "src/edgeproof/device").glob("*.py") if p.name not in VERDICT_IN_DEVICE)


def test_the_device_runner_imports_nothing_of_the_ci_side():
    from tests.imports import rel, transitive_imports

    for path in runner_files():
        for found in sorted(transitive_imports(path)):
            name = rel(found).removeprefix("src/edgeproof/")
            assert name.startswith(RUNNER_MAY_IMPORT) and not (
                name.startswith("device/") and name.removeprefix("device/") in VERDICT_IN_DEVICE
            ), f"{rel(path)} imports {rel(found)}: the device runner must not reach the CI side"


def test_the_device_runner_needs_only_the_board_dependencies():
    import sys

    from tests.imports import transitive_imports

    stdlib = set(sys.stdlib_module_names)
    for path in sorted(set().union(*(transitive_imports(p) for p in runner_files()))):
        third_party = _imported_top_names(path) - stdlib - {"edgeproof", "__future__"}
        assert third_party <= RUNNER_THIRD_PARTY, f"{rel_path(path)} imports {sorted(third_party - RUNNER_THIRD_PARTY)}"


def test_no_runner_module_imports_the_verdict_package():
    # written against the target layout: edgeproof.verdict may not exist on every branch yet
    for path in runner_files():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.startswith(("edgeproof.verdict", "pycocotools", "edgeproof.evaluation"))]
            assert not bad, f"{rel_path(path)}:{node.lineno} imports {bad}"


def rel_path(path) -> str:
    return path.relative_to(REPO).as_posix()


def test_each_command_lives_in_the_module_of_its_job():
    import argparse

    from edgeproof.cli import build_parser

    jobs = {
        "edgeproof.cli.edge": {"detect", "evaluate", "benchmark", "device", "device-gate"},
        "edgeproof.cli.registry": {"track", "model"},
        "edgeproof.cli.dev": {"params", "exps", "perf", "reliability"},
    }
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    homes = {name: parser.get_default("func").__module__ for name, parser in sub.choices.items()}
    assert homes == {name: module for module, names in jobs.items() for name in names}


# The package's floors, lowest first: a module imports its own floor or lower ones, never a higher one
# (with no circles, see above). A new top-level module or package must be placed here.
LAYERS = [
    {"__init__", "io", "folders", "paths", "settings", "schema", "markdown", "params_file", "stage_clock"},  # plumbing
    {"runtime", "profiles", "data"},  # the device-side runtime, the profile schema, datasets
    {"evaluation", "device", "tracking", "exptable"},  # scoring, the board runner, MLflow, tables
    # the headline shows a board's figure only where the verdict's rules say it was measured; steps and judgements
    {
        "training",
        "benchmark",
        "gate",
        "gate_consistency",
        "gate_rescore",
        "val_identity",
        "bundle",
        "verdict",
        "detect",
        "detect_inputs",
        "headline",
    },
    {"release", "perf"},  # what combines them
    {"config", "cli", "__main__"},  # entry points: every section's schema, every command (python -m edgeproof)
]


def _unit(path) -> str:
    parts = path.relative_to(REPO / "src" / "edgeproof").with_suffix("").parts
    return parts[0]


def test_no_module_imports_a_higher_floor():
    from tests.imports import direct_imports

    floor = {unit: i for i, units in enumerate(LAYERS) for unit in units}
    for path in source_files():
        here = _unit(path)
        assert here in floor, f"{rel_path(path)}: place {here!r} on a floor in LAYERS"
        for target in direct_imports(path):
            there = _unit(target)
            assert floor.get(there, -1) <= floor[here], f"{rel_path(path)} imports {rel_path(target)} (a higher floor)"
