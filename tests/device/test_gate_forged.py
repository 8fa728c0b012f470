"""Issue 17.2/17.3/17.4/20: forged, impossible, unreadable and missing device results, the base's rules,
energy and memory. Forged or impossible -> fail (never pass, never a traceback); missing -> inconclusive;
every path writes gate.json + gate.md with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgeproof.verdict.device import device_gate, run_device_gate
from tests.device.builders import write_build_side
from tests.device.conftest import (
    edit_json,
    make_bundle,
    measure_bundle,
    profiles_raw,
    rule_named,
    set_measured_energy,
)


def _gate(bundle: Path, out: Path, profile: str = "cpu-ci", **kw) -> tuple[int, dict, str]:
    code = run_device_gate(bundle, profile, out, **kw)
    report = json.loads((out / "gate.json").read_text())  # strict JSON whatever was fed in
    return code, report, (out / "gate.md").read_text()


def test_impossible_fps_and_negative_latency_fail_as_invalid(bundle, measured):
    edit_json(measured / "bench.json", lambda d: d.update(fps_e2e=1e300, latency_ms={**d["latency_ms"], "p95": -3.0}))
    code, report, md = _gate(bundle, measured)
    assert code == 1 and report["verdict"] == "fail"
    assert (
        rule_named(report, "fps")["status"] == "invalid"
        and "outside the possible range" in rule_named(report, "fps")["reason"]
    )
    assert rule_named(report, "latency_p95")["status"] == "invalid"
    assert "**INVALID**" in md


def test_infinity_and_nan_in_results_json_end_in_a_written_report_replacing_the_old_one(bundle, measured):
    (measured / "gate.json").write_text(json.dumps({"verdict": "pass", "stale": True}))
    edit_json(measured / "bench.json", lambda d: d.update(fps_e2e="@INF@", latency_ms={"p95": "@NAN@"}))
    text = (measured / "bench.json").read_text().replace('"@INF@"', "Infinity").replace('"@NAN@"', "NaN")
    (measured / "bench.json").write_text(text)  # what json.dumps(allow_nan=True) writes, and json.loads reads
    code, report, _ = _gate(bundle, measured)
    assert code == 1 and "stale" not in report
    assert rule_named(report, "fps")["measured"] == "inf" and rule_named(report, "fps")["status"] == "invalid"
    assert rule_named(report, "latency_p95")["status"] == "invalid"


def test_unreadable_results_file_fails_naming_it(bundle, measured):
    (measured / "bench.json").write_text("{not json")
    code, report, md = _gate(bundle, measured)
    assert code == 1 and "bench.json: not valid JSON" in report["rules"][0]["reason"]
    assert "FAILED" in md


def test_string_fps_with_a_baseline_is_invalid_not_a_type_error(bundle, measured, tmp_path):
    edit_json(bundle / "profiles.json", lambda d: d["cpu-ci"].update(regression={"max_fps_drop_pct": 10.0}))
    edit_json(measured / "bench.json", lambda d: d.update(fps_e2e="fast"))
    baseline = tmp_path / "main-gate.json"
    baseline.write_text(json.dumps({"verdict": "pass", "profile": "cpu-ci", "measured": {"fps_e2e": 100.0}}))
    code, report, _ = _gate(bundle, measured, baseline=baseline)
    assert code == 1 and rule_named(report, "fps")["reason"] == 'fps_e2e: "fast" is a string, expected a number'
    assert rule_named(report, "regression_fps")["status"] == "inconclusive"


def test_detection_of_an_image_not_in_the_bundle_is_invalid(bundle, measured):
    edit_json(measured / "detections.json", lambda d: d.append({**d[0], "image_id": 999}))
    code, report, _ = _gate(bundle, measured)
    assert code == 1 and "image_id 999 is not an image of the bundle" in rule_named(report, "detections")["reason"]
    edit_json(measured / "detections.json", lambda d: d.__setitem__(-1, {**d[0], "category_id": 3}))
    assert (
        "category_id 3 is not a category" in rule_named(device_gate(bundle, "cpu-ci", measured), "detections")["reason"]
    )


def test_detections_file_outside_the_results_folder_is_refused(bundle, measured, tmp_path):
    (tmp_path / "elsewhere.json").write_text((measured / "detections.json").read_text())
    edit_json(measured / "eval.json", lambda d: d.update(detections_file="../../../elsewhere.json"))
    code, report, _ = _gate(bundle, measured)
    assert code == 1 and "outside the results folder" in rule_named(report, "detections")["reason"]
    (measured / "link.json").symlink_to(tmp_path / "elsewhere.json")  # a symlink out is outside too
    edit_json(measured / "eval.json", lambda d: d.update(detections_file="link.json"))
    assert rule_named(device_gate(bundle, "cpu-ci", measured), "detections")["status"] == "invalid"


def test_ground_truth_copied_in_as_detections_is_caught(tmp_path):
    """The model here finds one box per image; the ground truth has it elsewhere on half the images."""
    root = tmp_path / "build"
    write_build_side(root, list(profiles_raw()))
    val = root / "data/prepared/annotations/val.json"
    edit_json(val, lambda gt: [a.update(bbox=[2.0, 2.0, 12.0, 12.0], area=144.0) for a in gt["annotations"][::2]])
    bundle = make_bundle(root)
    out = measure_bundle(bundle)
    honest = device_gate(bundle, "cpu-ci", out)
    assert honest["measured"]["map50"] < 0.6 and rule_named(honest, "detections_reproduced")["status"] == "pass"
    gt = json.loads((bundle / "val/annotations.json").read_text())
    forged = [{**{k: a[k] for k in ("image_id", "category_id", "bbox")}, "score": 0.99} for a in gt["annotations"]]
    (out / "detections.json").write_text(json.dumps(forged))
    code, report, _ = _gate(bundle, out)
    assert code == 1 and report["measured"]["map50"] == 1.0  # what the forger wanted ...
    rule = rule_named(report, "detections_reproduced")
    assert rule["status"] == "invalid" and "does not produce these detections" in rule["reason"]  # ... refused


def test_ground_truth_slipped_in_below_the_confident_scores_is_caught(tmp_path):
    """The subtler forgery: keep the model's own detections (they agree) and add the ground truth at a low
    score. Agreement holds; the mAP rises above what the model itself scores here, and that is refused."""
    root = tmp_path / "build"
    write_build_side(root, list(profiles_raw()))
    val = root / "data/prepared/annotations/val.json"
    edit_json(val, lambda gt: [a.update(bbox=[2.0, 2.0, 12.0, 12.0], area=144.0) for a in gt["annotations"][::2]])
    bundle = make_bundle(root)
    out = measure_bundle(bundle)
    gt = json.loads((bundle / "val/annotations.json").read_text())
    slipped = [{**{k: a[k] for k in ("image_id", "category_id", "bbox")}, "score": 0.3} for a in gt["annotations"]]
    edit_json(out / "detections.json", lambda d: d.extend(slipped))
    code, report, _ = _gate(bundle, out)
    assert code == 1 and rule_named(report, "detections_reproduced")["status"] == "pass"
    rule = rule_named(report, "map_not_above_model")
    assert rule["status"] == "invalid" and rule["measured"] > 0.3


def test_no_detections_at_all_is_judged_not_crashed(bundle, measured):
    (measured / "detections.json").write_text("[]")
    code, report, _ = _gate(bundle, measured)
    assert code == 1 and rule_named(report, "detections_reproduced")["status"] == "invalid"


def test_missing_results_are_inconclusive_with_what_to_do(bundle, tmp_path):
    out = tmp_path / "reports/device/cpu-ci"
    code, report, md = _gate(bundle, out)
    assert code == 3 and report["verdict"] == "inconclusive" and "never arrived" in report["rules"][-1]["reason"]
    assert "INCONCLUSIVE" in md and "rerun the jetson job" in md
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"fps_e2e": 1e9}))  # a partial folder: no measure.json
    code, report, _ = _gate(bundle, out)
    assert code == 3 and "did not finish" in report["rules"][-1]["reason"]


def test_an_unknown_profile_still_writes_a_failing_report(bundle, measured):
    code, report, md = _gate(bundle, measured, profile="no-such-board")
    assert code == 1 and "no-such-board" in report["rules"][0]["reason"] and "FAILED" in md


def _base(tmp_path: Path, **cpu_ci) -> Path:
    """A base-branch params.yaml: the repo's, with the tests' profiles and ``cpu_ci`` merged into cpu-ci."""
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["profiles"] = profiles_raw()
    for key, value in cpu_ci.items():
        params["profiles"]["cpu-ci"].setdefault(key, {}).update(value)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(params))
    return base


def test_the_bases_rules_judge_and_the_proposal_is_shown(bundle, measured, tmp_path):
    base = _base(tmp_path, gate={"min_fps": 1.0e5})  # main's rule; the PR's bundle says 1.0
    code, report, md = _gate(bundle, measured, rules_params=base)
    assert code == 1 and report["failed"] == ["fps"] and rule_named(report, "fps")["threshold"] == 1.0e5
    assert "profiles.cpu-ci.gate.min_fps 100000.0 → 1.0: judged at 100000.0; takes effect after merge" in md
    assert _gate(bundle, measured)[0] == 0  # the bundle's own (proposed) rules would have passed it


def test_no_baseline_is_stated(bundle, measured):
    edit_json(bundle / "profiles.json", lambda d: d["cpu-ci"].update(regression={"max_fps_drop_pct": 10.0}))
    _code, report, md = _gate(bundle, measured)
    assert report["notes"] == ["no baseline on main: regression not judged"]
    assert "no baseline on main: regression not judged" in md


ENERGY = {
    "energy_mj_per_frame": 250.0,
    "energy_net_mj_per_frame": 120.0,
    "power_w_mean": 7.5,
    "power_w_peak": 9.1,
    "energy": {
        "measurable": True,
        "reason": None,
        "source": "tegrastats VDD_IN",
        "interval_ms": 100.0,
        "samples": 42,
        "inside_samples": 40,
    },
    "peak_memory_mb": 900.0,
    "memory_growth_mb": 0.5,
    "memory_leak": False,
    "system_ram_delta_mb": None,
}


def test_an_energy_figure_the_gate_could_not_judge_is_not_in_the_pr_comment(bundle, measured, tmp_path):
    """A board that did not count its readings inside the window: the energy rule is inconclusive, so the
    comment's table says why instead of the figure beside it (review diff10 F2)."""
    limits = {"max_energy_mj_per_frame": 300.0, "max_power_w": 8.0}
    old_board = {k: v for k, v in ENERGY["energy"].items() if k != "inside_samples"}

    def consistent(d: dict) -> None:  # a record whose figures agree with each other: only the count is missing
        frames = d["e2e"]["images"]
        window = frames / d["fps_e2e"]
        d.update(ENERGY, peak_memory_mb=None, energy_mj_per_frame=7.5 * window / frames * 1000)
        d["energy"] = {**old_board, "frames": frames, "window_s": window}

    edit_json(measured / "bench.json", consistent)
    code, report, md = _gate(bundle, measured, rules_params=_base(tmp_path, gate=limits))
    assert code == 3 and rule_named(report, "energy")["status"] == "inconclusive"
    assert rule_named(report, "results_consistent")["status"] == "pass"
    row = md.split("| FPS (e2e) |")[1].split("\n")[2]  # the figures row under the comment's header
    assert row.count("not judged (energy.inside_samples not recorded") == 2, row  # mJ/frame and W mean


