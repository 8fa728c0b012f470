"""The headline metrics (issue 14): one small file, stable names, no identities, written even when the gate fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from stages import gate as gate_stage

from edgeproof.gate import check_gate
from edgeproof.headline import HEADLINE_KEYS, headline_from_files, headline_metrics
from edgeproof.io import sha256_file, write_json
from edgeproof.profiles import DeviceGate
from edgeproof.tracking.record import HEADLINE, scalar_metrics
from edgeproof.verdict.rules import FIGURE_TIES
from edgeproof.verdict.shown import bench_figures
from tests.unit.test_gate import SHA as GATED
from tests.unit.test_gate import _bench as gated_bench
from tests.unit.test_gate import _eval as gated_eval

REPO = Path(__file__).resolve().parents[2]
EVAL = {"map50_95": 0.780117, "map50": 0.970563, "map75": 0.949338, "model_sha256": "x", "per_class": []}
BENCH = {"fps_e2e": 143.2414, "latency_ms": {"p50": 6.1, "p95": 6.9371, "p99": 8.0}, "model_sha256": "x"}
TRAIN = {"epochs": 35, "best_epoch": 33, "run_fingerprint": "dee40ec13e31eb7d"}


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "fp32.onnx"
    path.write_bytes(b"\0" * 10_116_532)
    return path


def test_headline_names_values_and_order(model):
    h = headline_metrics({**EVAL, "n_images": 50}, BENCH, {"passed": True}, TRAIN, model)
    assert tuple(h) == HEADLINE_KEYS
    assert h == {
        "mAP50-95": 0.780117,
        "mAP50": 0.970563,
        "mAP75": 0.949338,
        "val_images": 50,  # the val size beside the mAP
        "fps": 143.2,
        "latency_p95_ms": 6.94,
        "gate_passed": True,
        "release_variant": "fp32",
        "model_mb": 10.12,
        "epochs": 35,
        "measured_on": None,  # BENCH has no device facts
    }


@pytest.mark.parametrize(
    ("n_images", "shown", "why"),
    [
        (50, 50, None),
        (None, None, None),  # an evaluation that does not say: null, nothing withheld
        (50.0, None, "impossible: n_images 50.0 is not a count"),
        (True, None, "impossible: n_images True is not a count"),
        (-3, None, "impossible: n_images -3 is not a count"),
    ],
)
def test_the_val_size_beside_the_map_is_a_count_or_null(model, n_images, shown, why):
    h = headline_metrics({**EVAL, "n_images": n_images}, BENCH, {"passed": True}, TRAIN, model)
    assert h["val_images"] == shown and (h.get("withheld") or {}).get("val_images") == why


def test_release_variant_comes_from_release_json(model):
    release = {"build_profile": "cpu-ci", "release_variant": "int8", "variants": {}}
    assert headline_metrics(EVAL, BENCH, {"passed": False}, TRAIN, model, release=release)["release_variant"] == "int8"
    assert headline_metrics(EVAL, BENCH, {"passed": False}, TRAIN, model, release={})["release_variant"] == "fp32"


def test_without_release_json_the_variant_is_the_gated_model_s_or_null(tmp_path):
    """Gating models/optimized/int8.onnx with --model/--eval/--bench wrote release_variant fp32 (records 10)."""
    for name, variant in (("int8.onnx", "int8"), ("int8_trt.onnx", "int8_trt"), ("best.onnx", None)):
        (tmp_path / name).write_bytes(b"\0")
        assert headline_metrics(EVAL, BENCH, {}, TRAIN, tmp_path / name)["release_variant"] == variant, name


@pytest.mark.parametrize(
    ("evaluation", "bench", "key"),
    [
        ({**EVAL, "map50": 96.46}, BENCH, "mAP50"),  # a percentage
        ({**EVAL, "map50_95": -0.1}, BENCH, "mAP50-95"),
        (EVAL, {**BENCH, "fps_e2e": -5.0}, "fps"),
        (EVAL, {**BENCH, "fps_e2e": 1e300}, "fps"),
        (EVAL, {**BENCH, "latency_ms": {"p95": 0.0}}, "latency_p95_ms"),
    ],
)
def test_a_figure_the_gate_holds_impossible_is_null_in_the_headline(model, evaluation, bench, key):
    """fps -5 and mAP50 96.46 were judged invalid by the gate, yet shown (and logged to MLflow) (records 11)."""
    assert headline_metrics(evaluation, bench, {}, TRAIN, model)[key] is None


def test_an_impossible_figure_says_why_it_is_null(model):
    h = headline_metrics(EVAL, {**BENCH, "fps_e2e": -5.0}, {"passed": False}, TRAIN, model)
    assert h["fps"] is None and h["withheld"] == {
        "fps": "impossible: fps_e2e: -5.0 is outside the possible range (0, 100000]"
    }
    assert "withheld" not in headline_metrics(EVAL, {**BENCH, "fps_e2e": None}, {}, TRAIN, model)  # missing: null


OTHER = "b" * 64
BENCH_FIGURES, EVAL_FIGURES = {"fps", "latency_p95_ms"}, {"mAP50-95", "mAP50", "val_images"}


@pytest.mark.parametrize(
    ("evaluation", "bench", "withheld", "why"),
    [
        (gated_eval(), gated_bench(fps=999.0, sha=OTHER), BENCH_FIGURES, "same_model_benchmarked: fail"),
        (gated_eval(), {**gated_bench(), "model_sha256": None}, BENCH_FIGURES, "same_model_benchmarked: inconclusive"),
        (gated_eval(sha=OTHER), gated_bench(), EVAL_FIGURES, "same_model_evaluated: fail"),
        (gated_eval(), {**gated_bench(), "fps_e2e": 999.0}, BENCH_FIGURES, "results_consistent: invalid"),
        (
            gated_eval(),
            {**gated_bench(), "device": {"cpu_model": "Other CPU"}},
            BENCH_FIGURES,
            "results_consistent: invalid",
        ),
        (
            {**gated_eval(map50=0.99), "per_class": [{"ap50": 0.9, "ap": 0.6}]},
            gated_bench(),
            EVAL_FIGURES,
            "results_consistent: invalid",
        ),
        ({**gated_eval(), "map50_95": 0.7}, gated_bench(), EVAL_FIGURES, "cross_check: invalid"),
    ],
)
def test_a_figure_the_failed_gate_contradicts_is_null_with_the_gate_rule_that_does(
    model, evaluation, bench, withheld, why
):
    """fps 999 of a bench.json about another file, or edited against its own e2e run, is possible: the
    headline (and MLflow) showed it as the model's beside gate_passed false."""
    peers = {"other/bench.json": gated_bench()}  # the release's other variant, measured on "Test CPU"
    report = check_gate(DeviceGate(), evaluation, bench, GATED, sources=("e.json", "b.json"), peers=peers)
    h = headline_metrics(evaluation, bench, report, TRAIN, model)
    assert h["gate_passed"] is False
    assert {k for k in (*BENCH_FIGURES, *EVAL_FIGURES) if h[k] is None} == withheld
    assert h["withheld"] == {k: f"gate rule {why}" for k in withheld}
    assert (h["measured_on"] is None) == (withheld == BENCH_FIGURES)  # that machine measured another file
    shown = EVAL_FIGURES if withheld == BENCH_FIGURES else BENCH_FIGURES  # the other file's figures stand
    assert all(h[k] is not None for k in shown)


