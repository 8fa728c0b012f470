"""params.yaml is written the way DVC writes it, so `dvc exp run -S key=value` is a one-line diff.

DVC applies `-S` with its own YAML round trip (dvc.utils.hydra.apply_overrides): flow lists,
flow mappings, explicit nulls and long lines written any other way are rewritten on the first
`-S`, which made one changed value ~100 changed lines (issue 21). The test calls DVC's own code.
"""

from __future__ import annotations

import difflib
import importlib.util
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("dvc")


def _style_module():
    spec = importlib.util.spec_from_file_location("params_style", ROOT / "ci" / "params_style.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_params_yaml_is_in_dvc_style():
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    styled = _style_module().dvc_style(text)
    assert styled == text, "params.yaml is not in DVC's style: run python ci/params_style.py params.yaml"
    assert _style_module().list_at_section_end(text) == []


@pytest.mark.parametrize(
    "override",
    [
        "train.epochs=5",  # a plain value
        "profiles.cpu-ci.gate.min_map50_95=0.5",  # a null that becomes a value
        "profiles.cpu-ci.gate.min_fps=12.5",  # deep in a profile
        "profiles.jetson-nano.power_mode=5W",
        "data.coco.images=data/sources/coco/train2017",
        "evaluate.cross_check.independent=false",
    ],
)
def test_one_set_param_is_one_changed_line(tmp_path, override):
    from dvc.utils.hydra import apply_overrides

    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    before = params.read_text(encoding="utf-8")
    apply_overrides(params, [override])
    changed = _changed_lines(before, params.read_text(encoding="utf-8"))
    assert len(changed) == 2, "\n".join(changed)  # one line out, one line in
    key, value = override.split("=")
    assert changed[1][1:].split("#")[0].strip() == f"{key.rsplit('.', 1)[1]}: {value}"


def test_restyling_keeps_every_value(tmp_path):
    """The rewrite is style only: PyYAML and ruamel read the same settings before and after."""
    module = _style_module()
    flow = "a:\n  xs: [1, 2]  # note\n  m: {k: null, s: '1.0'}\n\n  empty: []\nb: 3\n"
    styled = module.dvc_style(flow)
    assert styled != flow
    assert yaml.safe_load(styled) == yaml.safe_load(flow)
    assert module.dvc_style(styled) == styled
    (tmp_path / "p.yaml").write_text(flow, encoding="utf-8")
    assert module.main(["--check", str(tmp_path / "p.yaml")]) == 1
    assert module.main([str(tmp_path / "p.yaml")]) == 0
    assert (tmp_path / "p.yaml").read_text(encoding="utf-8") == styled
    ends_in_list = module.dvc_style("a:\n  x: 1\n  xs: [1]  # note\n\nb: 2\n")
    assert module.list_at_section_end(ends_in_list) == ["xs"]
