"""The build gate's ``rescored`` rule: eval.json against the gate's own scoring of the gated file."""

from __future__ import annotations

import pytest

from edgeproof.gate_rescore import RESCORED_FIGURES, Rescored, rescore_rule

FOUND = {"map50": 0.964643, "map50_95": 0.771745, "n_images": 50, "n_gt": 116, "model_sha256": "ab" * 32}
SOURCE = "metrics/variants/int8/eval.json"


def _rule(eval_metrics, tolerance=0.0, elsewhere=None, figures=None):
    rescored = Rescored(dict(figures or FOUND), "models/optimized/int8.onnx on data/prepared val", tolerance, elsewhere)
    return rescore_rule(eval_metrics, SOURCE, rescored)


def test_the_same_figures_pass_and_say_what_was_scored():
    rule = _rule(dict(FOUND))
    assert rule["status"] == "pass" and rule["threshold"] == "equal"
    assert len(rule["metric"]) <= 80  # gate.md's cell shows 80 characters
    assert "models/optimized/int8.onnx on data/prepared val" in rule["reason"]


@pytest.mark.parametrize(
    ("key", "value", "scored"),
    [
        ("map50_95", 0.771746, None),  # one unit in the last written digit: the same machine gives the same bytes
        ("map50", 0.99, None),
        ("n_images", 51, None),
        ("n_gt", 115, None),
        ("model_sha256", "cd" * 32, None),
        ("map50", "0.964643", None),  # a string is no figure
        ("n_images", True, 1),  # True == 1, yet no count
    ],
)
def test_a_figure_that_differs_is_invalid_naming_file_key_and_both_values(key, value, scored):
    figures = FOUND if scored is None else {**FOUND, key: scored}
    rule = _rule({**FOUND, key: value}, figures=figures)
    assert rule["status"] == "invalid", rule
    assert f"{SOURCE} {key} " in rule["reason"] and "differs from the gate's own scoring" in rule["reason"]


def test_on_another_machine_the_map_is_held_within_the_tolerance_and_the_reason_says_so():
    why = "the files were measured on another machine or setup (bench.json device differs in cpu_model)"
    near = {**FOUND, "map50_95": FOUND["map50_95"] + 0.0009}
    rule = _rule(near, tolerance=0.001, elsewhere=why)
    assert rule["status"] == "pass" and rule["threshold"] == "within 0.001" and rule["reason"] == why
    far = {**FOUND, "map50_95": FOUND["map50_95"] + 0.0011}
    rule = _rule(far, tolerance=0.001, elsewhere=why)
    assert rule["status"] == "invalid" and why in rule["reason"]
    # the counts and the sha256 are exact wherever the file was scored
    assert _rule({**FOUND, "n_gt": 117}, tolerance=0.001, elsewhere=why)["status"] == "invalid"


@pytest.mark.parametrize("key", RESCORED_FIGURES)
def test_a_figure_eval_json_lacks_is_inconclusive_never_a_pass(key):
    rule = _rule({k: v for k, v in FOUND.items() if k != key})
    assert rule["status"] == "inconclusive" and f"has no {key}" in rule["reason"]