def test_a_figure_that_misses_its_threshold_is_the_model_s_own_and_shown(model):
    report = check_gate(DeviceGate(min_fps=100.0, min_map50=0.95), gated_eval(), gated_bench(), GATED)
    assert report["failed"] == ["fps", "map50"]
    h = headline_metrics(gated_eval(), gated_bench(), report, TRAIN, model)
    assert (h["fps"], h["mAP50"], h["measured_on"]) == (30.0, 0.9, "Test") and "withheld" not in h


def test_a_figure_rounded_onto_its_threshold_keeps_the_digits_that_decide(model):
    # fps 10.04 passes "> 10": to 1 decimal it would read 10.0 (which fails) beside gate_passed true
    report = check_gate(
        DeviceGate(min_fps=10.0, max_latency_p95_ms=100.0), gated_eval(), gated_bench(10.04, 99.997), GATED
    )
    assert report["passed"]
    h = headline_metrics(gated_eval(), gated_bench(10.04, 99.997), report, TRAIN, model)
    assert (h["fps"], h["latency_p95_ms"], h["gate_passed"]) == (10.04, 99.997, True)
    h = headline_metrics(gated_eval(), gated_bench(10.04, 99.997), {"passed": True}, TRAIN, model)
    assert (h["fps"], h["latency_p95_ms"]) == (10.0, 100.0)  # no rule judged them: the usual digits


