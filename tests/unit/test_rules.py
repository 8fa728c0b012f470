"""The one rule engine (edgeproof.verdict.rules): statuses, bounds, and the verdict over them."""

from __future__ import annotations

import json
import math

import pytest

from edgeproof.verdict.rules import compare, json_safe, verdict


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
    assert (rule["reason"] is None) is (status in ("pass", "fail"))
    json.dumps(rule, allow_nan=False)  # always writable as strict JSON


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
