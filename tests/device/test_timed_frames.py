"""The device gate's timing rules over the frames the board timed: judged only over as many end-to-end frames as
the judging profile asks (``gate.min_timed_frames``, params11 F1). The tests' profile times 4 (``e2e_images``)."""

from __future__ import annotations

from edgeproof.verdict.device import device_gate
from tests.device.conftest import base_params, rule_named


def test_a_board_run_over_too_few_frames_leaves_the_timing_rules_inconclusive(bundle, measured, tmp_path):
    rules = base_params(tmp_path, {"gate": {"min_timed_frames": 20}})  # params.yaml's default
    report = device_gate(bundle, "cpu-ci", measured, rules_params=rules)
    assert report["verdict"] == "inconclusive" and report["failed"] == ["fps", "latency_p95"]
    for name in ("fps", "latency_p95"):
        rule = rule_named(report, name)
        assert rule["status"] == "inconclusive" and rule["measured"] is not None
        assert "4 timed frames (e2e.samples), under profiles.cpu-ci.gate.min_timed_frames 20" in rule["reason"]
    # the profile asking only that bench.json counts them (the tests' profiles): judged
    assert device_gate(bundle, "cpu-ci", measured, rules_params=base_params(tmp_path, {}, name="t.yaml"))["passed"]