def test_missing_or_impossible_values_show_as_null_not_as_numbers(model):
    h = headline_metrics({"map50": float("nan")}, {"fps_e2e": "fast"}, {}, {"epochs": True}, model)
    assert h["mAP50"] is None and h["mAP50-95"] is None and h["fps"] is None and h["latency_p95_ms"] is None
    assert h["epochs"] is None and h["gate_passed"] is False


RELEASED = {"jetson-nano": "a" * 64, "jetson-orin-nano": "b" * 64}


def _device_files(tmp_path: Path, fps: dict[str, float]) -> Path:
    """The gate stage's inputs with a device bench.json and gate.json per profile, each about the file
    release.json releases to it; the release.json path."""
    for name, value in fps.items():
        sha = RELEASED[name]
        bench = {**BENCH, "fps_e2e": value, "device": {"host": "h"}, "model_sha256": sha}
        write_json(tmp_path / "device" / name / "bench.json", bench)
        gate = {"verdict": "pass", "passed": True, "model_sha256": sha, "conditions": {"throttled": False}}
        write_json(tmp_path / "device" / name / "gate.json", gate)
    write_json(tmp_path / "eval.json", EVAL)
    write_json(tmp_path / "bench.json", BENCH)
    write_json(tmp_path / "train.json", TRAIN)
    release = {"build_profile": "cpu-ci", "profiles": {p: {"sha256": sha} for p, sha in RELEASED.items()}}
    return write_json(tmp_path / "release.json", release)


def _from_files(tmp_path: Path, model: Path, release: Path) -> dict:
    t = tmp_path
    return headline_from_files(
        t / "eval.json", t / "bench.json", {"passed": True}, t / "train.json", model, release, t / "device"
    )


def test_device_profiles_from_on_device_reports(tmp_path, model):
    release = _device_files(tmp_path, {"jetson-nano": 19.5, "jetson-orin-nano": 210.0})
    h = _from_files(tmp_path, model, release)
    assert h["devices"] == {
        "jetson-nano": {"fps": 19.5, "latency_p95_ms": 6.94},
        "jetson-orin-nano": {"fps": 210.0, "latency_p95_ms": 6.94},
    }
    assert h["release_variant"] == "fp32"


def _invalid_rule(path: Path) -> None:
    gate = json.loads(path.read_text())
    gate.update(verdict="fail", passed=False, rules=[{"name": "results_consistent", "status": "invalid"}])
    write_json(path, gate)


def _throttled(path: Path, conditions: dict | None) -> None:
    gate = json.loads(path.read_text())
    write_json(path, {**gate, "verdict": "inconclusive", "passed": False, "conditions": conditions})


HOT = "temperature cpu-thermal reached 99.0 C > max_temp_c 95"


