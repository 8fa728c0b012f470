"""What the device gate needs to see before it passes, as a reviewer forged it away.

A measurement passes only on the evidence it was made as the base's rules require: the board's
readings during the run (a missing ``during`` section, temperature or load reading is inconclusive,
never a clean run), and figures a board can physically report (5e-324 mJ per frame is invalid,
not well under the limit), and files that tell one story: a bench.json that disagrees with the bundle,
its own settings or the board's other files is invalid, naming the key and both values.
"""

from __future__ import annotations

import pytest

from edgeproof.device.power_window import MIN_POWER_READINGS, window_power
from edgeproof.verdict.device import device_gate
from tests.device.conftest import base_params, edit_json, rule_named, set_measured_energy

STRICT = {"gate": {"min_fps": 1.0}, "require_max_clocks": True, "power_mode": "MAXN", "max_load_per_cpu": 0.5}


def test_conditions_without_their_readings_are_inconclusive_never_a_clean_run(bundle, measured, tmp_path):
    strict = base_params(tmp_path, STRICT)
    assert device_gate(bundle, "cpu-ci", measured, rules_params=strict)["verdict"] == "inconclusive"
    edit_json(measured / "conditions.json", lambda d: d.pop("during"))
    report = device_gate(bundle, "cpu-ci", measured, rules_params=strict)
    rule = rule_named(report, "conditions_recorded")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive" and "'during'" in rule["reason"]
    assert device_gate(bundle, "cpu-ci", measured)["verdict"] == "inconclusive"  # the bundle's own rules too
    edit_json(measured / "conditions.json", lambda d: d.update(during=[1]))
    rule = rule_named(device_gate(bundle, "cpu-ci", measured), "conditions_recorded")
    assert rule["status"] == "invalid" and "during: [1] is a list, expected an object" in rule["reason"]


def test_a_load_limit_without_a_load_reading_is_inconclusive(bundle, measured, tmp_path):
    limit = base_params(tmp_path, {"max_load_per_cpu": 64.0})  # the highest cap: any test machine's load
    assert device_gate(bundle, "cpu-ci", measured, rules_params=limit)["verdict"] == "pass"
    edit_json(measured / "conditions.json", lambda d: (d["machine"].pop("load_avg_1m"), d.update(reasons=[])))
    report = device_gate(bundle, "cpu-ci", measured, rules_params=limit)
    assert report["verdict"] == "inconclusive"
    assert any("no load reading" in r for r in report["conditions"]["reasons"])


def test_a_jetson_profile_without_temperature_readings_is_inconclusive(bundle, measured, tmp_path):
    edit_json(
        measured / "conditions.json",
        lambda d: d["during"].update(max_temp_c={}, min_clock_ratio={"cpu": {"ratio": 1.0, "cur": 1, "max": 1}}),
    )
    clocks = base_params(tmp_path, {"require_max_clocks": True})
    report = device_gate(bundle, "cpu-ci", measured, rules_params=clocks)
    assert report["verdict"] == "inconclusive"
    assert any("no temperature readings" in r for r in report["conditions"]["reasons"])
    # a cloud VM exposes no thermal zones: a profile that names no Jetson and wants no board readings passes
    assert device_gate(bundle, "cpu-ci", measured)["verdict"] == "pass"
    edit_json(measured / "conditions.json", lambda d: d["during"].pop("max_temp_c"))  # not recorded at all
    report = device_gate(bundle, "cpu-ci", measured)
    assert report["verdict"] == "inconclusive" and any("no max_temp_c" in r for r in report["conditions"]["reasons"])


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"energy_mj_per_frame": 5e-324}, "energy_mj_per_frame"),
        ({"power_w_mean": 1e-300}, "power_w_mean"),
        ({"peak_memory_mb": 1e-300}, "peak_memory_mb"),
    ],
)
def test_energy_power_and_memory_below_a_physical_floor_are_invalid(bundle, measured, tmp_path, fields, key):
    limits = {"max_energy_mj_per_frame": 100.0, "max_power_w": 50.0, "max_peak_memory_mb": 5000.0}
    rules = base_params(tmp_path, {"gate": {"min_fps": 1.0, **limits}})
    set_measured_energy(measured / "bench.json", 3.0, memory_leak=False)
    assert device_gate(bundle, "cpu-ci", measured, rules_params=rules)["verdict"] == "pass"
    edit_json(measured / "bench.json", lambda d: d.update(fields))
    report = device_gate(bundle, "cpu-ci", measured, rules_params=rules)
    bad = [r for r in report["rules"] if r["status"] == "invalid"]
    assert report["verdict"] == "fail" and len(bad) == 1 and bad[0]["reason"].startswith(f"{key}: ")
    assert "outside the possible range" in bad[0]["reason"]


