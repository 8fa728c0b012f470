"""The one rule engine (edgeproof.verdict.rules): statuses, bounds, and the verdict over them."""

from __future__ import annotations

import json
import math

import pytest

from edgeproof.verdict.rules import compare, get_figure, json_safe, verdict


@pytest.mark.parametrize(
    "measured, status",
    [
        (30.0, "pass"),
        (5.0, "fail"),
        (None, "inconclusive"),
        ("30", "invalid"),
        (True, "invalid"),
        (math.nan, "invalid"),
        (math.inf, "invalid"),
        (1e300, "invalid"),  # no board runs a detector 1e300 times a second
        (10**400, "invalid"),  # a JSON integer too big for a float: judged, not an OverflowError
        (-3.0, "invalid"),
        (0.0, "invalid"),
    ],
)
def test_fps_statuses(measured, status):
    rule = compare("fps", "fps_e2e", ">=", 10.0, measured, "bench.json")
    assert rule["status"] == status and rule["passed"] is (status == "pass")
    assert (rule["reason"] is None) is (status == "pass")  # a fail says why too (test_a_fail_states_...)
    json.dumps(rule, allow_nan=False)  # always writable as strict JSON


@pytest.mark.parametrize(
    "op, threshold, measured, reason",
    [
        # unrounded: gate.md's cells round 100.004 and 10.001 to the thresholds' "100" and "10"
        ("<=", 100, 100.004, "latency_ms.p95 100.004 is not <= 100"),
        (">", 10, 10.0, "latency_ms.p95 10.0 is not > 10"),
        (">=", 0.8, 0.79996, "latency_ms.p95 0.79996 is not >= 0.8"),
        ("==", True, "true", 'latency_ms.p95 "true" is not == true'),  # a cell shows both as "true"
        ("==", "a" * 64, "a" * 63 + "b", 'latency_ms.p95 "{}b" is not == "{}"'.format("a" * 63, "a" * 64)),
    ],
)
def test_a_fail_states_the_comparison_with_the_unrounded_values(op, threshold, measured, reason):
    rule = compare("latency_p95", "latency_ms.p95", op, threshold, measured, "bench.json")
    assert (rule["status"], rule["reason"]) == ("fail", reason)


def _latency(bench):
    return compare("latency_p95", "latency_ms.p95", "<=", 100.0, get_figure(bench, "latency_ms.p95"), "bench.json")


@pytest.mark.parametrize(
    "bench, reason",
    [
        ({"latency_ms": "12.5"}, 'latency_ms: "12.5" is a string, expected an object with "p95"'),
        ({"latency_ms": 12.5}, 'latency_ms: 12.5 is a number, expected an object with "p95"'),
        ({"latency_ms": {"p95": "12.5"}}, 'latency_ms.p95: "12.5" is a string, expected a number'),
        ({"latency_ms": {"p95": {"p95": "x"}}}, 'latency_ms.p95: {"p95": "x"} is an object, expected a number'),
        ({"latency_ms": {"p95": [1]}}, "latency_ms.p95: [1] is a list, expected a number"),
        ({"latency_ms": {"p95": False}}, "latency_ms.p95: false is a boolean, expected a number"),
        ({"latency_ms": {"p95": math.nan}}, "latency_ms.p95: NaN is not a finite number"),
        ({"latency_ms": {"p95": -math.inf}}, "latency_ms.p95: -Infinity is not a finite number"),
        ({"latency_ms": {"p95": -3.0}}, "latency_ms.p95: -3.0 is outside the possible range [0.01, 3.6e+06]"),
        ({"latency_ms": {"p95": "x" * 500}}, 'latency_ms.p95: "' + "x" * 56 + "... is a string, expected a number"),
    ],
)
def test_a_present_figure_of_the_wrong_type_is_invalid_naming_key_and_value(bench, reason):
    rule = _latency(bench)
    assert (rule["status"], rule["reason"], rule["passed"]) == ("invalid", reason, False)
    json.dumps(rule, allow_nan=False)