def test_energy_and_memory_rules(bundle, measured, tmp_path):
    # the memory record is this test process's own (its RSS grows over a whole suite): the peak stated here
    # must not be below what was read, or results_consistent rightly calls the record impossible
    memory = json.loads((measured / "bench.json").read_text())["memory"]
    peak = max(900.0, memory["rss_start_mb"] + 10.0, memory["rss_end_mb"] + 10.0)
    limits = {"max_energy_mj_per_frame": 300.0, "max_power_w": 8.0, "max_peak_memory_mb": peak + 100.0}
    base = _base(tmp_path, gate=limits)
    edit_json(measured / "bench.json", lambda d: d.update(ENERGY, peak_memory_mb=peak))
    report = device_gate(bundle, "cpu-ci", measured, rules_params=base)
    assert [rule_named(report, n)["status"] for n in ("energy", "power", "peak_memory", "memory_leak")] == ["pass"] * 4
    edit_json(measured / "bench.json", lambda d: d.update(power_w_mean=9.0, memory_leak=True))
    report = device_gate(bundle, "cpu-ci", measured, rules_params=base)
    assert report["verdict"] == "fail" and {"power", "memory_leak"} <= set(report["failed"])
    text = json.loads((measured / "bench.json").read_text())
    text.update(energy={"measurable": False, "reason": "no powercap interface here"}, power_w_mean=None)
    text.update(energy_mj_per_frame=None, memory_leak=False)
    (measured / "bench.json").write_text(json.dumps(text))
    code, report, md = _gate(bundle, measured, rules_params=base)
    assert code == 3 and rule_named(report, "energy")["status"] == "inconclusive"
    assert "no powercap interface here" in rule_named(report, "energy")["reason"]
    assert "not measurable (no powercap interface here)" in md and "peak MB" in md
    edit_json(measured / "bench.json", lambda d: d.update(energy="measured", energy_mj_per_frame=120.0))
    rule = rule_named(device_gate(bundle, "cpu-ci", measured, rules_params=base), "energy")
    # a record that is no object is malformed, not "not measurable": invalid, naming what was found
    assert (
        rule["status"] == "invalid"
        and rule["reason"] == 'energy: "measured" is a string, expected an object with "measurable"'
    )


