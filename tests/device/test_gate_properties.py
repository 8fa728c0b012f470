"""Property tests (hypothesis) of the device gate's central promise (:func:`edgeproof.verdict.device.device_gate`,
the CI side, over the files the board side writes: ``measure.json``, ``bench.json``, ``conditions.json``,
``eval.json`` and the detections):

- a figure a rule reads that is missing or cannot be a measurement makes that rule inconclusive or a failure
  (invalid, fail), with a reason, and the verdict is never ``pass``;
- only exactly the bundled file, measured for this profile from this bundle, can pass: an identity that
  makes the files disagree fails or leaves the gate inconclusive.

The board's results are measured once (the CPU stands in for the board), with energy and memory figures a
board that measures them writes, judged by rules that read them all; each example damages one field of a
copy. The undamaged copy passing is the control. The plain examples below are the holes the properties found.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeproof.verdict.device import device_gate
from tests.device.conftest import base_params, make_bundle, measure_bundle, set_measured_energy
from tests.unit import gate_inputs as gi

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Target = gi.Target
PROFILE = "cpu-ci"
# thresholds every measured figure meets, so that a rule reads each one (energy, power and memory included)
LIMITS = {
    "min_fps": 1.0,
    "min_map50_95": 0.5,
    "max_energy_mj_per_frame": 100.0,
    "max_power_w": 50.0,
    "max_peak_memory_mb": 1.0e5,
}

FIGURES = [
    Target("bench.json", "fps_e2e", "fps"),
    Target("bench.json", "latency_ms", "latency_p95"),
    Target("bench.json", "latency_ms.p95", "latency_p95"),
    Target("bench.json", "e2e.samples", "latency_p95"),  # the frames timed: judged only over enough of them
    Target("bench.json", "e2e.samples", "fps"),
    Target("bench.json", "e2e", "results_consistent"),
    Target("bench.json", "e2e.fps", "results_consistent"),
    Target("bench.json", "e2e.mean", "results_consistent"),
    Target("bench.json", "e2e.p95", "results_consistent"),
    Target("bench.json", "e2e.images", "results_consistent"),
    Target("bench.json", "e2e.source", "results_consistent"),
    Target("bench.json", "model.samples", "results_consistent"),
    Target("bench.json", "settings", "measured_as_judged"),
    Target("bench.json", "settings.runs", "measured_as_judged"),
    Target("bench.json", "providers", "providers"),
    Target("bench.json", "providers.session", "providers"),
    Target("bench.json", "energy_mj_per_frame", "energy"),
    Target("bench.json", "power_w_mean", "power"),
    Target("bench.json", "power_w_peak", "results_consistent", present_only=True),
    Target("bench.json", "energy", "energy"),
    Target("bench.json", "energy.measurable", "energy"),
    Target("bench.json", "energy.samples", "energy"),
    Target("bench.json", "energy.window_s", "results_consistent"),
    Target("bench.json", "energy.frames", "results_consistent"),
    Target("bench.json", "peak_memory_mb", "peak_memory"),
    Target("bench.json", "memory", "peak_memory"),
    Target("bench.json", "memory.measurable", "peak_memory"),
    Target("bench.json", "memory_leak", "memory_leak"),
    Target("bench.json", "memory.rss_end_mb", "results_consistent", present_only=True),
    Target("measure.json", "status", "measured"),
    Target("measure.json", "exit_code", "results_consistent"),
    Target("measure.json", "fps_e2e", "results_consistent", present_only=True),
    Target("measure.json", "throttled", "results_consistent", present_only=True),
    Target("conditions.json", "machine", "machine_match"),
    Target("conditions.json", "machine.arch", "machine_match"),
    Target("conditions.json", "during", "conditions_recorded"),
    Target("conditions.json", "throttled", "results_consistent", present_only=True),
    Target("detections.json", "0.bbox", "detections"),
    Target("detections.json", "0.image_id", "detections"),
]
IDENTITIES = [
    Target("bench.json", "model_sha256", "same_model_benchmarked"),
    Target("bench.json", "profile", "same_profile"),
    Target("bench.json", "variant", "results_consistent"),
    Target("bench.json", "model_path", "results_consistent"),
    Target("bench.json", "input_size", "results_consistent"),
    Target("measure.json", "profile", "results_consistent"),
    Target("measure.json", "bundle_manifest_sha256", "same_bundle"),
    Target("eval.json", "model_sha256", "same_model_evaluated"),
    Target("eval.json", "profile", "results_consistent"),
    Target("eval.json", "variant", "results_consistent"),
    Target("eval.json", "model_path", "results_consistent"),
    Target("eval.json", "settings", "measured_as_judged"),
]
# another file, variant or profile of the same kind: a mix-up rather than nonsense
SWAPS = {
    "model_sha256": ["0" * 64],
    "bundle_manifest_sha256": ["0" * 64],
    "profile": ["jetson-nano", "cpu-ci-strict"],
    "variant": ["int8"],
    "model_path": ["models/int8.onnx"],
    "input_size": [[640, 640]],
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(bundle, results, judging rules): one measurement that passes the device gate with every rule on."""
    root = tmp_path_factory.mktemp("device")
    bundle = make_bundle(root)
    results = measure_bundle(bundle, PROFILE)
    rules = base_params(root, {"gate": LIMITS})
    set_measured_energy(results / "bench.json", 3.0, memory_leak=False)  # no power meter here: as a board's
    return bundle, results, rules


def judge(measured: tuple[Path, Path, Path], target: Target | None = None, value: Any = None) -> dict[str, Any] | None:
    """The device gate over a copy of the results with ``target`` set to ``value``; None: that is no damage."""
    bundle, results, rules = measured
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / PROFILE
        shutil.copytree(results, copy)
        if target is not None:
            doc = json.loads((copy / target.file).read_text())
            if gi.no_damage(doc, target, value):
                return None
            gi.damage(doc, target.path, value)
            (copy / target.file).write_text(json.dumps(doc))
        return device_gate(bundle, PROFILE, copy, rules_params=rules)


def test_the_undamaged_measurement_passes_with_every_rule_on(measured):
    """The control: without it every property below could pass on a gate that passes nothing."""
    report = judge(measured)
    assert report is not None and report["verdict"] == "pass" and report["failed"] == []
    assert {r["name"] for r in report["rules"]} >= {t.rule for t in FIGURES + IDENTITIES}


def _check_not_passed(report: dict[str, Any] | None, target: Target, value: Any) -> None:
    if report is not None:  # None: no damage, the control covers it
        gi.check_not_passed(report, target, value)


@SETTINGS
@given(target=st.sampled_from(FIGURES), value=gi.BROKEN)
def test_a_device_figure_missing_or_impossible_never_passes_its_rule(measured, target, value):
    _check_not_passed(judge(measured, target, value), target, value)


@st.composite
def identity_damage(draw):
    target = draw(st.sampled_from(IDENTITIES))
    swaps = SWAPS.get(target.path, [])
    return target, draw(st.one_of(gi.BROKEN, st.sampled_from(swaps)) if swaps else gi.BROKEN)


@SETTINGS
@given(damage=identity_damage())
def test_only_the_bundled_file_measured_for_this_profile_can_pass(measured, damage):
    target, value = damage
    _check_not_passed(judge(measured, target, value), target, value)
