"""The frames a timing figure rests on (profiles' ``gate.min_timed_frames``): a p95 over one frame passed
"latency_p95 <= 100 ms" and "FPS > 10" (params11 F1); below the minimum, or with no count, the timing
rules are inconclusive, never a pass nor a fail, and say the count and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgeproof.config import load_params
from edgeproof.gate import check_gate, render_markdown
from edgeproof.profiles import DeviceGate, parse_profiles
from edgeproof.verdict.rules import compare
from edgeproof.verdict.thresholds import speed_rules
from edgeproof.verdict.timed_frames import held_by_frames
from tests.unit import gate_inputs as gi

REPO = Path(__file__).resolve().parents[2]


def _bench(samples, fps=42.0, p95=23.7):
    e2e = {"fps": fps, "p95": p95, "p50": p95}
    if samples is not None:
        e2e["samples"] = samples
    return {"fps_e2e": fps, "latency_ms": {"p95": p95}, "e2e": e2e}


def test_a_p95_over_one_frame_is_inconclusive_naming_the_count_and_the_key():
    for rule in speed_rules(DeviceGate(), _bench(1), "bench.json", "cpu-ci"):
        assert rule["status"] == "inconclusive" and not rule["passed"], rule
        assert "1 timed frames (e2e.samples), under profiles.cpu-ci.gate.min_timed_frames 20" in rule["reason"]


def test_a_failing_figure_over_too_few_frames_is_not_a_fail_either():
    fps, p95 = speed_rules(DeviceGate(), _bench(19, fps=1.0, p95=900.0), "bench.json", "cpu-ci")
    assert fps["status"] == p95["status"] == "inconclusive"


def test_enough_frames_are_judged_and_the_key_can_be_lowered_knowingly():
    assert [r["status"] for r in speed_rules(DeviceGate(), _bench(20), "bench.json")] == ["pass", "pass"]
    assert [r["status"] for r in speed_rules(DeviceGate(), _bench(20, fps=5.0), "bench.json")] == ["fail", "pass"]
    lowered = DeviceGate(min_timed_frames=1)
    assert [r["status"] for r in speed_rules(lowered, _bench(1), "bench.json")] == ["pass", "pass"]


@pytest.mark.parametrize(
    ("samples", "status", "said"),
    [(None, "inconclusive", "bench.json has no e2e.samples"), ("100", "invalid", "'100' is not a count")],
)
def test_a_bench_that_does_not_count_its_frames_is_not_judged(samples, status, said):
    for rule in speed_rules(DeviceGate(min_timed_frames=1), _bench(samples), "bench.json"):
        assert rule["status"] == status and said in rule["reason"], rule


def test_the_fps_regression_rests_on_the_same_run():
    drop = compare("regression_fps", "fps drop % vs main", "<=", 10.0, 2.0, "baseline")
    energy = compare("energy", "energy_mj_per_frame", "<=", 100.0, 50.0, "bench.json")
    held = held_by_frames([drop, energy], DeviceGate(), _bench(3), "jetson-orin-nano")
    assert held[0]["status"] == "inconclusive" and "min_timed_frames" in held[0]["reason"]
    assert held[1]["status"] == "pass"  # energy is a mean over the window, not a percentile of frames


@pytest.mark.parametrize(("value", "message"), [(0, "must be >= 1"), (True, "expected an integer")])
def test_the_key_is_a_count(value, message):
    with pytest.raises(ValueError, match=rf"profiles.p.gate.min_timed_frames: {message}"):
        parse_profiles({"p": {"gate": {"min_timed_frames": value}}})


def test_the_committed_run_counts_clear_the_minimum_comfortably():
    """The build side times ``benchmark.runs`` end-to-end frames, a board ``e2e_images``: at least twice what
    each profile's timing rules need."""
    params = load_params(REPO / "params.yaml")
    for name, profile in params.profiles.items():
        needs = profile.gate.min_timed_frames
        assert needs >= 20, name  # a p95 with a frame above it
        assert profile.e2e_images >= 2 * needs, name
    assert params.benchmark.runs >= 2 * params.profiles[params.release.build_profile].gate.min_timed_frames


def test_one_timed_frame_still_loads_and_is_left_to_the_gate(tmp_path):
    """``runs: 1`` is a legitimate smoke run; what it cannot do is pass the timing rules."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["benchmark"]["runs"] = 1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_params(path).benchmark.runs == 1


def test_the_build_gate_md_says_how_many_frames_each_timing_figure_is_over():
    """As an accuracy row says its val set ("over 50 images ..."), a timing row says the frames timed (gate.json's
    ``over``), judged or held alike; a bench that does not count them says nothing it does not know."""
    sha = gi.sha_of(gi.RELEASED)
    bench = gi.bench_doc(gi.RELEASED, 198.393)
    report = check_gate(DeviceGate(min_map50_95=0.5), gi.eval_doc(gi.RELEASED), bench, sha, profile="cpu-ci")
    md = render_markdown(report)
    for name, metric in (("fps", "fps_e2e"), ("latency_p95", "latency_ms.p95")):
        assert next(r for r in report["rules"] if r["name"] == name)["over"] == {"timed_frames": 100}
        assert f"| {name} | `{metric}` (metrics/bench.json), over 100 timed frames |" in md, md
    held = speed_rules(DeviceGate(), _bench(1), "bench.json", "cpu-ci")
    assert [r["over"] for r in held] == [{"timed_frames": 1}] * 2  # the count the reason names, in the row too
    assert all("over" not in r for r in speed_rules(DeviceGate(), _bench(None), "bench.json"))


def test_the_fps_regression_row_says_its_frames_too():
    drop = compare("regression_fps", "fps drop % vs main", "<=", 10.0, 2.0, "baseline")
    (held,) = held_by_frames([drop], DeviceGate(), _bench(30), "jetson-orin-nano")
    assert held["status"] == "pass" and held["over"] == {"timed_frames": 30}
    assert held_by_frames([held], DeviceGate(), _bench(30)) == [held]  # idempotent