def _untied_rule(path: Path, name: str) -> None:
    gate = json.loads(path.read_text())
    rules = [{"name": "fps", "status": "pass"}, {"name": name, "status": "inconclusive"}]
    write_json(path, {**gate, "verdict": "inconclusive", "passed": False, "rules": rules})


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (
            lambda d: write_json(d / "bench.json", {**BENCH, "fps_e2e": 999.0, "model_sha256": "ab" * 32}),
            "not the file",
        ),
        (lambda d: (d / "gate.json").unlink(), "no readable device verdict beside it"),
        (lambda d: write_json(d / "gate.json", {"verdict": "pass", "model_sha256": "ab" * 32}), "judged model_sha256"),
        (
            lambda d: write_json(d / "gate.json", {"verdict": "fail", "passed": "false", "model_sha256": "b" * 64}),
            "passed 'false' disagrees with verdict",
        ),
        (lambda d: _invalid_rule(d / "gate.json"), "rules results_consistent invalid"),
        (  # measured on a machine the profile's match does not take: possible, not this board's figures
            lambda d: _untied_rule(d / "gate.json", "machine_match"),
            "rules machine_match inconclusive: not the released file's figures on this board",
        ),
        (lambda d: _untied_rule(d / "gate.json", "measured_as_judged"), "rules measured_as_judged inconclusive"),
        (lambda d: write_json(d / "gate.json", []), "expected a JSON object, found list"),
        (  # a hot board's fps, mJ/frame and peak memory say nothing about the model (device/conditions.py)
            lambda d: _throttled(d / "gate.json", {"throttled": True, "reasons": [HOT]}),
            f"the run throttled ({HOT}): its figures say nothing about the model",
        ),
        (lambda d: _throttled(d / "gate.json", {"reasons": []}), "conditions.throttled is missing"),
        (lambda d: _throttled(d / "gate.json", {"throttled": "no"}), "conditions.throttled is 'no', not false"),
    ],
)
def test_device_figures_about_another_file_or_without_a_valid_verdict_are_left_out(tmp_path, model, caplog, edit, why):
    """A device bench.json of an older build's file (fps 999) reached the headline and MLflow (records 5)."""
    release = _device_files(tmp_path, {"jetson-nano": 19.5, "jetson-orin-nano": 210.0})
    edit(tmp_path / "device" / "jetson-orin-nano")
    h = _from_files(tmp_path, model, release)
    assert h["devices"] == {"jetson-nano": {"fps": 19.5, "latency_p95_ms": 6.94}}
    bench = tmp_path / "device" / "jetson-orin-nano" / "bench.json"
    assert f"the device figures of {bench} are left out" in caplog.text and why in caplog.text
    assert "devices" not in _from_files(tmp_path, model, tmp_path / "absent-release.json")  # nothing released


def test_the_rules_that_tie_device_figures_are_rules_the_device_gate_judges():
    """A renamed rule would silently stop leaving another board's figures out."""
    code = "".join(p.read_text() for p in (REPO / "src/edgeproof/verdict").glob("*.py") if p.name != "rules.py")
    assert [name for name in sorted(FIGURE_TIES) if f'"{name}"' not in code] == []


