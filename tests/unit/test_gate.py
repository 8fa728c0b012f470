"""Gate rules: thresholds, identity of the measured artifact, reports."""

from __future__ import annotations

from edgeproof.config import GateParams
from edgeproof.gate import check_gate, render_markdown

SHA = "a" * 64


def _bench(fps=30.0, p95=40.0, sha=SHA):
    return {
        "fps_e2e": fps,
        "latency_ms": {"p95": p95},
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
    assert names == ["fps", "map50", "latency_p95", "cross_check", "same_model_evaluated", "same_model_benchmarked"]
    assert report["model_sha256"] == SHA


def test_threshold_boundaries():
    params = GateParams(min_fps=10, min_map50=0.8, max_latency_p95_ms=100)
    assert check_gate(params, _eval(map50=0.8), _bench(fps=10.0, p95=100.0), SHA)["passed"]
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


def test_missing_measurement_fails_rather_than_passes():
    report = check_gate(GateParams(), {"model_sha256": SHA}, _bench(), SHA)
    assert "map50" in report["failed"] and "cross_check" in report["failed"]


def test_markdown_table_names_failures():
    report = check_gate(GateParams(min_fps=100), _eval(), _bench(fps=30.0), SHA)
    md = render_markdown(report)
    assert "FAILED" in md
    assert "| fps | `fps_e2e` (metrics/bench.json) | >= 100 | 30 | **FAIL** |" in md
    assert "Failing rules: fps" in md
    assert "PASSED" in render_markdown(check_gate(GateParams(), _eval(), _bench(), SHA))


def test_non_numeric_or_malformed_measurements_fail_clearly():
    import pytest

    report = check_gate(GateParams(), _eval(map50="0.9"), _bench(fps=float("nan")), SHA)
    assert set(report["failed"]) == {"fps", "map50"}
    assert check_gate(GateParams(), _eval(map50=True), _bench(), SHA)["failed"] == ["map50"]
    with pytest.raises(ValueError, match=r"eval\.json: expected a JSON object"):
        check_gate(GateParams(), [1, 2], _bench(), SHA, sources=("m/eval.json", "m/bench.json"))
    report = check_gate(GateParams(), _eval(), _bench(), SHA, sources=("a/e.json", "b/b.json"))
    assert {r["source"] for r in report["rules"]} == {"a/e.json", "b/b.json"}
