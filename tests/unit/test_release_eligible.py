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
from edgeproof.training.params import ParityParams
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
        optimize=root / "metrics/optimize.json",
        reference_model=root / "models/optimized/fp32.onnx",
    )
    code = run_gate(args, load_params(root / "params.yaml"))
    report = json.loads((root / "gate.json").read_text())
    assert code == {"pass": 0, "fail": 1}[report["verdict"]]
    return report


def _choice(report: dict) -> dict:
    return next(r for r in report["rules"] if r["name"] == "release_choice")


def test_the_released_variant_passes_the_rule(tmp_path, monkeypatch):
    report = _run(tmp_path, lambda docs: None, None, monkeypatch)
    rule = _choice(report)
    assert report["verdict"] == "pass" and rule["status"] == "pass", rule
    assert rule["measured"] == "drop 0.0, parity kept (matched_share 0.95)"
    assert rule["threshold"] == "releasable: parity kept, mAP50-95 drop <= 0.015"


def _counts(matched: int) -> dict:
    kept = {"reference_detections": 20, "detections": 20, "matched": matched, "matched_share": round(matched / 20, 4)}
    return {**kept, "classes": {"0": kept}}


def _parity_broken(docs: dict) -> None:
    docs["metrics/parity.json"]["detections"]["variants"][gi.RELEASED] = {
        "measured": True,
        "passed": False,
        **_counts(6),
    }


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
    assert rule["status"] == "fail" and "drop 0.016 exceeds the budget" in rule["measured"], rule


def test_the_stage_refuses_a_release_run_without_the_files_the_rule_reads():
    from stages import gate as gate_stage

    cmd = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["gate"]
    assert "--reference-eval metrics/eval.json --parity metrics/parity.json" in cmd["cmd"]
    assert "--optimize metrics/optimize.json" in cmd["cmd"]
    assert {"metrics/eval.json", "metrics/parity.json", "metrics/optimize.json"} <= set(cmd["deps"])
    argv = ["--release", "r.json", "--data", "d", "--report-json", "g", "--report-md", "m"]
    assert gate_stage.main([*argv, "--headline", "h", "--train-metrics", "t"]) == 2
    rest = ["--headline", "h", "--train-metrics", "t", "--reference-eval", "e", "--parity", "p"]
    assert gate_stage.main([*argv, *rest]) == 2  # without --optimize: nothing to hold the files to


def test_an_fp32_reference_edited_lower_buys_nothing_the_gate_scores_it_itself():
    """A lowered metrics/eval.json map50_95 (fp32's) shrank the drop the budget judges: the drop is taken from the
    higher of it and the gate's own scoring of the fp32 file (rescore_onnx, fed here as ``reference_scored``)."""
    from edgeproof.release.eligible import release_choice_rule

    files = (Path("metrics/eval.json"), Path("metrics/parity.json"), None)
    gated = {"map50_95": 0.75}
    parity = {"detections": {"variants": {"int8": {"measured": True, "passed": True, **_counts(19)}}}}

    def rule(reference_eval: float, reference_scored: float | None) -> dict:
        docs = {files[0]: {"map50_95": reference_eval}, files[1]: parity}
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("edgeproof.release.eligible.read_json", lambda path: docs[path])
            held = (reference_scored, ParityParams(), (None, None))
            return release_choice_rule("int8", _profile(), "cpu-ci", files, gated, None, held)

    assert rule(0.76, None)["status"] == "pass"  # the edited reference alone: a drop of 0.01
    caught = rule(0.76, 0.785)  # the file the reference names scores 0.785: the drop is 0.035
    assert caught["status"] == "fail" and "drop 0.035 exceeds the budget" in caught["measured"]
    assert (
        "drop 0.035 exceeds" in rule(0.785, 0.76)["measured"]
    )  # a reference scored lower here never shrinks the drop either


