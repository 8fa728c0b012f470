"""Gate rules: thresholds, identity of the measured artifact, reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.gate import check_gate, render_markdown
from edgeproof.profiles import DeviceGate as GateParams
from edgeproof.verdict.rules import is_number
from tests.unit import gate_inputs as gi

SHA = "a" * 64
REPO = Path(__file__).resolve().parents[2]


def _bench(fps=30.0, p95=40.0, sha=SHA):
    """A bench.json whose ``fps_e2e`` and ``latency_ms`` are its ``e2e`` run's, as the benchmark writes them."""
    e2e = {"fps": fps, "p95": p95, "samples": 100}  # frames timed: enough for a p95 (gate.min_timed_frames)
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
    per_class = gi.one_class_rows(map50, map50_95)  # as every evaluation writes them
    return {
        "map50": map50,
        "map50_95": map50_95,
        "per_class": per_class,
        **gi.evaluated_over(per_class),
        "model_sha256": sha,
        "cross_check": cross_check,
    }


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
    # no e2e run to cross-check either, nor a count of the frames the p95 rests on
    assert report["failed"] == ["fps", "latency_p95", "results_consistent"]


def test_markdown_table_names_failures():
    report = check_gate(GateParams(min_fps=100), _eval(), _bench(fps=30.0), SHA)
    md = render_markdown(report)
    assert "FAILED" in md
    assert "| fps | `fps_e2e` (metrics/bench.json), over 100 timed frames | > 100 | 30 | **FAIL** |" in md
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


# --- holes the property tests (tests/unit/test_gate_properties.py) found, as plain examples ---------------


def _released(bench: dict | None = None, evaluation: dict | None = None) -> dict:
    """:func:`check_gate` over the released variant's files of :mod:`tests.unit.gate_inputs`, one of them edited."""
    bench = bench if bench is not None else gi.bench_doc(gi.RELEASED, 198.393)
    evaluation = evaluation if evaluation is not None else gi.eval_doc(gi.RELEASED)
    return check_gate(GateParams(min_map50_95=0.5), evaluation, bench, gi.sha_of(gi.RELEASED))


def _edited(doc: dict, dotted: str, value) -> dict:
    gi.damage(doc, dotted, value)
    return doc


def _bench_of_record() -> dict:
    return gi.bench_doc(gi.RELEASED, 198.393)


def _rule(report: dict, name: str) -> dict:
    return next(r for r in report["rules"] if r["name"] == name)


def test_the_released_variants_files_pass():
    """The control of the examples below."""
    assert _released()["verdict"] == "pass"


@pytest.mark.parametrize(
    ("dotted", "value", "why"),
    [
        ("e2e.fps", gi.DELETE, "has no e2e.fps (fps_e2e's run)"),
        ("e2e", {}, "has no e2e.fps (fps_e2e's run), e2e.p50 (latency_ms.p50's run), e2e.p90"),
        ("e2e.mean", None, "has no e2e.mean (e2e.fps is 1000 / it), e2e.mean (latency_ms.mean's run)"),
        ("e2e.p95", gi.DELETE, "has no e2e.p95 (latency_ms.p95's run)"),
    ],
)
def test_a_run_figure_missing_beside_its_copy_leaves_results_consistent_inconclusive(dotted, value, why):
    """fps_e2e and latency_ms copy the e2e run's figures; without the run's, the copies passed unchecked."""
    report = _released(bench=_edited(_bench_of_record(), dotted, value))
    rule = _rule(report, "results_consistent")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert rule["reason"].startswith(f"metrics/bench.json {why}")


@pytest.mark.parametrize(("dotted", "value"), [("e2e.fps", "198.393"), ("e2e.fps", -1.0), ("e2e.mean", [5.04])])
def test_a_run_figure_that_is_no_figure_beside_its_copy_is_invalid(dotted, value):
    report = _released(bench=_edited(_bench_of_record(), dotted, value))
    rule = _rule(report, "results_consistent")
    assert report["verdict"] == "fail" and rule["status"] == "invalid"
    assert f"metrics/bench.json {dotted} {value!r} is not a" in rule["reason"]


def _eval_of_record() -> dict:
    return gi.eval_doc(gi.RELEASED)


