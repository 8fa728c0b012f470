"""Candidate variants on the board (issue 22): shipped next to the released model, measured after every
gated figure, judged by the device gate as evidence for the next release choice, never as the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeproof.device.measure import run_measure
from edgeproof.io import sha256_file
from edgeproof.markdown import cell
from edgeproof.profiles import parse_profiles
from edgeproof.verdict.device import run_device_gate
from tests.conftest import make_fixed_detector
from tests.device.builders import IMGSZ, fixed_raw, write_build_side
from tests.device.conftest import base_params, make_bundle, profiles_raw

CANDIDATE = "models/optimized/int8_trt.onnx"


def _same_detections() -> np.ndarray:
    """The released model's one box, with a never-detected anchor moved: other bytes, the same detections."""
    raw = fixed_raw()
    raw[:, 1] = [9, 9, 4, 4, 0.0]
    return raw


def _shifted() -> np.ndarray:
    """The released model's box moved by 2 px (IoU 0.62): mAP50 still 1.0, mAP50-95 well below the released 1.0."""
    raw = fixed_raw()
    raw[:2, 0] += 2
    return raw


def _bundle(
    root: Path,
    candidate_raw: np.ndarray | None,
    parity: bool | None = True,
    profile: str = "cpu-ci",
    candidate_is_reference: float | None = None,
    gate: dict | None = None,
) -> Path:
    """``candidate_is_reference``: the build names the candidate its fp32 reference and claims this mAP50-95;
    ``gate``: thresholds over the profile's."""
    raw = profiles_raw()
    raw[profile]["candidates"] = ["int8_trt"]
    if gate:
        raw[profile]["gate"].update(gate)
    profiles = parse_profiles(raw)
    write_build_side(root, list(profiles))
    release_path = root / "reports" / "release.json"
    release = json.loads(release_path.read_text())
    if candidate_raw is not None:
        make_fixed_detector(root / CANDIDATE, candidate_raw, IMGSZ, {0: "thing"})
        release["variants"]["int8_trt"] = {
            "path": CANDIDATE,
            "sha256": sha256_file(root / CANDIDATE),
            "evaluated": True,
            "parity_passed": parity,
            "parity_matched_share": 1.0 if parity else 0.2,
        }
        if parity is None:  # measured, too few detections to judge
            release["variants"]["int8_trt"]["parity_reason"] = "4 PyTorch and 4 variant detections: fewer than 10"
        if candidate_is_reference is not None:
            release["reference"].update(
                sha256=release["variants"]["int8_trt"]["sha256"], map50_95=candidate_is_reference
            )
    release_path.write_text(json.dumps(release))
    return make_bundle(root, profiles=profiles)


def _measure_and_gate(bundle: Path) -> tuple[dict, dict, Path]:
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0, (out / "measure.json").read_text()
    code = run_device_gate(bundle, "cpu-ci", out)
    gate = json.loads((out / "gate.json").read_text())
    assert code == 0 and gate["verdict"] == "pass"  # the released file's verdict, whatever the candidates do
    return json.loads((out / "bench.json").read_text()), gate, out


def test_a_candidate_with_the_same_detections_would_pass(tmp_path):
    bundle = _bundle(tmp_path, _same_detections())
    manifest = json.loads((bundle / "manifest.json").read_text())["profiles"]["cpu-ci"]
    assert manifest["variant"] == "fp32" and [c["variant"] for c in manifest["candidates"]] == ["int8_trt"]
    assert (bundle / manifest["candidates"][0]["model"]).is_file()
    bench, gate, out = _measure_and_gate(bundle)
    assert bench["variant"] == "fp32"  # the gated figures are the released model's
    (summary,) = bench["candidates"]
    assert summary["status"] == "measured" and summary["fps_e2e"] > 0
    assert (out / "candidates" / "int8_trt" / "detections.json").is_file()
    (judged,) = gate["candidates"]
    assert judged["verdict"] == "pass" and judged["map50_95"] == pytest.approx(1.0)
    assert judged["model_sha256"] == manifest["candidates"][0]["sha256"]
    md = (out / "gate.md").read_text()
    assert "Also measured on this board, not gated" in md and "| int8_trt |" in md


def test_a_candidate_over_the_map_budget_would_fail_and_says_why(tmp_path):
    _bench, gate, out = _measure_and_gate(_bundle(tmp_path, _shifted()))
    (judged,) = gate["candidates"]
    failed = [r["name"] for r in judged["rules"] if r["status"] != "pass"]
    assert judged["verdict"] == "fail" and failed == ["map_drop"] and "advice" not in judged
    assert "map_drop" in (out / "gate.md").read_text()


