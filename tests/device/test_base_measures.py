"""The base branch's profile decides how a pull request's model is measured, not the PR's bundle.

The board reads its profile from the base checkout's params.yaml (``--rules-params``); the device gate
judges the machine, the throttling and the recorded measurement settings against the judging rules
itself, so results measured with other settings (an older board script, a manual run with the
bundle's profile) can never pass as the base's measurement.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgeproof.device.__main__ import main as device_main
from edgeproof.device.gated import Refused
from edgeproof.device.measure import run_measure
from edgeproof.device.profile_source import load_profile, read_rules_profiles
from edgeproof.params_file import read_params_yaml
from edgeproof.profiles import parse_profiles
from edgeproof.verdict.device import device_gate
from tests.device.conftest import REPO, base_params, rule_named


def _measure(bundle: Path, rules: Path | None = None) -> tuple[int, Path]:
    out = bundle.parent.parent / "reports" / "device" / "cpu-ci"
    return run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines", rules), out


def test_the_board_measures_with_the_bases_settings_not_the_bundles(bundle, tmp_path):
    bundled = json.loads((bundle / "profiles.json").read_text())["cpu-ci"]
    base = base_params(tmp_path, {"e2e_images": bundled["e2e_images"] + 1, "runs": bundled["runs"] + 2})
    code, out = _measure(bundle, base)
    assert code == 0
    settings = json.loads((out / "bench.json").read_text())["settings"]
    assert (settings["e2e_images"], settings["runs"]) == (bundled["e2e_images"] + 1, bundled["runs"] + 2)
    report = device_gate(bundle, "cpu-ci", out, rules_params=base)
    assert rule_named(report, "measured_as_judged")["status"] == "pass"


def test_the_bases_machine_match_refuses_a_board_the_bundle_would_take(bundle, tmp_path):
    code, out = _measure(bundle, base_params(tmp_path, {"match": {"arch": ["aarch64"]}}))
    status = json.loads((out / "measure.json").read_text())
    assert code == 4 and status["rule"] == "machine_match" and "aarch64" in status["reason"]


def test_results_measured_with_other_settings_are_not_judged_as_the_bases(bundle, tmp_path):
    code, out = _measure(bundle)  # the bundle's own profile, as an older board script did
    assert code == 0
    bundled = json.loads((bundle / "profiles.json").read_text())["cpu-ci"]["e2e_images"]
    report = device_gate(bundle, "cpu-ci", out, rules_params=base_params(tmp_path, {"e2e_images": 50}))
    rule = rule_named(report, "measured_as_judged")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert f"measured with e2e_images {bundled}; the rules say e2e_images 50" in rule["reason"]
    assert device_gate(bundle, "cpu-ci", out)["verdict"] == "pass"  # judged by the settings it was measured with


def test_machine_and_throttling_are_judged_with_the_bases_rules_from_the_recorded_readings(bundle, tmp_path):
    code, out = _measure(bundle)
    assert code == 0
    report = device_gate(bundle, "cpu-ci", out, rules_params=base_params(tmp_path, {"match": {"arch": ["aarch64"]}}))
    rule = rule_named(report, "machine_match")
    assert rule["status"] == "inconclusive" and "arch: expected ['aarch64']" in rule["reason"]
    assert report["verdict"] == "inconclusive"
    conditions = json.loads((out / "conditions.json").read_text())
    assert conditions["throttled"] is False  # the board, with the bundle's limit, saw nothing wrong
    conditions["during"]["max_temp_c"] = {"cpu-thermal": 61.5}  # a reading, as a board with thermal zones has
    (out / "conditions.json").write_text(json.dumps(conditions))
    assert device_gate(bundle, "cpu-ci", out)["verdict"] == "pass"  # within the bundle's limit
    report = device_gate(bundle, "cpu-ci", out, rules_params=base_params(tmp_path, {"max_temp_c": 60.0}))
    assert report["verdict"] == "inconclusive" and report["conditions"]["throttled"] is True
    assert "temperature cpu-thermal reached 61.5 C > max_temp_c 60" in report["conditions"]["reasons"]
    report = device_gate(bundle, "cpu-ci", out, rules_params=base_params(tmp_path, {"max_load_per_cpu": 1e-9}))
    assert report["verdict"] == "inconclusive" and any("machine busy" in r for r in report["conditions"]["reasons"])


def test_rules_params_are_read_strictly_and_name_the_file(tmp_path, bundle):
    base = base_params(tmp_path, {})
    twice = tmp_path / "twice.yaml"
    twice.write_text(base.read_text() + "profiles: {}\n")
    with pytest.raises(Refused, match=r"twice\.yaml: unreadable .*duplicate key 'profiles'"):
        read_rules_profiles(twice)
    with pytest.raises(Refused, match=r"base\.yaml: no profile 'nope'"):
        load_profile(bundle, "nope", base)
    broken = tmp_path / "broken.yaml"
    broken.write_text(base.read_text().replace("max_temp_c:", "max_temp_cc:", 1))
    with pytest.raises(Refused, match=r"broken\.yaml: profiles\.[\w-]+\.max_temp_cc: unknown key"):
        read_rules_profiles(broken)
    code, out = _measure(bundle, twice)
    status = json.loads((out / "measure.json").read_text())
    assert code == 2 and status["rule"] == "rules_params"
    report = device_gate(bundle, "cpu-ci", out, rules_params=base)
    assert report["verdict"] == "inconclusive"  # the base's rules were unusable: not the model's fault


def test_preflight_and_power_mode_use_the_bases_profile(bundle, tmp_path, capsys):
    base = base_params(tmp_path, {"match": {"arch": ["aarch64"]}})
    assert device_main(["preflight", "--bundle", str(bundle), "--profile", "cpu-ci", "--rules-params", str(base)]) == 1
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert next(c for c in checks if c["name"] == "machine_match")["ok"] is False
    missing = str(tmp_path / "absent.yaml")
    assert device_main(["preflight", "--bundle", str(bundle), "--profile", "cpu-ci", "--rules-params", missing]) == 1
    assert "absent.yaml: unreadable" in json.loads(capsys.readouterr().out)["checks"][0]["detail"]
    argv = ["power-mode", "--bundle", str(bundle), "--profile", "cpu-ci", "--rules-params", missing]
    assert device_main(argv) == 2


def test_the_repositorys_params_read_the_same_on_the_board_and_in_the_pipeline():
    """PyYAML on the board, ruamel.yaml (as DVC) in the pipeline: the same profiles from params.yaml."""
    as_dvc = parse_profiles(read_params_yaml(REPO / "params.yaml")["profiles"])
    assert read_rules_profiles(REPO / "params.yaml") == as_dvc


def test_rules_params_with_anchors_and_merge_keys_read_as_dvc_reads_them(tmp_path):
    """YAML a team writes (an anchor, a merge key) must not get every board run refused."""
    text = (REPO / "params.yaml").read_text()
    raw = yaml.safe_load(text)
    cpu = raw["profiles"]["cpu-ci"]
    raw["profiles"]["cpu-ci"] = {k: v for k, v in cpu.items() if k != "gate"}
    path = tmp_path / "anchors.yaml"
    body = yaml.safe_dump(raw).replace("profiles:\n", "gates:\n  cpu: &cpu_gate\n    placeholder: 1\nprofiles:\n", 1)
    gate = "\n".join(f"      {k}: {json.dumps(v)}" for k, v in cpu["gate"].items())
    body = body.replace("  cpu-ci:\n", "  cpu-ci:\n    gate:\n      <<: *cpu_gate\n" + gate + "\n", 1)
    path.write_text(body.replace("    placeholder: 1\n", "    min_fps: 1.0\n", 1))
    as_dvc = parse_profiles(read_params_yaml(path)["profiles"])
    assert read_rules_profiles(path) == as_dvc and as_dvc["cpu-ci"].gate.min_fps == cpu["gate"]["min_fps"]


def test_the_operating_point_is_the_bases_not_the_bundles(tmp_path):
    """deploy.json comes from the pull request's build: its deploy and mAP-scoring settings are a proposal."""
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.scoring import ScoringSettings
    from tests.device.conftest import make_bundle

    bundle = make_bundle(
        tmp_path, deploy=DeploySettings(conf=0.9, max_det=1), scoring=ScoringSettings(iou=1.0, max_det=10000)
    )
    base = base_params(tmp_path, {})
    code, out = _measure(bundle, base)
    assert code == 0
    report = device_gate(bundle, "cpu-ci", out, rules_params=base)
    rule = rule_named(report, "measured_as_judged")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert '"conf": 0.9' in rule["reason"] and '"conf": 0.25' in rule["reason"]  # both values shown
    assert 'deploy.json map {"conf": 0.001, "iou": 1.0, "max_det": 10000' in rule["reason"]
    assert '"iou": 0.7, "max_det": 300, "multi_label": true' in rule["reason"]
    assert device_gate(bundle, "cpu-ci", out)["verdict"] == "pass"  # without base rules: the bundle's own point
