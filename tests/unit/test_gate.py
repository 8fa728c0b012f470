"""Gate rules: thresholds, identity of the measured artifact, reports."""

from __future__ import annotations

from pathlib import Path

from edgeproof.gate import check_gate, render_markdown
from edgeproof.profiles import DeviceGate as GateParams
from edgeproof.verdict.rules import is_number

SHA = "a" * 64
REPO = Path(__file__).resolve().parents[2]


def _bench(fps=30.0, p95=40.0, sha=SHA):
    """A bench.json whose ``fps_e2e`` and ``latency_ms`` are its ``e2e`` run's, as the benchmark writes them."""
    e2e = {"fps": fps, "p95": p95}
    if is_number(fps) and fps > 0:
        e2e["mean"] = round(1000.0 / fps, 4)
    return {
        "fps_e2e": fps,
        "latency_ms": {"p95": p95},
        "e2e": e2e,
        "model_sha256": sha,
        "device": {"cpu_model": "Test CPU", "providers_used": ["CPUExecutionProvider"]},
    }


def _eval(map50=0.9, map50_95=0.6, sha=SHA):
    cross_check = {
        "pycocotools": map50_95,
        "independent": map50_95,
        "ultralytics": None,
        "tolerance": {"independent": 0.001, "ultralytics": 0.02},
        "skipped": {"ultralytics": "not installed"},
        "passed": True,
    }
    return {"map50": map50, "map50_95": map50_95, "model_sha256": sha, "cross_check": cross_check}


def test_all_rules_pass():
    report = check_gate(GateParams(), _eval(), _bench(), SHA)
    assert report["passed"] and report["failed"] == []
    names = [r["name"] for r in report["rules"]]
    assert names == [
        "fps",
        "map50",
        "latency_p95",
        "cross_check",
        "results_consistent",
        "same_model_evaluated",
        "same_model_benchmarked",
    ]
    assert report["model_sha256"] == SHA


def test_threshold_boundaries():
    params = GateParams(min_fps=10, min_map50=0.8, max_latency_p95_ms=100)
    # mAP and latency bounds are inclusive; FPS must exceed min_fps (the mission's "FPS > 10")
    assert check_gate(params, _eval(map50=0.8), _bench(fps=10.01, p95=100.0), SHA)["passed"]
    assert check_gate(params, _eval(map50=0.8), _bench(fps=10.0, p95=100.0), SHA)["failed"] == ["fps"]
    report = check_gate(params, _eval(map50=0.79), _bench(fps=9.99, p95=100.01), SHA)
    assert report["failed"] == ["fps", "map50", "latency_p95"]


def test_optional_map50_95_rule():
    assert "map50_95" not in [r["name"] for r in check_gate(GateParams(), _eval(), _bench(), SHA)["rules"]]
    report = check_gate(GateParams(min_map50_95=0.7), _eval(map50_95=0.6), _bench(), SHA)
    assert report["failed"] == ["map50_95"]


def test_a_different_artifact_fails_identity():
    other = "b" * 64
    report = check_gate(GateParams(), _eval(sha=other), _bench(), SHA)
    assert report["failed"] == ["same_model_evaluated"]
    report = check_gate(GateParams(), _eval(), _bench(sha=other), SHA)
    assert report["failed"] == ["same_model_benchmarked"]


def test_missing_measurement_never_passes():
    report = check_gate(GateParams(), {"model_sha256": SHA}, _bench(), SHA)
    assert "map50" in report["failed"] and "cross_check" in report["failed"] and not report["passed"]
    statuses = {r["name"]: r["status"] for r in report["rules"]}
    assert statuses["map50"] == "inconclusive" and statuses["cross_check"] == "invalid"
    report = check_gate(GateParams(), _eval(), {"model_sha256": SHA, "latency_ms": {"p95": 1.0}}, SHA)
    assert report["verdict"] == "inconclusive"  # missing: not judged, not passed
    assert report["failed"] == ["fps", "results_consistent"]  # no e2e run to cross-check either


def test_markdown_table_names_failures():
    report = check_gate(GateParams(min_fps=100), _eval(), _bench(fps=30.0), SHA)
    md = render_markdown(report)
    assert "FAILED" in md
    assert "| fps | `fps_e2e` (metrics/bench.json) | > 100 | 30 | **FAIL** |" in md
    assert "Rules not passed: fps" in md
    assert "PASSED" in render_markdown(check_gate(GateParams(), _eval(), _bench(), SHA))


def test_non_numeric_or_malformed_measurements_fail_clearly():
    report = check_gate(GateParams(), _eval(map50="0.9"), _bench(fps=float("nan")), SHA)
    assert set(report["failed"]) == {"fps", "map50"}
    assert check_gate(GateParams(), _eval(map50=True), _bench(), SHA)["failed"] == ["map50"]
    report = check_gate(GateParams(), [1, 2], _bench(), SHA, sources=("m/eval.json", "m/bench.json"))
    assert report["verdict"] == "fail" and "expected a JSON object of metrics, got list" in report["rules"][0]["reason"]
    assert report["rules"][0]["source"] == "m/eval.json"
    report = check_gate(GateParams(), _eval(), _bench(), SHA, sources=("a/e.json", "b/b.json"))
    assert {name for r in report["rules"] for name in r["source"].split(", ")} == {"a/e.json", "b/b.json"}


def test_the_thresholds_have_one_home_the_build_profile(tmp_path):
    """Issue 17.2: ``gate:`` and ``profiles.cpu-ci.gate`` held the same numbers; a change to one moved the
    build gate but not the release choice. Now there is one place, and both read it."""
    import pytest
    import yaml

    from edgeproof.config import ParamsError, load_params
    from edgeproof.gate import build_thresholds
    from edgeproof.release.choose import choose_measured
    from tests.unit.test_release_choice import _variants

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert "gate" not in raw
    raw["profiles"]["cpu-ci"]["gate"]["min_fps"] = 1.0e4
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "params.yaml")
    thresholds = build_thresholds(params.profiles, params.release.build_profile)
    assert thresholds.min_fps == 1.0e4  # the build gate judges at it ...
    chosen = choose_measured("cpu-ci", params.profiles["cpu-ci"], _variants())
    reasons = {r["variant"]: r["reason"] for r in chosen["rejected"]}
    assert reasons["fp32"] == reasons["int8"] == "fails the profile gate: fps"  # ... and so does the choice
    raw["gate"] = {"min_fps": 30.0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"gate: unknown key"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(ValueError, match=r"release.build_profile: 'nope' is not in profiles"):
        build_thresholds(params.profiles, "nope")
    assert build_thresholds({}, "cpu-ci") == GateParams()  # no profiles at all: the schema's defaults