def test_a_shipped_fp32_reference_that_is_not_the_released_file_is_run_here_for_map_drop(tmp_path):
    """The build names another bundled file its fp32 reference and claims 1.02 for it: map_drop takes that
    file's own mAP here (the claim alone had failed the released file by 0.02), never the claimed figure."""
    _bench, gate, _out = _measure_and_gate(_bundle(tmp_path, _shifted(), candidate_is_reference=1.02))
    drop = next(r for r in gate["rules"] if r["name"] == "map_drop")
    (judged,) = gate["candidates"]  # its detections, on the CPU standing in for the board, are its own here
    assert drop["source"] == "fp32 reference models/int8_trt.onnx run here (CPU)" and drop["status"] == "pass"
    assert drop["measured"] == pytest.approx(judged["map50_95"] - gate["measured"]["map50_95"], abs=1e-6)
    assert drop["measured"] < 0  # the shifted boxes score below the released file's


def test_forged_candidate_figures_are_caught_and_never_touch_the_verdict(tmp_path):
    bundle = _bundle(tmp_path, _same_detections())
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    bench_path = out / "candidates" / "int8_trt" / "bench.json"
    forged = json.loads(bench_path.read_text())
    forged.update(model_sha256="e" * 64, fps_e2e=1.0e6)
    bench_path.write_text(json.dumps(forged))
    (out / "candidates" / "int8_trt" / "detections.json").write_text(json.dumps([{"image_id": 999}]))
    assert run_device_gate(bundle, "cpu-ci", out) == 0
    (judged,) = json.loads((out / "gate.json").read_text())["candidates"]
    failed = {r["name"]: r["status"] for r in judged["rules"] if r["status"] != "pass"}
    assert (
        judged["verdict"] != "pass" and failed["detections"] == "invalid" and failed["same_model_benchmarked"] == "fail"
    )


def _forge_ground_truth_at(out: Path, bundle: Path, times: float) -> None:
    """The candidate's detections replaced by the bundle's ground truth, its FPS multiplied."""
    gt = json.loads((bundle / "val" / "annotations.json").read_text())
    boxes = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.99}
        for a in gt["annotations"]
    ]
    (out / "candidates" / "int8_trt" / "detections.json").write_text(json.dumps(boxes))
    bench_path = out / "candidates" / "int8_trt" / "bench.json"
    bench = json.loads(bench_path.read_text())
    bench["fps_e2e"] = json.loads((out / "bench.json").read_text())["fps_e2e"] * times
    bench_path.write_text(json.dumps(bench))


def test_a_candidate_whose_detections_its_model_does_not_produce_is_never_advised(tmp_path):
    """A candidate model that finds nothing, with the ground truth pasted in as its detections and 3x the
    released FPS: the released file's evidence rules catch it (not reproduced, FPS not the run's)."""
    raw = np.zeros((5, 4), np.float32)
    raw[:, 0], raw[:, 1] = [5, 5, 4, 4, 0.9], [8, 8, 4, 4, 0.0]  # a box far from the truth: honest mAP 0
    bundle = _bundle(tmp_path, raw)
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    _forge_ground_truth_at(out, bundle, 3.0)
    assert run_device_gate(bundle, "cpu-ci", out) == 0  # the released file's verdict stands
    (judged,) = json.loads((out / "gate.json").read_text())["candidates"]
    status = {r["name"]: r["status"] for r in judged["rules"]}
    assert judged["verdict"] == "fail" and "advice" not in judged
    assert status["detections_reproduced"] == "invalid" and status["results_consistent"] == "invalid"
    assert "set profiles.cpu-ci.variant" not in (out / "gate.md").read_text()


def test_a_candidate_measured_on_a_throttled_run_is_not_advised(tmp_path):
    bundle = _bundle(tmp_path, _same_detections())
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    for name in ("conditions.json", "measure.json"):  # the board's record of a hot run, both files agreeing
        record = json.loads((out / name).read_text())
        record["throttled"] = True
        (out / name).write_text(json.dumps(record))
    assert run_device_gate(bundle, "cpu-ci", out) == 3
    (judged,) = json.loads((out / "gate.json").read_text())["candidates"]
    assert judged["verdict"] == "inconclusive" and "advice" not in judged
    # its FPS, speed-up and p95 were timed in the same hot run: gate.md (the PR comment) withholds them
    (row,) = [line for line in (out / "gate.md").read_text().splitlines() if line.startswith("| int8_trt |")]
    assert row.split(" | ")[1:4] == ["withheld (throttled)"] * 3 and cell(judged["fps_e2e"]) not in row


