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