@pytest.mark.parametrize("samples", [0, 1, None, "12", True, 2.5])
def test_energy_that_says_measurable_without_two_power_readings_is_invalid(bundle, measured, tmp_path, samples):
    rules = base_params(tmp_path, {"gate": {"min_fps": 1.0, "max_energy_mj_per_frame": 100.0}})
    set_measured_energy(measured / "bench.json", 3.0)
    assert device_gate(bundle, "cpu-ci", measured, rules_params=rules)["verdict"] == "pass"
    edit_json(measured / "bench.json", lambda d: d["energy"].update(samples=samples))
    report = device_gate(bundle, "cpu-ci", measured, rules_params=rules)
    rule = rule_named(report, "energy")
    assert report["verdict"] == "fail" and rule["status"] == "invalid"
    assert rule["reason"].startswith(f"energy.samples: {samples!r} with energy.measurable true")


def test_the_energy_rule_and_the_cross_check_ask_one_count_of_power_readings(bundle, measured, tmp_path):
    """The energy rule took 2 readings as enough whatever the window (its own copy of the count), while
    results_consistent asked what the window needs: 2 readings over a window that should hold hundreds
    passed the energy rule. One helper for both, one reason."""
    rules = base_params(tmp_path, {"gate": {"min_fps": 1.0, "max_energy_mj_per_frame": 100.0}})
    set_measured_energy(measured / "bench.json", 3.0)
    edit_json(measured / "bench.json", lambda d: d["energy"].update(interval_ms=0.01))  # hundreds of readings due
    report = device_gate(bundle, "cpu-ci", measured, rules_params=rules)
    energy, consistent = rule_named(report, "energy"), rule_named(report, "results_consistent")
    assert energy["status"] == consistent["status"] == "invalid"
    assert energy["reason"].startswith("energy.samples: 2 with energy.measurable true, expected an integer >= ")
    assert energy["reason"] in consistent["reason"] and "at interval_ms 0.01" in energy["reason"]


def test_the_board_calls_energy_measurable_only_on_two_readings():
    assert window_power([(0.5, 5000.0)], 0.4, 0.6, interval_s=0.1) is None  # one reading held flat: a guess
    stats = window_power([(0.3, 5000.0), (0.5, 5000.0)], 0.4, 0.6, interval_s=0.4)  # one before, one inside
    assert stats is not None and stats["samples"] == MIN_POWER_READINGS and stats["inside_samples"] == 1


def _measure_json(d: dict) -> None:
    d.update(exit_code=2, throttled=True)


@pytest.mark.parametrize(
    ("file", "edit", "said"),
    [
        ("bench.json", lambda d: d.update(input_size=[640, 640]), "input_size [640, 640] differs from deploy.json"),
        ("bench.json", lambda d: d.update(variant="int8"), "bench.json variant 'int8' differs from manifest.json"),
        ("bench.json", lambda d: d.update(model_path="models/int8.onnx"), "model_path 'models/int8.onnx' differs"),
        ("bench.json", lambda d: d.update(fps_e2e=99999.0), "fps_e2e 99999.0 differs from e2e.fps"),
        ("bench.json", lambda d: d["e2e"].update(samples=1), "e2e.samples 1 differs from settings.e2e_images"),
        ("bench.json", lambda d: d["model"].update(samples=1), "model.samples 1 differs from settings.runs"),
        ("bench.json", lambda d: d["latency_ms"].update(p95=0.01), "latency_ms.p90"),
        ("bench.json", lambda d: d["e2e"].update(p99=1e9), "e2e.p99 1000000000.0 is above e2e.max"),
        ("measure.json", _measure_json, "measure.json exit_code 2 differs"),
        ("conditions.json", lambda d: d.update(throttled="yes"), "conditions.json throttled 'yes' is not a boolean"),
        ("eval.json", lambda d: d.update(profile="jetson-nano"), "eval.json profile 'jetson-nano' differs"),
    ],
)
def test_a_bench_json_that_disagrees_with_its_run_or_the_bundle_is_invalid(bundle, measured, file, edit, said):
    assert rule_named(device_gate(bundle, "cpu-ci", measured), "results_consistent")["status"] == "pass"
    edit_json(measured / file, edit)
    report = device_gate(bundle, "cpu-ci", measured)
    rule = rule_named(report, "results_consistent")
    assert report["verdict"] == "fail" and rule["status"] == "invalid" and said in rule["reason"]


def test_fps_and_its_latencies_must_tell_one_story(bundle, measured):
    def faster(d: dict) -> None:  # both FPS copies raised together; the latencies still say otherwise
        d.update(fps_e2e=d["e2e"]["fps"] * 10)
        d["e2e"].update(fps=d["fps_e2e"])

    edit_json(measured / "bench.json", faster)
    rule = rule_named(device_gate(bundle, "cpu-ci", measured), "results_consistent")
    assert rule["status"] == "invalid" and "differs from 1000 / e2e.mean" in rule["reason"]