def test_a_candidate_that_fails_on_the_board_is_recorded_not_raised(tmp_path, monkeypatch):
    from edgeproof.device import candidates

    def broken(*_a, **_kw):
        raise RuntimeError("TensorRT could not build the INT8 engine")

    monkeypatch.setattr(candidates, "_measure_one", broken)
    bench, gate, _out = _measure_and_gate(_bundle(tmp_path, _same_detections()))
    assert bench["candidates"][0]["status"] == "failed" and "INT8 engine" in bench["candidates"][0]["reason"]
    assert gate["candidates"][0]["verdict"] == "inconclusive"


def test_a_candidate_the_bundle_left_out_is_reported_with_the_bundles_reason(tmp_path):
    bench, gate, out = _measure_and_gate(_bundle(tmp_path, _same_detections(), parity=False))
    assert bench["candidates"] == [{"variant": "int8_trt", "reason": "breaks parity (0.2)", "status": "not shipped"}]
    (judged,) = gate["candidates"]
    assert judged["verdict"] == "inconclusive" and judged["reason"] == "breaks parity (0.2)"
    assert "breaks parity (0.2)" in (out / "gate.md").read_text()
    forged = json.loads((out / "bench.json").read_text())
    forged["candidates"].append({"variant": "fp16", "status": "measured"})  # nothing the bundle shipped
    (out / "bench.json").write_text(json.dumps(forged))
    run_device_gate(out.parent / "bundle", "cpu-ci", out)
    assert json.loads((out / "gate.json").read_text())["candidates"][1]["verdict"] == "invalid"


def test_the_board_measures_only_the_candidates_the_base_profile_names(tmp_path):
    """The bundle (the pull request's) ships an int8_trt candidate the base's cpu-ci does not name: no engine
    build, no results folder for it; the gate shows it as not measured, never as a candidate verdict."""
    bundle = _bundle(tmp_path, _same_detections())
    out = bundle.parent / "out"
    base = base_params(tmp_path, {"candidates": []})
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines", base) == 0
    (summary,) = json.loads((out / "bench.json").read_text())["candidates"]
    assert summary["variant"] == "int8_trt" and summary["status"] == "not measured"
    assert "not a candidate of the profile that measures" in summary["reason"]
    assert not (out / "candidates").exists()
    assert run_device_gate(bundle, "cpu-ci", out, rules_params=base) == 0
    (judged,) = json.loads((out / "gate.json").read_text())["candidates"]
    assert judged["verdict"] == "inconclusive" and judged["status"] == "not measured"


def test_the_bundle_leaves_out_what_nobody_could_release(tmp_path):
    missing = json.loads((_bundle(tmp_path / "a", None) / "manifest.json").read_text())["profiles"]["cpu-ci"]
    assert missing["candidates"] == [] and missing["candidates_skipped"] == [
        {"variant": "int8_trt", "reason": "not built"}
    ]
    broken = _bundle(tmp_path / "b", _same_detections(), parity=False)
    entry = json.loads((broken / "manifest.json").read_text())["profiles"]["cpu-ci"]
    assert entry["candidates"] == [] and "breaks parity" in entry["candidates_skipped"][0]["reason"]
    assert not (broken / CANDIDATE.replace("models/optimized/", "models/")).exists()
    # parity measured but not judged: no more releasable than broken (the release choice's one rule)
    unjudged = _bundle(tmp_path / "c", _same_detections(), parity=None)
    entry = json.loads((unjudged / "manifest.json").read_text())["profiles"]["cpu-ci"]
    assert entry["candidates"] == [] and entry["candidates_skipped"] == [
        {"variant": "int8_trt", "reason": "parity not judged (4 PyTorch and 4 variant detections: fewer than 10)"}
    ]


def test_a_nano_cannot_have_an_int8_candidate():
    from edgeproof.settings import SettingsError

    raw = profiles_raw()
    raw["jetson-nano"]["candidates"] = ["int8_trt"]
    with pytest.raises(SettingsError, match=r"profiles\.jetson-nano\.candidates: int8_trt on a Jetson Nano"):
        parse_profiles(raw)


