"""A measured figure beside its threshold in gate.md and the headline (edgeproof.verdict.boundary): rounding
never makes it read otherwise than it was judged (reviewer measure12, finding 2)."""

from __future__ import annotations

import pytest

from edgeproof.profiles import DeviceGate
from edgeproof.verdict.boundary import cells, rounded
from edgeproof.verdict.report import rule_table
from edgeproof.verdict.rules import failed_names
from edgeproof.verdict.thresholds import accuracy_rules, speed_rules

CLASSES = [("circle", 39), ("square", 44), ("triangle", 33)]


def _table(fps: float, p95: float, map50: float) -> list[str]:
    bench = {"fps_e2e": fps, "latency_ms": {"p95": p95}, "e2e": {"samples": 100}}
    scores = {"map50": map50, "n_images": 50, "n_gt": 116, "n_background_images": 4}
    scores["per_class"] = [{"name": n, "n_gt": k, "category_id": i} for i, (n, k) in enumerate(CLASSES, 1)]
    gate = DeviceGate()  # fps > 10, p95 <= 100, map50 >= 0.8
    rules = list(speed_rules(gate, bench, "bench.json")) + accuracy_rules(gate, scores, "eval.json")
    return rule_table({"rules": rules, "failed": failed_names(rules)})


def _row(lines: list[str], name: str) -> list[str]:
    return [c.strip() for c in next(line for line in lines if line.startswith(f"| {name} |")).split("|")[3:6]]


def test_a_figure_just_past_its_threshold_shows_the_digits_that_decide():
    lines = _table(10.001, 100.004, 0.79996)
    assert _row(lines, "fps") == ["> 10", "10.001", "pass"]  # not "10", which fails "> 10"
    assert _row(lines, "latency_p95") == ["<= 100", "100.004", "**FAIL**"]
    assert _row(lines, "map50") == [">= 0.8", "0.79996", "**FAIL**"]
    assert "- latency_p95 (fail): latency\\_ms.p95 100.004 is not &lt;= 100.0" in lines
    assert "- map50 (fail): map50 0.79996 is not >= 0.8" in lines


def test_a_figure_on_its_threshold_or_away_from_it_keeps_four_digits():
    on = _table(10.0, 100.0, 0.8)
    assert _row(on, "fps") == ["> 10", "10", "**FAIL**"] and "- fps (fail): fps\\_e2e 10.0 is not > 10.0" in on
    assert _row(on, "latency_p95") == ["<= 100", "100", "pass"] and _row(on, "map50") == [">= 0.8", "0.8", "pass"]
    away = _table(164.674123, 6.62171, 0.9646431)
    assert [_row(away, n)[1] for n in ("fps", "latency_p95", "map50")] == ["164.7", "6.622", "0.9646"]


@pytest.mark.parametrize(
    "measured, op, threshold, shown",
    [
        (12346.0, "<=", 12349, ("12346", "12349")),  # 4 digits: "1.235e+04", over 12349 though it passes
        (0.8000001, ">=", 0.8, ("0.8000001", "0.8")),
        ("fast", ">", 10, ("fast", "10")),  # an invalid figure: nothing to compare
        ("true", "==", True, ('"true"', "true")),  # an identity that reads alike: as the file spells it
        ("b" * 12 + "c" * 52, "==", "b" * 64, ('"{}"'.format("b" * 12 + "c" * 52), '"{}"'.format("b" * 64))),
        ("b" * 64, "==", "c" * 64, ("`bbbbbbbbbbbb…`", "`cccccccccccc…`")),  # differ in the cell: shortened
    ],
)
def test_cells_read_as_judged(measured, op, threshold, shown):
    assert cells(measured, op, threshold) == shown


def test_the_headline_rounding_keeps_the_side_of_the_threshold():
    assert rounded(10.04, 1, [(">", 10)]) == 10.04  # 10.0 beside gate_passed true would read as failing "> 10"
    assert rounded(100.004, 2, [("<=", 100.0)]) == 100.004
    assert rounded(0.7999996, 6, [(">=", 0.8)]) == 0.7999996
    assert rounded(10.0, 1, [(">", 10)]) == 10.0 and rounded(164.674, 1, [(">", 10)]) == 164.7
    assert rounded(10.04, 1) == 10.0  # no rule over it: the headline's digits


def test_an_inconclusive_verdict_line_does_not_say_nothing_was_judged():
    """docs12 review: gate.md opened "nothing was judged about the model" above a table of passed rules
    (fps, map50, latency_p95 pass; only cross_check inconclusive)."""
    from edgeproof.verdict.report import verdict_line

    line = verdict_line("inconclusive")
    assert "not every rule could be judged" in line and "nothing was judged" not in line