def _gate_stage_argv(t: Path, model: Path, device: Path, min_fps: float | None = None) -> list[str]:
    """The gate stage's arguments over files written into ``t``: params without tracking (and ``min_fps`` when
    given), an eval and a bench of ``model``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["track"]["enabled"] = False
    if min_fps is not None:
        params["profiles"]["cpu-ci"]["gate"]["min_fps"] = min_fps
    (t / "params.yaml").write_text(yaml.safe_dump(params))
    sha = sha256_file(model)
    write_json(t / "eval.json", {**EVAL, "model_sha256": sha})
    write_json(t / "bench.json", {**BENCH, "model_sha256": sha})
    argv = ["--params", str(t / "params.yaml"), "--model", str(model), "--eval", str(t / "eval.json")]
    argv += ["--bench", str(t / "bench.json"), "--report-json", str(t / "gate.json"), "--report-md", str(t / "gate.md")]
    argv += ["--headline", str(t / "headline.json"), "--train-metrics", str(t / "train.json")]
    return [*argv, "--device-reports", str(device)]


def test_a_device_bench_that_is_no_object_stops_the_stage_before_it_writes(tmp_path, model, capsys):
    """bench.json [] crashed the stage with exit 1 ("failed") after gate.json said passed (records 8)."""
    _device_files(tmp_path, {"jetson-nano": 19.5})
    (tmp_path / "device" / "jetson-nano" / "bench.json").write_text("[]")
    t = tmp_path
    argv = _gate_stage_argv(t, model, t / "device")
    (t / "headline.json").write_text('{"marker": 1}\n')
    assert gate_stage.main(argv) == 2
    bench = t / "device" / "jetson-nano" / "bench.json"
    assert f"gate stage failed: {bench}: expected a JSON object, found list" in capsys.readouterr().err
    assert not (t / "gate.json").exists() and not (t / "gate.md").exists()  # neither written ...
    assert json.loads((t / "headline.json").read_text()) == {"marker": 1}  # ... nor the headline


def _shown(bench: dict) -> dict:
    """What the headline is given of a device's ``bench.json`` its verdict vouches for (``device_benches``)."""
    return bench_figures(bench)[0]