def test_on_tensorrt_the_candidate_runs_in_int8_mode_and_the_released_file_does_not(tmp_path, monkeypatch):
    import onnxruntime as ort

    from tests.device.test_trt_plan import TRT, FakeTrtSession

    bundle = _bundle(tmp_path, _same_detections(), profile="cpu-trt-fake")
    FakeTrtSession.sessions, FakeTrtSession.log = [], []
    monkeypatch.setattr(ort, "InferenceSession", FakeTrtSession)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "__version__", "1.20.1")
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-trt-fake", out, None, bundle.parent / "engines") == 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["variant"] == "fp32" and bench["candidates"][0]["status"] == "measured"
    trt = [s for s in FakeTrtSession.sessions if s.providers[:1] == [TRT]]
    released, candidate = trt[:3], trt[3:]  # placement, gated, sweep; then the candidate's placement and gated
    assert len(candidate) == 2 and all(s.options["trt_int8_enable"] is True for s in candidate)
    assert all("trt_int8_enable" not in s.options for s in released)
    assert candidate[0].options["trt_engine_cache_path"] not in {s.options["trt_engine_cache_path"] for s in released}
    placed = json.loads((out / "candidates" / "int8_trt" / "bench.json").read_text())["providers"]
    assert placed["session"][0] == TRT and placed["problems"] == [] and placed["nodes"][TRT] > 0


BUDGETS = {"max_energy_mj_per_frame": 1000.0, "max_power_w": 100.0, "max_peak_memory_mb": 100000.0}


def test_a_candidate_is_never_passed_on_budgets_it_was_not_measured_for(tmp_path):
    """Review energymem, finding 1: on a profile that sets energy, power and memory budgets (the Orin's), a
    candidate with no such figure read "would be: pass" -- and, faster, the advice to release it -- while
    the released file's own energy rules were inconclusive in the same run."""
    bundle = _bundle(tmp_path, _same_detections(), gate=BUDGETS)
    out = bundle.parent / "out"
    assert run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    run_device_gate(bundle, "cpu-ci", out)
    (judged,) = json.loads((out / "gate.json").read_text())["candidates"]
    assert judged["verdict"] == "inconclusive" and "advice" not in judged
    row = next(line for line in (out / "gate.md").read_text().splitlines() if line.startswith("| int8_trt |"))
    assert "| inconclusive |" in row and "would pass" not in row
    budgets = {r["name"]: r for r in judged["rules"] if r["name"] in ("energy", "power", "peak_memory", "memory_leak")}
    assert {n: r["status"] for n, r in budgets.items()} == dict.fromkeys(budgets, "inconclusive") and len(budgets) == 4
    assert judged["not_judged"] == ["energy", "power", "peak_memory", "memory_leak"]
    from edgeproof.device.candidates import NO_ENERGY, NO_MEMORY  # the board's record says why, the rules with it

    measured = json.loads((out / "candidates" / "int8_trt" / "bench.json").read_text())
    assert measured["energy"] == {"measurable": False, "reason": NO_ENERGY}
    assert measured["memory"] == {"measurable": False, "reason": NO_MEMORY}
    assert NO_ENERGY in budgets["energy"]["reason"] and NO_MEMORY in budgets["peak_memory"]["reason"]


def _rule(name: str, status: str) -> dict:
    from edgeproof.verdict.rules import result

    return result(name, name, "<=", 1.0, 0.5 if status == "pass" else None, "bench.json", status, None)


def test_a_faster_candidate_with_unjudged_budgets_is_not_advised_and_says_what_would_judge_them():
    from edgeproof.verdict.candidates import _next_step

    measured = [_rule("fps", "pass"), _rule("map50", "pass"), _rule("map_drop", "pass")]
    unjudged = [_rule(n, "inconclusive") for n in ("energy", "power", "peak_memory", "memory_leak")]
    step = _next_step("jetson-orin-nano", "int8_trt", measured + unjudged, False, 1.8)
    assert "advice" not in step and step["not_judged"] == ["energy", "power", "peak_memory", "memory_leak"]
    assert step["next_step"].startswith("1.8x the released variant's FPS on the rules it was measured against, but")
    assert "not advised" in step["next_step"] and "profiles.jetson-orin-nano.variant: int8_trt" in step["next_step"]
    judged = [_rule(n, "pass") for n in ("energy", "power", "peak_memory", "memory_leak")]
    assert _next_step("p", "int8_trt", measured + judged, False, 1.8) == {
        "advice": "would pass at 1.8x the released variant's FPS: set profiles.p.variant: int8_trt to release it"
    }
    over_budget = [*measured[:2], _rule("map_drop", "fail"), *unjudged]  # fails where it was measured: no step
    assert "next_step" not in _next_step("p", "int8_trt", over_budget, False, 1.8)
    assert "next_step" not in _next_step("p", "int8_trt", measured + unjudged, True, 1.8)  # a hot board
    assert "next_step" not in _next_step("p", "int8_trt", measured + unjudged, False, 0.9)  # not faster