def test_energy_regression_against_mains_verdict(bundle, measured, tmp_path):
    base = _base(tmp_path, regression={"max_energy_increase_pct": 10.0})
    edit_json(measured / "bench.json", lambda d: d.update(ENERGY))
    baseline = tmp_path / "main-gate.json"
    baseline.write_text(
        json.dumps(
            {
                "verdict": "pass",
                "profile": "cpu-ci",
                "measured": {"energy_mj_per_frame": 200.0, "energy": ENERGY["energy"]},
            }
        )
    )
    report = device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=base)
    rule = rule_named(report, "regression_energy")
    assert rule["measured"] == 25.0 and rule["status"] == "fail"


def test_device_gate_cli_judges_with_the_base_and_shows_the_prs_params(bundle, measured, tmp_path):
    """The hosted job's command: ``edgeproof device-gate --rules-params BASE --proposed-params PR``."""
    from edgeproof.cli import main

    base = _base(tmp_path, gate={"min_fps": 1.0e5})
    pr = tmp_path / "pr.yaml"
    raw = yaml.safe_load(base.read_text())
    raw["profiles"]["cpu-ci"]["gate"]["min_fps"] = 5.0
    pr.write_text(yaml.safe_dump(raw))
    argv = ["device-gate", "--bundle", str(bundle), "--profile", "cpu-ci", "--results", str(measured)]
    assert main([*argv, "--rules-params", str(base), "--proposed-params", str(pr)]) == 1
    md = (measured / "gate.md").read_text()
    assert "profiles.cpu-ci.gate.min_fps 100000.0 → 5.0: judged at 100000.0; takes effect after merge" in md
    report = json.loads((measured / "gate.json").read_text())
    assert report["proposed_changes"] == [{"key": "profiles.cpu-ci.gate.min_fps", "base": 100000.0, "proposed": 5.0}]
    assert rule_named(report, "same_model_released")["source"] == "bundle build/release.json (same build)"