@pytest.mark.parametrize("bench", [{}, {"latency_ms": None}, {"latency_ms": {}}, {"latency_ms": {"p95": None}}, None])
def test_a_missing_figure_is_still_not_measured(bench):
    rule = _latency(bench)
    assert (rule["status"], rule["reason"], rule["measured"]) == ("inconclusive", "not measured", None)


def test_an_invalid_list_or_object_is_kept_short():
    """A forged figure can be huge; the rule keeps its first characters (it is shown in a PR comment)."""
    rule = compare("fps", "fps_e2e", ">=", 10.0, [1.0] * 100_000, "bench.json")
    assert rule["status"] == "invalid" and rule["measured"].startswith("[1.0, 1.0") and len(rule["measured"]) <= 60
    rule = compare(
        "latency_p95", "latency_ms.p95", "<=", 50.0, get_figure({"latency_ms": [2.0] * 9999}, "latency_ms.p95"), "b"
    )
    assert rule["status"] == "invalid" and len(rule["measured"]) <= 60
    assert compare("fps", "fps_e2e", ">=", 10.0, "fast", "b")["measured"] == "fast"  # a scalar stays as found


def test_identity_rules_need_the_same_value_and_type():
    assert compare("same", "sha", "==", "a" * 64, "a" * 64, "x")["status"] == "pass"
    assert compare("same", "sha", "==", "a" * 64, "b" * 64, "x")["status"] == "fail"
    assert compare("m", "matched", "==", True, 1, "x")["status"] == "fail"  # 1 is not True
    assert compare("same", "sha", "==", "a" * 64, None, "x")["status"] == "inconclusive"


def _r(name, status):
    return {"name": name, "status": status}


@pytest.mark.parametrize(
    "rules, throttled, expected",
    [
        ([_r("fps", "pass"), _r("map50", "pass")], False, "pass"),
        ([_r("fps", "fail")], False, "fail"),
        ([_r("fps", "fail")], True, "inconclusive"),  # a hot board says nothing about speed
        ([_r("map50", "fail")], True, "fail"),  # ... but accuracy and identity stand
        ([_r("fps", "invalid")], True, "fail"),  # a forged figure is a fail, hot board or not
        ([_r("energy", "inconclusive"), _r("fps", "pass")], False, "inconclusive"),
        ([_r("energy", "inconclusive"), _r("fps", "fail")], False, "fail"),
        ([], False, "inconclusive"),  # nothing judged is never a pass
    ],
)
def test_verdict(rules, throttled, expected):
    assert verdict(rules, throttled) == expected


def test_json_safe_at_any_depth():
    assert json_safe({"a": [math.inf, {"b": math.nan}], "c": 1.0}) == {"a": ["inf", {"b": "nan"}], "c": 1.0}


def test_the_board_side_imports_nothing_of_the_verdict_side():
    """Issue 19.4: device/ is what a board installs; the CI-side verdict package stays off it."""
    import ast
    from pathlib import Path

    device = Path(__file__).resolve().parents[2] / "src" / "edgeproof" / "device"
    for path in sorted(device.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.startswith("edgeproof.verdict")], f"{path.name} imports {names}"


@pytest.mark.parametrize("measured, status", [(10.0, "fail"), (10.000001, "pass"), (9.99, "fail")])
def test_the_fps_rule_is_strict_as_the_mission_says_fps_above_10(measured, status):
    from types import SimpleNamespace

    from edgeproof.verdict.thresholds import speed_rules

    gate = SimpleNamespace(min_fps=10.0, max_latency_p95_ms=100.0, min_timed_frames=20)
    bench = {"fps_e2e": measured, "latency_ms": {"p95": 50.0}, "e2e": {"samples": 100}}
    fps, _ = speed_rules(gate, bench, "bench.json")
    assert (fps["op"], fps["status"]) == (">", status)
    assert compare("fps", "fps_e2e", ">", 10.0, measured, "b")["passed"] is (status == "pass")
