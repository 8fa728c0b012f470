"""Defect 6: the gate refuses impossible measurements and an evaluation whose cross-check disagrees.

``map50: 7.0`` or ``p95: -3`` passed the thresholds, ``Infinity`` passed and then crashed the report,
and an ``eval.json`` left by a failed cross-check was accepted.
"""

from __future__ import annotations

import json
import math

import pytest

from edgeproof.gate import check_gate, cross_check_problems, render_markdown
from edgeproof.io import write_json
from edgeproof.profiles import DeviceGate as GateParams
from tests.unit.test_gate import SHA, _bench, _eval


@pytest.mark.parametrize(
    "eval_kw, bench_kw, rule",
    [
        ({"map50": 7.0}, {}, "map50"),
        ({"map50": -0.1}, {}, "map50"),
        ({"map50": math.inf}, {}, "map50"),
        ({}, {"p95": -3.0}, "latency_p95"),
        ({}, {"p95": 0.0}, "latency_p95"),
        ({}, {"p95": -math.inf}, "latency_p95"),
        ({}, {"p95": math.nan}, "latency_p95"),
        ({}, {"fps": math.inf}, "fps"),
        ({}, {"fps": 1e400}, "fps"),  # JSON's 1e400 parses to inf
    ],
)
def test_impossible_values_fail_their_rule(eval_kw, bench_kw, rule, tmp_path):
    report = check_gate(GateParams(), _eval(**eval_kw), _bench(**bench_kw), SHA)
    assert not report["passed"] and rule in report["failed"]
    failing = next(r for r in report["rules"] if r["name"] == rule)
    assert failing["status"] == "invalid" and failing["reason"]
    write_json(tmp_path / "gate.json", report)  # strict JSON: the report can always be written
    assert "**INVALID**" in render_markdown(report)


def test_infinity_read_from_json_is_reported_not_crashed(tmp_path):
    bench = json.loads(
        '{"fps_e2e": Infinity, "latency_ms": {"p95": 5.0}, "e2e": {"fps": Infinity, "p95": 5.0, "samples": 100}, '
        '"model_sha256": "' + SHA + '"}'
    )
    report = check_gate(GateParams(), _eval(), bench, SHA)
    assert report["failed"] == ["fps"]
    assert json.loads((write_json(tmp_path / "g.json", report)).read_text())["rules"][0]["measured"] == "inf"


def test_map50_95_rule_checks_the_range_too():
    report = check_gate(GateParams(min_map50_95=0.5), _eval(map50_95=1.5), _bench(), SHA)
    assert "map50_95" in report["failed"]


def _with_cross_check(**changes):
    ev = _eval(map50_95=0.6)
    ev["cross_check"].update(changes)
    return ev


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"passed": False}, "did not pass"),
        ({"independent": 0.65}, "independent 0.6500 vs pycocotools 0.6000"),
        ({"independent": 0.65, "passed": True, "difference": {"independent": 0.0}}, "differs by more than"),
        ({"pycocotools": 0.7}, "is not the reported map50_95"),
        ({"ultralytics": None, "skipped": {}}, "ultralytics is missing and not skipped"),
        ({"independent": math.nan}, "cross_check.independent nan is not a number"),
        ({"independent": 0.65, "tolerance": {"independent": math.inf}}, "differs by more than 0.001 (params)"),
        ({"independent": 0.6011, "tolerance": {"independent": 0.5}}, "differs by more than 0.001 (params)"),
    ],
)
def test_a_disagreeing_or_forged_cross_check_fails_the_gate(changes, message):
    ev = _with_cross_check(**changes)
    report = check_gate(GateParams(), ev, _bench(), SHA)
    assert report["failed"] == ["cross_check"]
    assert any(message in p for p in cross_check_problems(ev)), cross_check_problems(ev)


def test_no_cross_check_at_all_fails():
    ev = _eval()
    del ev["cross_check"]
    assert check_gate(GateParams(), ev, _bench(), SHA)["failed"] == ["cross_check"]


def test_an_agreeing_cross_check_passes_with_ultralytics_within_its_tolerance():
    """The tolerance is params' (evaluate.cross_check), not the one the measured file wrote (0.02 here)."""
    from edgeproof.evaluation.params import CrossCheckParams

    ev = _with_cross_check(ultralytics=0.615, ultralytics_map50=0.9, skipped={})  # both, as the evaluation writes
    report = check_gate(GateParams(), ev, _bench(), SHA, cross_check=CrossCheckParams(ultralytics_tolerance=0.02))
    assert report["passed"], report
    rule = next(r for r in report["rules"] if r["name"] == "cross_check")
    assert rule["measured"] == "agrees (independent, ultralytics)"
    assert check_gate(GateParams(), ev, _bench(), SHA)["failed"] == ["cross_check"]  # params' 0.001


def test_no_second_scorer_is_inconclusive_unless_params_turn_both_off():
    """Both scorers skipped used to pass as "agrees (no second scorer ran)": the mAP was checked by nothing."""
    from edgeproof.evaluation.params import CrossCheckParams

    ev = _with_cross_check(independent=None, skipped={"independent": "not installed", "ultralytics": "not installed"})
    report = check_gate(GateParams(), ev, _bench(), SHA)
    rule = next(r for r in report["rules"] if r["name"] == "cross_check")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive", report
    assert rule["reason"].startswith("no second scorer ran (independent: not installed; ultralytics: not installed)")
    off = CrossCheckParams(independent=False, ultralytics=False)
    assert check_gate(GateParams(), ev, _bench(), SHA, cross_check=off)["passed"]