def test_same_model_released_is_judged_against_the_same_builds_record(bundle, measured, tmp_path, monkeypatch):
    """Issue 17.5: a CI build that retrained (no DVC remote) has another sha256 than the committed
    reports/release.json; the bundle carries its own build's record, and that is the one compared."""
    from edgeproof.cli import main

    edit_json(tmp_path / "reports/release.json", lambda d: d["profiles"]["cpu-ci"].update(sha256="e" * 64))
    monkeypatch.chdir(tmp_path)  # the checkout the gate job runs in, with its committed release.json
    argv = ["device-gate", "--bundle", str(bundle), "--profile", "cpu-ci", "--results", str(measured)]
    main(argv)
    report = json.loads((measured / "gate.json").read_text())
    assert rule_named(report, "same_model_released")["status"] == "pass"
    assert main([*argv, "--release", "reports/release.json"]) == 1  # the committed one, asked for explicitly


@pytest.mark.parametrize(
    "status, verdict",
    [
        (
            {"status": "refused", "rule": "power_mode", "reason": "nvpmodel says 5W, the profile wants MAXN"},
            "inconclusive",
        ),
        ({"status": "crashed", "reason": "CUDA out of memory"}, "inconclusive"),
        ({"status": "refused", "rule": "bundle_verified", "reason": "models/fp32.onnx: sha256 differs"}, "fail"),
        ({"status": "refused", "rule": "providers", "reason": "node placement: 3 node(s) ran on CPU"}, "fail"),
    ],
)
def test_a_refusal_is_the_boards_unless_the_bundle_or_the_model_caused_it(bundle, measured, status, verdict):
    (measured / "measure.json").write_text(json.dumps({"profile": "cpu-ci", **status}))
    report = device_gate(bundle, "cpu-ci", measured)
    assert report["verdict"] == verdict and status["reason"] in report["rules"][-1]["reason"]