def _flag_only(passed):
    """verify12 #2: only parity.json's flag edited, its counts (and shares) left as measured."""

    def edit(docs: dict) -> None:
        docs["metrics/parity.json"]["detections"]["variants"][gi.RELEASED] = {
            "measured": True,
            **_counts(6),  # 6 of 20 matched: optimize.parity.min_matched_share 0.9 breaks it
            "passed": passed,
        }

    return edit


@pytest.mark.parametrize("passed", [True, None])
def test_a_parity_flag_that_contradicts_the_records_own_counts_is_invalid(tmp_path, monkeypatch, passed):
    """The flag is judged again from the counts by params' optimize.parity (the optimize stage's own rule):
    ``passed: true`` beside 6 of 20 matched passed the rule and became champion."""
    report = _run(tmp_path, _flag_only(passed), None, monkeypatch)
    rule = _choice(report)
    assert report["verdict"] == "fail" and rule["status"] == "invalid", rule
    assert "metrics/parity.json contradicts itself" in rule["reason"]
    assert f"detections.variants.{gi.RELEASED}.passed is {passed!r}" in rule["measured"]
    assert "say broken" in rule["measured"]


def test_counts_that_break_parity_fail_the_rule_naming_them(tmp_path, monkeypatch):
    report = _run(tmp_path, _flag_only(False), None, monkeypatch)
    rule = _choice(report)
    assert rule["status"] == "fail" and rule["measured"].startswith("breaks parity: 6 matched of 20"), rule
    assert "matched_share 0.3 < optimize.parity.min_matched_share 0.9" in rule["measured"]
    assert rule["threshold"] == "releasable: parity kept, mAP50-95 drop <= 0.015"


def _not_measured(passed):
    def edit(docs: dict) -> None:
        docs["metrics/parity.json"]["detections"]["variants"][gi.RELEASED] = {
            "measured": False,
            "passed": passed,
            "reason": "said not measurable",
        }

    return edit


def test_a_variant_this_machine_measures_recorded_as_not_measured_is_not_releasable(tmp_path, monkeypatch):
    """verify12 #2 P3: ``passed: null, measured: false`` on int8 (which any CPU measures) passed."""
    rule = _choice(_run(tmp_path, _not_measured(None), None, monkeypatch))
    assert rule["status"] == "fail" and "parity not judged" in rule["measured"], rule
    assert f"measured is False, but this machine measures {gi.RELEASED}" in rule["measured"]
    rule = _choice(_run(tmp_path, _not_measured(True), None, monkeypatch))
    assert rule["status"] == "invalid" and "passed is True but it was not measured" in rule["measured"], rule


def test_fp16_without_a_gpu_provider_stays_unjudged_not_refused(monkeypatch):
    from edgeproof.release.eligible import parity_record

    parity = {"detections": {"variants": {"fp16": {"measured": False, "passed": None, "reason": "no GPU"}}}}
    monkeypatch.setattr("edgeproof.training.parity_judge.fp16_judgeable", lambda: "no GPU provider")
    record, contradiction = parity_record(parity, "fp16", ParityParams())
    assert contradiction is None and record["parity_measured"] is False and record["parity_passed"] is None
    assert release_problem("fp16", {**record, "map_drop": 0.0}, _profile(), "cpu-ci") is None
    monkeypatch.setattr("edgeproof.training.parity_judge.fp16_judgeable", lambda: None)  # a GPU here
    record, _ = parity_record(parity, "fp16", ParityParams())
    assert "parity not judged" in release_problem("fp16", {**record, "map_drop": 0.0}, _profile(), "cpu-ci")


def _swap_reference(docs: dict) -> None:
    """verify12 #3: the gated variant's bytes copied over fp32.onnx (written by _run), eval.json lowered alike."""
    docs["metrics/eval.json"] = {**gi.eval_doc(gi.OTHER), "map50_95": gi.MAP50_95}


