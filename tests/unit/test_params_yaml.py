"""params.yaml reads exactly as DVC reads it (issue 18): YAML 1.2 scalars, duplicate keys refused."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgeproof.cli import main
from edgeproof.config import ParamsError, load_params, read_params_yaml

REPO = Path(__file__).resolve().parents[2]
# scalars that YAML 1.1 (PyYAML) and YAML 1.2 (DVC's ruamel) read differently, and some they agree on
TRICKY = ["010", "0o10", "0x1f", "1e-3", "1_000", "yes", "on", "off", "~", "null", ".inf", "2026-01-01", "1:30"]


def test_leading_zero_seed_is_ten_as_in_dvc(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  seed: 010\n")
    assert load_params(path).data.seed == 10  # PyYAML (YAML 1.1) said 8


def test_reads_like_dvc_itself(tmp_path):
    parse_yaml = pytest.importorskip("dvc.utils.serialize").parse_yaml
    path = tmp_path / "params.yaml"
    path.write_text("".join(f"k{i}: {v}\n" for i, v in enumerate(TRICKY)))
    assert read_params_yaml(path) == parse_yaml(path.read_text(), str(path))


def test_duplicate_key_is_refused_like_dvc(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 5\n  epochs: 50\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not valid YAML as DVC reads it (line 3, column 3:")
    assert 'duplicate key "epochs"' in message and "\n" not in message
    parse_yaml = pytest.importorskip("dvc.utils.serialize").parse_yaml
    with pytest.raises(Exception, match="corrupted"):
        parse_yaml(path.read_text(), str(path))


def test_duplicate_top_level_section_fails_edgeproof_params(tmp_path, caplog):
    path = tmp_path / "params.yaml"
    path.write_text("gate:\n  min_fps: 5\ngate:\n  min_fps: 500\n")
    assert main(["--params", str(path), "params"]) == 2
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    err = record.getMessage()
    assert err.startswith(f"{path}: not valid YAML as DVC reads it") and 'duplicate key "gate"' in err
    assert "\n" not in err


def test_the_project_params_file_reads_the_same_both_ways():
    parse_yaml = pytest.importorskip("dvc.utils.serialize").parse_yaml
    path = REPO / "params.yaml"
    assert read_params_yaml(path) == parse_yaml(path.read_text(), str(path))


def test_empty_file_is_all_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# nothing set\n")
    assert load_params(path).train.imgsz == 256


def test_device_side_never_reads_params_yaml():
    """The device side (Python 3.8, PyYAML) gets its settings from the bundle's JSON, never from
    params.yaml: it imports neither the build-side loader nor ruamel, and opens no file of that name."""
    offenders = []
    for folder in ("device", "runtime"):
        for path in sorted((REPO / "src/edgeproof" / folder).glob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                if any(n.startswith(("edgeproof.config", "ruamel")) for n in names):
                    offenders.append(f"{path.name}: imports {names}")
                if isinstance(node, ast.Constant) and node.value == "params.yaml":  # a path literal
                    offenders.append(f"{path.name}:{node.lineno}: 'params.yaml'")
    assert not offenders
