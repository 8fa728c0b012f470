"""The build gate's ``release_choice`` rule: an edited ``reports/release.json`` choice ships nothing the release
stage turned down (launder12 #2: a variant over the mAP budget, or one whose parity failed, was gated as
chosen, passed and became champion). Eligibility has one home, ``release.choose``; the gate re-applies it
from ``metrics/parity.json`` and the fp32 reference ``metrics/eval.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgeproof.config import load_params
from edgeproof.gate_rescore import Rescored
from edgeproof.profiles import Profile
from edgeproof.release.choose import release_problem
from edgeproof.release.gating import GateRun, run_gate
from tests.unit import gate_inputs as gi

REPO = Path(__file__).resolve().parents[2]


def _profile(**kw):
    return Profile(**{"max_map_drop": 0.015, **kw})


@pytest.mark.parametrize(
    ("name", "record", "profile", "why"),
    [
        ("int8", {"parity_passed": True, "map_drop": 0.035}, {}, "exceeds the budget max_map_drop 0.015"),
        ("int8", {"parity_passed": False, "parity_reason": "lost boxes", "map_drop": 0.0}, {}, "breaks parity"),
        ("int8", {"parity_passed": None, "map_drop": 0.0}, {}, "parity not judged"),  # no parity record
        ("int8", {"parity_passed": True, "map_drop": 0.0}, {"variant": "fp32"}, "variant fixes fp32, not int8"),
        ("fp32", {"parity_passed": False, "map_drop": 0.0}, {"variant": "fp32"}, "breaks parity"),
    ],
)
def test_a_variant_the_release_choice_turns_down_is_named_with_why(name, record, profile, why):
    problem = release_problem(name, record, _profile(**profile), "cpu-ci")
    assert problem is not None and why in problem


def test_what_the_release_choice_releases_passes():
    ok = {"parity_passed": True, "map_drop": 0.015}  # at the budget
    assert release_problem("int8", ok, _profile(), "cpu-ci") is None
    # fp32 is what the release stage sends to the gate when no variant qualifies
    assert release_problem("fp32", {"parity_passed": None, "map_drop": None}, _profile(), "cpu-ci") is None
    assert release_problem("int8", ok, _profile(variant="int8"), "cpu-ci") is None


def _run(root: Path, edit, rescored: Rescored | None, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The gate over the passing input set with ``edit`` applied to its documents: gate.json."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["track"]["enabled"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    docs = gi.documents(root)
    edit(docs)
    gi.write_inputs(root, docs)
    monkeypatch.setattr("edgeproof.release.gating._rescored", lambda args, params: rescored)
    args = GateRun(
        params=root / "params.yaml",
        report_json=root / "gate.json",
        report_md=root / "gate.md",
        headline=root / "headline.json",
        train_metrics=root / "metrics/train.json",
        release=root / "reports/release.json",
        device_reports=root / "none",
        reference_eval=root / "metrics/eval.json",
        parity=root / "metrics/parity.json",
    )
    code = run_gate(args, load_params(root / "params.yaml"))
    report = json.loads((root / "gate.json").read_text())
    assert code == {"pass": 0, "fail": 1}[report["verdict"]]
    return report


def _choice(report: dict) -> dict:
    return next(r for r in report["rules"] if r["name"] == "release_choice")


def test_the_released_variant_passes_the_rule(tmp_path, monkeypatch):
    report = _run(tmp_path, lambda docs: None, None, monkeypatch)
    assert report["verdict"] == "pass" and _choice(report)["status"] == "pass" and _choice(report)["measured"] == 0.0


def _parity_broken(docs: dict) -> None:
    docs["metrics/parity.json"]["detections"]["variants"][gi.RELEASED] = {"measured": True, "passed": False}


def _over_budget(docs: dict) -> None:
    docs["metrics/eval.json"]["map50_95"] = gi.MAP50_95 + 0.035  # fp32's reference: int8 drops 0.035


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_parity_broken, "breaks parity"),
        (_over_budget, "mAP50-95 drop 0.035 exceeds the budget max_map_drop 0.015"),
        (lambda docs: docs["metrics/parity.json"]["detections"]["variants"].pop(gi.RELEASED), "parity not judged"),
    ],
)
def test_a_released_variant_the_release_stage_would_reject_fails_the_gate(tmp_path, monkeypatch, edit, why):
    """release.json names int8 as the choice, agreeing with itself (as an edited choice does); the primary files
    say it broke parity or is over the mAP budget: the verdict fails, naming why."""
    report = _run(tmp_path, edit, None, monkeypatch)
    rule = _choice(report)
    assert report["verdict"] == "fail" and rule["status"] == "fail" and why in rule["reason"], rule
    assert "release_choice" in report["failed"]


def test_the_drop_is_taken_to_the_gates_own_figure_where_it_is_lower(tmp_path, monkeypatch):
    """eval.json held "within" another machine's tolerance is not the figure the budget is judged on."""
    figures = {**gi.eval_doc(gi.RELEASED), "map50_95": round(gi.MAP50_95 - 0.016, 6)}
    rescored = Rescored(figures, "int8.onnx on val", 0.001, "another machine")
    rule = _choice(_run(tmp_path, lambda docs: None, rescored, monkeypatch))
    assert rule["status"] == "fail" and rule["measured"] == 0.016 and "exceeds the budget" in rule["reason"]


def test_the_stage_refuses_a_release_run_without_the_files_the_rule_reads():
    from stages import gate as gate_stage

    cmd = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["gate"]
    assert "--reference-eval metrics/eval.json --parity metrics/parity.json" in cmd["cmd"]
    assert {"metrics/eval.json", "metrics/parity.json"} <= set(cmd["deps"])
    argv = ["--release", "r.json", "--data", "d", "--report-json", "g", "--report-md", "m"]
    assert gate_stage.main([*argv, "--headline", "h", "--train-metrics", "t"]) == 2


def test_an_fp32_reference_edited_lower_buys_nothing_the_gate_scores_it_itself():
    """A lowered metrics/eval.json map50_95 (fp32's) shrank the drop the budget judges: the drop is taken from the
    higher of it and the gate's own scoring of the fp32 file (rescore_onnx, fed here as ``reference_scored``)."""
    from edgeproof.release.eligible import release_choice_rule

    files = (Path("metrics/eval.json"), Path("metrics/parity.json"))
    gated = {"map50_95": 0.75}
    parity = {"detections": {"variants": {"int8": {"measured": True, "passed": True, "matched_share": 0.95}}}}

    def rule(reference_eval: float, reference_scored: float | None) -> dict:
        docs = {files[0]: {"map50_95": reference_eval}, files[1]: parity}
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("edgeproof.release.eligible.read_json", lambda path: docs[path])
            return release_choice_rule("int8", _profile(), "cpu-ci", files, gated, None, reference_scored)

    assert rule(0.76, None)["status"] == "pass"  # the edited reference alone: a drop of 0.01
    caught = rule(0.76, 0.785)  # the file the reference names scores 0.785: the drop is 0.035
    assert caught["status"] == "fail" and caught["measured"] == 0.035 and "exceeds the budget" in caught["reason"]
    assert rule(0.785, 0.76)["measured"] == 0.035  # a reference scored lower here never shrinks the drop either