@pytest.mark.parametrize("value", ["0.96", None, True, 1.5, [0.96]])
def test_a_per_class_ap_equal_to_the_mean_cannot_be_dropped_from_the_check(value):
    """Row 1's ap50 is the mean of the three (0.96): a row whose AP was no number left the mean check, and the
    other two still averaged 0.96, so the edit passed. Present and no AP: invalid; missing from a class with
    ground-truth boxes (pycocotools gives each one an AP): inconclusive."""
    report = _released(evaluation=_edited(_eval_of_record(), "per_class.1.ap50", value))
    rule = _rule(report, "results_consistent")
    if value is None:
        assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
        assert rule["reason"] == "metrics/eval.json has no per_class[1].ap50 (a class with boxes)"
    else:
        assert report["verdict"] == "fail" and rule["status"] == "invalid"
        assert f"metrics/eval.json per_class[1].ap50 {value!r} is not an AP (a number in [0, 1])" in rule["reason"]


@pytest.mark.parametrize("value", [gi.DELETE, None])
def test_an_evaluation_without_per_class_rows_leaves_results_consistent_inconclusive(value):
    """Every evaluation writes per_class (the device's eval.json has no mAP at all): one without it had its mAP
    figures checked against nothing, and results_consistent passed."""
    report = _released(evaluation=_edited(_eval_of_record(), "per_class", value))
    rule = _rule(report, "results_consistent")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert rule["reason"] == (
        "metrics/eval.json has no per_class: map50, map50_95, map75 not checked against the class rows they are"
        " the mean of"
    )


@pytest.mark.parametrize(
    ("rows", "unchecked"),
    [
        ([], "per_class[].ap50, per_class[].ap, per_class[].ap75 to check map50, map50_95, map75"),
        ([{"name": "circle", "ap": 0.78}], "per_class[].ap50, per_class[].ap75 to check map50, map75"),
    ],
)
def test_per_class_rows_without_an_ap_for_a_reported_map_leave_it_unchecked(rows, unchecked):
    """Rows that give no AP for a mAP figure (no rows at all, or rows without n_gt that lack the AP) checked it
    against nothing, and results_consistent passed."""
    evaluation = _eval_of_record()
    evaluation.update(per_class=rows, map50_95=0.78)
    rule = _rule(_released(evaluation=evaluation), "results_consistent")
    assert rule["status"] == "inconclusive" and rule["reason"] == f"metrics/eval.json has no {unchecked} against"


@pytest.mark.parametrize("value", [{"0": {"ap50": 0.96}}, "circle 0.97", 0.96])
def test_per_class_that_is_not_a_list_of_rows_is_invalid(value):
    rule = _rule(_released(evaluation=_edited(_eval_of_record(), "per_class", value)), "results_consistent")
    assert rule["status"] == "invalid"
    assert rule["reason"] == f"metrics/eval.json per_class {str(value)[:80]} is not a list of class rows"


def test_a_class_without_boxes_has_no_ap_and_leaves_the_accuracy_rules_inconclusive():
    """pycocotools gives no AP where a class has no ground truth: the row is consistent (results_consistent
    passes), but the model ships detecting a class nothing measured, so the mAP rules are not a pass (verify11
    #3: 0 val boxes of a class passed where 9 were inconclusive)."""
    evaluation = _eval_of_record()
    no_boxes = {"category_id": 4, "name": "star", "ap": None, "ap50": None, "ap75": None, "n_gt": 0}
    evaluation["per_class"].append(no_boxes)
    report = _released(evaluation=evaluation)
    assert report["verdict"] == "inconclusive" and _rule(report, "results_consistent")["status"] == "pass"
    assert "1 class(es) without a val box: their accuracy is not measured" in _rule(report, "map50")["reason"]


@pytest.mark.parametrize("value", [gi.DELETE, None])
def test_ultralytics_scored_without_its_map50_leaves_cross_check_inconclusive(value):
    """ultralytics' detections were scored (cross_check.ultralytics) but their mAP50 was not there: the map50
    the build profile's rule judges was checked by nothing, and cross_check passed."""
    report = _released(evaluation=_edited(_eval_of_record(), "cross_check.ultralytics_map50", value))
    rule = _rule(report, "cross_check")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert rule["reason"].startswith("cross_check.ultralytics_map50 is missing, though ultralytics' detections")
    skipped = _eval_of_record()  # ultralytics not run, with a reason: nothing of it to miss
    skipped["cross_check"].update(ultralytics=None, ultralytics_map50=None, skipped={"ultralytics": "not installed"})
    assert _released(evaluation=skipped)["verdict"] == "pass"