def test_a_bundle_the_board_refused_is_one_bundle_verified_row(bundle, measured):
    """The board's refusal (rule bundle_verified) came after the gate's own bundle_verified row as a second
    row of the same name: gate.md listed the rule twice, passed (verified here) and failed (the board's)."""
    refused = {"status": "refused", "rule": "bundle_verified", "reason": "models/fp32.onnx: sha256"}
    (measured / "measure.json").write_text(json.dumps({"profile": "cpu-ci", **refused}))
    code, report, md = _gate(bundle, measured)
    rows = [r for r in report["rules"] if r["name"] == "bundle_verified"]
    assert code == 1 and report["verdict"] == "fail" and report["failed"] == ["bundle_verified"] and len(rows) == 1
    row = rows[0]
    assert row["status"] == "fail" and not row["passed"] and row["measured"] is False
    assert row["reason"].startswith("it verifies here, but on the board (measure.json refused): models/fp32.onnx")
    assert md.count("| bundle_verified |") == 1, md


def test_the_device_line_names_the_measured_device_not_the_cpu_string(bundle, measured):
    edit_json(measured / "bench.json", lambda d: d.update(device_name="NVIDIA Jetson Orin Nano Developer Kit"))
    _code, report, md = _gate(bundle, measured)
    assert report["device"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert "Device: NVIDIA Jetson Orin Nano Developer Kit" in md


# --- holes the property tests (tests/device/test_gate_properties.py) found, as plain examples -------------


def _without(path: str):
    """An edit taking the dotted ``path`` out of a results file."""
    *parents, last = path.split(".")

    def edit(doc: dict) -> None:
        for part in parents:
            doc = doc[part]
        del doc[last]

    return edit


@pytest.mark.parametrize(
    ("edit", "status", "why"),
    [
        (_without("e2e.fps"), "inconclusive", "bench.json has no e2e.fps (fps_e2e's run)"),
        (lambda d: d["e2e"].update(mean=None), "inconclusive", "bench.json has no e2e.mean (e2e.fps is 1000 / it)"),
        (_without("e2e.p95"), "inconclusive", "bench.json has no e2e.p95 (latency_ms.p95's run)"),
        (
            lambda d: d["e2e"].update(fps=str(d["e2e"]["fps"])),
            "invalid",
            "bench.json e2e.fps '",  # the copy's run figure as a string
        ),
    ],
)
def test_the_run_figures_behind_the_speed_figures_are_judged(bundle, measured, edit, status, why):
    """Without ``e2e.fps`` (or ``e2e.mean``, or a percentile) nothing checked the ``fps_e2e`` and ``latency_ms``
    the speed rules judge, yet results_consistent passed."""
    edit_json(measured / "bench.json", edit)
    report = device_gate(bundle, "cpu-ci", measured)
    rule = rule_named(report, "results_consistent")
    assert report["verdict"] == ("fail" if status == "invalid" else "inconclusive")
    assert rule["status"] == status and rule["reason"].startswith(why)


@pytest.mark.parametrize(
    ("edit", "status", "why"),
    [
        (_without("e2e.source"), "inconclusive", "bench.json has no e2e.source (what the run timed)"),
        (
            lambda d: d["e2e"].update(source="clip:video.mp4"),
            "invalid",
            "bench.json e2e.source 'clip:video.mp4' is not what settings.e2e_input 'images' times",
        ),
    ],
)
def test_what_the_end_to_end_run_timed_is_the_recorded_settings(bundle, measured, edit, status, why):
    """Over image files fps_e2e must be 1000 / e2e.mean; an e2e.source taken out or changed skipped that check
    unsaid, and results_consistent passed."""
    edit_json(measured / "bench.json", edit)
    rule = rule_named(device_gate(bundle, "cpu-ci", measured), "results_consistent")
    assert rule["status"] == status and rule["reason"].startswith(why)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"power_w_peak": "3.0"}, 'bench.json power_w_peak: "3.0" is a string, expected a number'),
        ({"power_w_peak": -1.0}, "bench.json power_w_peak: -1.0 is outside the possible range"),
        ({"memory.rss_end_mb": float("nan")}, "bench.json memory.rss_end_mb: NaN is not a finite number"),
        ({"memory.rss_start_mb": -5.0}, "bench.json memory.rss_start_mb: -5.0 is outside the possible range"),
    ],
)
def test_an_impossible_energy_or_memory_reading_no_rule_judges_is_invalid(bundle, measured, tmp_path, fields, why):
    """power_w_peak and the resident memory readings are shown and cross-checked, but no threshold reads them:
    an impossible one (a string, negative, NaN) was skipped by the cross-check and the gate passed."""
    set_measured_energy(measured / "bench.json", 3.0, memory_leak=False)

    def edit(d: dict) -> None:
        for key, value in fields.items():
            *parents, last = key.split(".")
            (d[parents[0]] if parents else d)[last] = value

    edit_json(measured / "bench.json", edit)
    report = device_gate(bundle, "cpu-ci", measured)
    rule = rule_named(report, "results_consistent")
    assert report["verdict"] == "fail" and rule["status"] == "invalid" and rule["reason"].startswith(why)