def test_a_named_baseline_that_is_not_there_is_not_main_having_none(bundle, measured, tmp_path):
    rules = base_params(tmp_path, {"regression": {"max_fps_drop_pct": 10.0}})
    report = device_gate(bundle, "cpu-ci", measured, rules_params=rules)  # main has none yet: it can bootstrap
    assert report["verdict"] == "pass" and "no baseline on main: regression not judged" in report["notes"]
    report = device_gate(bundle, "cpu-ci", measured, baseline=tmp_path / "gone.json", rules_params=rules)
    rule = rule_named(report, "regression_fps")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert "gone.json is missing or not valid JSON" in rule["reason"]


def test_a_baseline_that_could_not_be_fetched_leaves_the_val_set_unjudged_even_without_regression_rules(
    bundle, measured, tmp_path
):
    """same_val_set guards accuracy against ground truth a pull request supplies: with main's baseline not
    fetched it cannot be judged, so a profile that sets no regression limits is inconclusive too (it passed)."""
    rules = base_params(tmp_path, {})
    report = device_gate(bundle, "cpu-ci", measured, rules_params=rules, baseline_unavailable="look-up failed")
    assert report["verdict"] == "inconclusive", report.get("reason")
    rule = rule_named(report, "same_val_set")
    assert rule["status"] == "inconclusive" and rule["reason"].startswith("look-up failed: regression not judged")
    assert not [r for r in report["rules"] if r["name"].startswith("regression")]


@pytest.mark.parametrize(
    ("providers", "status", "named"),
    [
        ({"problems": {}, "nodes": {"CPUExecutionProvider": 0}}, "invalid", "providers.problems: {}"),
        ({"nodes": {"CPUExecutionProvider": 0}}, "invalid", "the profiler recorded no node runs"),
        ({"nodes": {}}, "invalid", "the profiler recorded no node runs"),
        ({"nodes": {"CPUExecutionProvider": 40, "CUDAExecutionProvider": 3}}, "invalid", "3 node(s) ran on CUDA"),
        ({"nodes": {"CPUExecutionProvider": -4}}, "invalid", "providers.nodes: "),
        ({"nodes": {"CPUExecutionProvider": True}}, "invalid", "providers.nodes: "),
        ({"nodes": None}, "inconclusive", "no nodes"),
        ({"problems": None}, "inconclusive", "no problems"),
        ({"problems": ["no node ran on CPUExecutionProvider"]}, "fail", "no node ran"),
    ],
)
def test_a_node_placement_record_that_proves_nothing_never_passes(bundle, measured, providers, status, named):
    """Where the nodes ran is the providers rule's evidence (TensorRT silently falling back to the CPU must
    not pass): zero nodes, counts the board's own check would have refused, or a record of the wrong shape
    is invalid, naming the key; a missing record is inconclusive."""
    assert rule_named(device_gate(bundle, "cpu-ci", measured), "providers")["status"] == "pass"
    edit_json(measured / "bench.json", lambda d: d["providers"].update(providers))
    report = device_gate(bundle, "cpu-ci", measured)
    rule = rule_named(report, "providers")
    assert rule["status"] == status and named in rule["reason"], rule
    assert report["verdict"] == ("inconclusive" if status == "inconclusive" else "fail")


@pytest.mark.parametrize(
    ("memory", "status", "named"),
    [
        ({"measurable": False, "reason": "no /proc"}, "inconclusive", "memory not measurable on this board: no /proc"),
        (None, "inconclusive", "no memory record in bench.json"),
        ({"measurable": "yes"}, "invalid", 'memory.measurable: "yes"'),
    ],
)
def test_memory_the_board_could_not_measure_is_never_judged(bundle, measured, tmp_path, memory, status, named):
    """A peak memory (and a leak verdict) from a board whose record says memory was not measurable is not a
    figure: the memory rules are inconclusive with the board's reason, like energy's."""
    limits = base_params(tmp_path, {"gate": {"min_fps": 1.0, "max_peak_memory_mb": 5000.0}})
    edit_json(measured / "bench.json", lambda d: d.update(memory_leak=False))  # 4 fast frames may give no rate
    assert device_gate(bundle, "cpu-ci", measured, rules_params=limits)["verdict"] == "pass"
    edit_json(measured / "bench.json", lambda d: d.update(memory=memory) if memory else d.pop("memory"))
    report = device_gate(bundle, "cpu-ci", measured, rules_params=limits)
    for name in ("peak_memory", "memory_leak"):
        rule = rule_named(report, name)
        assert rule["status"] == status and named in rule["reason"], rule
    assert report["verdict"] == ("fail" if status == "invalid" else "inconclusive")