@pytest.mark.parametrize("what", ["file", "eval"])
def test_a_reference_not_the_file_optimize_recorded_is_invalid_naming_both(tmp_path, monkeypatch, what):
    def edit(docs: dict) -> None:
        if what == "eval":
            docs["metrics/eval.json"]["model_sha256"] = gi.sha_of(gi.RELEASED)

    real_write = gi.write_inputs

    def write_swapped(root: Path, docs: dict) -> None:
        real_write(root, docs)
        if what == "file":
            (root / "models/optimized/fp32.onnx").write_bytes(gi.model_bytes(gi.RELEASED))

    monkeypatch.setattr(gi, "write_inputs", write_swapped)
    rule = _choice(_run(tmp_path, edit, None, monkeypatch))
    held = "the fp32 reference model file" if what == "file" else "the fp32 reference eval.json model_sha256"
    want = f"{held} is sha256 {gi.sha_of(gi.RELEASED)} but optimize.json variants.fp32.sha256 is {gi.sha_of('fp32')}"
    assert rule["status"] == "invalid" and want in rule["reason"], rule


def test_a_gated_file_not_the_one_optimize_recorded_is_invalid(tmp_path, monkeypatch):
    def edit(docs: dict) -> None:
        docs["metrics/optimize.json"]["variants"][gi.RELEASED]["sha256"] = "0" * 64

    rule = _choice(_run(tmp_path, edit, None, monkeypatch))
    assert rule["status"] == "invalid" and f"the gated {gi.RELEASED} model file is sha256" in rule["reason"], rule


def test_a_fixed_profile_row_names_the_fixed_variant_not_the_budget(tmp_path, monkeypatch):
    """verify12 #6: a fixed profile over budget read ``<= 0.003 | 0.004915 | pass``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    profile = params["release"]["build_profile"]
    from edgeproof.release.eligible import release_choice_rule

    files = (Path("e.json"), Path("p.json"), None)
    docs = {
        files[0]: {"map50_95": 0.8},
        files[1]: {"detections": {"variants": {"int8": {"measured": True, "passed": True, **_counts(19)}}}},
    }
    monkeypatch.setattr("edgeproof.release.eligible.read_json", lambda path: docs[path])
    fixed = _profile(variant="int8", max_map_drop=0.003)
    rule = release_choice_rule(
        "int8", fixed, profile, files, {"map50_95": 0.79}, None, (None, ParityParams(), (None, None))
    )
    assert rule["status"] == "pass" and rule["threshold"] == "releasable: the fixed variant int8, parity kept"
    assert rule["op"] == "is" and rule["measured"] == "drop 0.01, parity kept (matched_share 0.95)"


def test_a_matched_share_its_counts_do_not_give_is_invalid(tmp_path, monkeypatch):
    """verify12 #2 P1/P2b: only the flag and ``matched_share`` edited, the counts as measured."""

    def edit(docs: dict) -> None:
        record = docs["metrics/parity.json"]["detections"]["variants"][gi.RELEASED]
        docs["metrics/parity.json"]["detections"]["variants"][gi.RELEASED] = {**record, "matched_share": 0.3}

    rule = _choice(_run(tmp_path, edit, None, monkeypatch))
    assert rule["status"] == "invalid" and "matched_share 0.3 is not its counts' 0.95" in rule["reason"], rule


def test_the_stage_requires_the_reference_model_with_release(tmp_path, monkeypatch, capsys):
    """simplify12 review: without --reference-model the drop was taken to the reference eval.json alone, so a
    reference edited lower passed again (the gap the gate's own scoring of the fp32 file closes)."""
    from stages import gate as gate_stage

    monkeypatch.chdir(tmp_path)
    argv = ["--params", str(REPO / "params.yaml"), "--release", "r", "--data", "d", "--report-json", "j"]
    rest = ["--report-md", "m", "--headline", "h", "--train-metrics", "t", "--reference-eval", "e", "--parity", "p"]
    assert gate_stage.main([*argv, *rest, "--optimize", "o"]) == 2  # no --reference-model: refused, nothing judged
    assert "--reference-model" in capsys.readouterr().err and not Path("j").exists()