def _leaves(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_no_identity_or_byte_size_in_the_headline_and_at_most_16_columns(model):
    devices = {p: _shown(BENCH) for p in ("cpu-ci", "jetson-nano", "jetson-orin-nano")}  # params.yaml's profiles
    leaves = dict(_leaves(headline_metrics(EVAL, BENCH, {"passed": True}, TRAIN, model, devices=devices)))
    assert len(leaves) <= 17  # 11 headline keys + fps and p95 of 3 device profiles
    for key, value in leaves.items():
        assert not re.search(r"sha|bytes|host|fingerprint|path|seconds", key), key
        assert not (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{16,}", value)), key


def test_dvc_yaml_declares_only_the_headline_as_metrics_and_keeps_every_report_in_git():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    declared = [next(iter(m)) for s in stages.values() for m in s.get("metrics", [])]
    assert declared == ["metrics/headline.json"]
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            if path.endswith(".json") and path.startswith(("metrics/", "reports/gate", "reports/release")):
                assert isinstance(out, dict) and out[path].get("cache") is False, f"{name}: {path} must be cache: false"


def test_a_failing_gate_still_writes_the_headline(tmp_path, model):
    t = tmp_path
    argv = _gate_stage_argv(t, model, t / "no-device-reports", min_fps=1.0e9)
    write_json(t / "train.json", TRAIN)
    assert gate_stage.main(argv) == 1
    headline = json.loads((t / "headline.json").read_text())
    assert list(headline) == [*HEADLINE_KEYS, "withheld"]  # file order = column order in `dvc exp show`
    assert headline["gate_passed"] is False and headline["fps"] == 143.2 and headline["epochs"] == 35  # fps failed
    # EVAL has no cross_check: the gate holds its mAP invalid, so the headline does not show it as the model's
    assert headline["mAP50"] is None and headline["withheld"]["mAP50"] == "gate rule cross_check: invalid"
    assert set(headline["withheld"]) == {"mAP50-95", "mAP50", "mAP75"}
    logged = scalar_metrics({HEADLINE: headline})  # what the MLflow run logs of it: no mAP, no reason
    assert "fps" in logged and not any(k.startswith(("mAP", "withheld")) for k in logged)


def test_device_energy_and_memory_reach_the_headline_only_when_measured(model):
    """Issue 20: devices.<profile>.energy_mj_per_frame / peak_memory_mb, never an estimate in their place."""
    memory = {"memory": {"measurable": True}}
    measured = {
        **BENCH,
        **memory,
        "energy_mj_per_frame": 412.34567,
        "peak_memory_mb": 1234.56,
        "energy": {"measurable": True, "interval_ms": 100.0, "samples": 40, "inside_samples": 38},
    }
    not_here = {
        **BENCH,
        **memory,
        "energy_mj_per_frame": None,
        "peak_memory_mb": 300.0,
        "energy": {"measurable": False},
    }
    devices = {"jetson-nano": _shown(measured), "cpu-ci": _shown(not_here)}
    h = headline_metrics(EVAL, BENCH, {"passed": True}, TRAIN, model, devices=devices)
    assert h["devices"]["jetson-nano"] == {
        "fps": 143.2,
        "latency_p95_ms": 6.94,
        "energy_mj_per_frame": 412.346,
        "peak_memory_mb": 1234.6,
    }
    assert "energy_mj_per_frame" not in h["devices"]["cpu-ci"] and h["devices"]["cpu-ci"]["peak_memory_mb"] == 300.0


@pytest.mark.parametrize(
    ("energy", "why"),
    [
        (
            {"measurable": True, "interval_ms": 100.0, "samples": 40},
            "energy.inside_samples not recorded",
        ),  # a board before the count
        ({"measurable": True, "interval_ms": 100.0, "samples": 40, "inside_samples": 0}, "energy.inside_samples: 0"),
        ({"measurable": True, "interval_ms": 100.0}, "energy.samples: None"),
    ],
)
def test_an_energy_figure_the_energy_rules_could_not_judge_is_not_shown(energy, why):
    """The gate's energy rules are inconclusive or invalid on such a record: the headline and the chart
    (one function, verdict/shown.py) must not show its figure as the board's (review diff10)."""
    bench = {**BENCH, "memory": {"measurable": True}, "peak_memory_mb": 300.0}
    figures, missing = bench_figures({**bench, "energy_mj_per_frame": 412.3, "energy": energy})
    assert "energy_mj_per_frame" not in figures and figures["peak_memory_mb"] == 300.0
    assert missing["energy_mj_per_frame"].startswith("not judged (") and why in missing["energy_mj_per_frame"]


def test_the_headline_names_the_profile_and_machine_that_measured_it(model):
    """Committed figures come from the reference machine: a fresh run elsewhere shows why its fps differ."""
    device = {"cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "cpu_cores": 2, "jetson": None}
    release = {"release_variant": "int8", "build_profile": "cpu-ci"}
    h = headline_metrics(EVAL, {**BENCH, "device": device}, {"passed": True}, TRAIN, model, release=release)
    assert h["measured_on"] == "cpu-ci: Intel Xeon Platinum 8375C, 2 cores"
    jetson = {"cpu_model": "ARMv8 Processor rev 1 (v8l)", "cpu_cores": 4, "jetson": {"model": "NVIDIA Jetson Nano"}}
    assert headline_metrics(EVAL, {**BENCH, "device": jetson}, {}, TRAIN, model)["measured_on"] == (
        "NVIDIA Jetson Nano, 4 cores"
    )
    assert headline_metrics(EVAL, BENCH, {}, TRAIN, model)["measured_on"] is None  # unknown, never guessed


def test_a_device_figure_the_board_did_not_measure_or_could_not_have_is_left_out(model):
    """250 mJ/frame beside energy.measurable false, and peak_memory_mb -3.0, reached the headline (and MLflow)."""
    unmeasured = {**BENCH, "energy_mj_per_frame": 250.0, "energy": {"measurable": False, "reason": "no rail"}}
    impossible = {**BENCH, "peak_memory_mb": -3.0, "memory": {"measurable": True}}
    no_record = {**BENCH, "peak_memory_mb": 900.0}
    devices = {"jetson-nano": _shown(unmeasured), "jetson-orin-nano": _shown(impossible), "cpu-ci": _shown(no_record)}
    h = headline_metrics(EVAL, BENCH, {"passed": True}, TRAIN, model, devices=devices)
    assert all(set(d) == {"fps", "latency_p95_ms"} for d in h["devices"].values())
