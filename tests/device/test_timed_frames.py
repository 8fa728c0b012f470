"""The device gate's timing rules over the frames the board timed: judged only over as many end-to-end frames as
the judging profile asks (``gate.min_timed_frames``, params11 F1). The tests' profile times 4 (``e2e_images``)."""

from __future__ import annotations

import json

from edgeproof.verdict.device import device_gate
from edgeproof.verdict.report import render_markdown
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


def test_the_device_gate_md_says_how_many_frames_each_timing_figure_is_over(bundle, measured, tmp_path):
    """As an accuracy row says its val set ("over 6 images ..."), a timing row says the board's timed frames."""
    baseline = tmp_path / "main-gate.json"
    baseline.write_text(json.dumps({"verdict": "pass", "profile": "cpu-ci", "measured": {"fps_e2e": 0.001}}))
    rules = base_params(tmp_path, {"regression": {"max_fps_drop_pct": 10.0}})
    report = device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=rules)
    md = render_markdown(report)
    for name, metric in (("fps", "fps_e2e"), ("latency_p95", "latency_ms.p95")):
        assert rule_named(report, name)["over"] == {"timed_frames": 4}
        assert f"| {name} | `{metric}` (bench.json), over 4 timed frames |" in md, md
    assert rule_named(report, "regression_fps")["over"] == {"timed_frames": 4}
    (row,) = [line for line in md.splitlines() if line.startswith("| regression_fps |")]
    assert "over 4 timed frames |" in row