def test_conditions_during_without_any_reading_leaves_conditions_recorded_inconclusive(bundle, measured):
    """``during: {}`` is an object, so conditions_recorded passed, though it holds none of the readings."""
    edit_json(measured / "conditions.json", lambda d: d.update(during={}))
    report = device_gate(bundle, "cpu-ci", measured)
    rule = rule_named(report, "conditions_recorded")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert rule["reason"].startswith("conditions.json during: no max_temp_c, min_clock_ratio, oc_counters_before")


@pytest.mark.parametrize(("key", "value"), [("image_id", []), ("category_id", {"id": 7})])
def test_a_detection_id_that_is_a_list_or_an_object_is_invalid_not_a_crash(bundle, measured, key, value):
    """``[]`` as an image_id raised TypeError (unhashable) inside the device gate: its report was one rule,
    judged, with the exception, instead of the detections rule naming the detection."""
    detections = json.loads((measured / "detections.json").read_text())
    detections[0][key] = value
    (measured / "detections.json").write_text(json.dumps(detections))
    report = device_gate(bundle, "cpu-ci", measured)
    rule = rule_named(report, "detections")
    assert report["verdict"] == "fail" and rule["status"] == "invalid"
    what = "an image" if key == "image_id" else "a category"
    assert rule["reason"] == f"detection 0: {key} {value!r} is not {what} of the bundle"


def test_an_end_to_end_run_edited_faster_than_its_model_pass_is_invalid(bundle, measured):
    """review launder12 #6: a 10x speed edit of the e2e run (fps_e2e, e2e.fps, latency_ms made to match) passed
    although the model-only run beside it is 8x slower; the board's bench has no rounds, which go unchecked."""

    def faster(d: dict) -> None:
        assert "rounds_fps_e2e" not in d and d["model"]["batch"] == 1
        mean = d["model"]["mean"] / 10
        d["e2e"].update(mean=mean, fps=round(1000 / mean, 3))
        d["fps_e2e"], d["latency_ms"]["mean"] = d["e2e"]["fps"], mean

    assert rule_named(device_gate(bundle, "cpu-ci", measured), "results_consistent")["status"] == "pass"
    edit_json(measured / "bench.json", faster)
    report = device_gate(bundle, "cpu-ci", measured)
    rule = rule_named(report, "results_consistent")
    assert report["verdict"] == "fail" and rule["status"] == "invalid", rule
    assert "is under 1/3 of latency_model_ms.mean" in rule["reason"], rule["reason"]
