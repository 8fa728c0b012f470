"""What the headline, the energy chart and the gate's own report (gate.md, which the PR comment quotes)
show of a real device run, judged by the real device gate: a hot board's figures (an inconclusive
verdict) and an energy record the gate holds invalid are shown nowhere as the model's, and a cool run's
are shown by all alike (edgeproof.verdict.shown, edgeproof.verdict.flags.throttle_problem)."""

from __future__ import annotations

import json
from pathlib import Path

from edgeproof.device.measure import run_measure
from edgeproof.headline import device_benches
from edgeproof.markdown import cell
from edgeproof.release import energy_plot
from edgeproof.verdict.device import run_device_gate
from tests.device.conftest import edit_json, set_measured_energy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sysroot"


def _judged(bundle: Path, sysroot: Path | None = None, samples: int = 2) -> tuple[dict, dict, list, dict]:
    """Measure ``bundle`` for cpu-ci on ``sysroot``, with a measured energy record of ``samples`` power
    readings over the window, and judge it: (the gate's report, the headline's devices, the chart's points
    and reasons)."""
    out = bundle.parent.parent / "reports" / "device" / "cpu-ci"
    assert run_measure(bundle, "cpu-ci", out, sysroot, bundle.parent / "engines") == 0
    set_measured_energy(out / "bench.json", 3.0)
    edit_json(out / "bench.json", lambda d: d["energy"].update(samples=samples))
    release_path = bundle.parent.parent / "reports" / "release.json"
    run_device_gate(bundle, "cpu-ci", out, release_path)
    release = json.loads(release_path.read_text())
    points, missing = energy_plot.collect(out.parent, release)
    return json.loads((out / "gate.json").read_text()), device_benches(out.parent, release), points, missing


def test_a_cool_run_s_figures_are_shown_alike_by_the_headline_and_the_chart(bundle):
    report, devices, points, _missing = _judged(bundle)
    assert report["verdict"] == "pass" and report["conditions"]["throttled"] is False
    energy = devices["cpu-ci"]["energy_mj_per_frame"]
    assert devices["cpu-ci"]["fps"] > 0 and [(p["profile"], p["energy_mj_per_frame"]) for p in points] == [
        ("cpu-ci", energy)
    ]


def test_a_throttled_run_s_figures_are_shown_neither_in_the_headline_nor_on_the_chart(bundle, caplog):
    """The hot board's fps, mJ/frame and peak memory went into headline.json (so MLflow) and onto the chart
    unmarked, beside a verdict of inconclusive because the run throttled."""
    report, devices, points, missing = _judged(bundle, FIXTURES / "x86-hot")
    assert report["verdict"] == "inconclusive" and report["conditions"]["throttled"] is True
    assert devices == {} and points == []
    assert "the run throttled (" in missing["cpu-ci"] and "x86_pkg_temp reached 97.0 C" in missing["cpu-ci"]
    assert "headline: the device figures of" in caplog.text and "x86_pkg_temp reached 97.0 C" in caplog.text


def test_energy_the_device_gate_holds_invalid_is_not_plotted(bundle):
    """One power reading over the window: the gate holds the energy record invalid and the headline left the
    run out, while the chart plotted its mJ/frame."""
    report, devices, points, missing = _judged(bundle, samples=1)
    consistent = next(r for r in report["rules"] if r["name"] == "results_consistent")
    assert report["verdict"] == "fail" and "energy.samples: 1" in consistent["reason"]
    assert devices == {} and points == [] and "rules results_consistent invalid" in missing["cpu-ci"]


# gate.md's figures table, and the measured keys of the cells the headline would show
FIGURES_HEADER = "| FPS (e2e) | p95 ms | mAP50-95 | mJ/frame | W mean | peak MB |"
WITHHELD = "withheld (throttled)"  # as gate.md writes a figure it withholds
TIMED = ("fps_e2e", "latency_ms_p95", "energy_mj_per_frame", "power_w_mean", "peak_memory_mb")


def _gate_md(bundle: Path) -> str:
    return (bundle.parent.parent / "reports" / "device" / "cpu-ci" / "gate.md").read_text()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def _figures_row(md: str) -> list[str]:
    lines = md.splitlines()
    return _cells(lines[lines.index(FIGURES_HEADER) + 2])


def _rule_measured(md: str, name: str) -> str:
    (row,) = [line for line in md.splitlines() if line.startswith(f"| {name} |")]
    return _cells(row)[3]


def test_a_throttled_run_s_figures_are_withheld_in_its_gate_report_too(bundle):
    """gate.md (which the PR comment quotes) showed the hot run's FPS, p95, mJ/frame, W and peak MB in its
    figures table, unmarked, and its batch sweep, beside the throttling the headline leaves the run out for."""
    report, devices, _points, _missing = _judged(bundle, FIXTURES / "x86-hot")
    measured, md = report["measured"], _gate_md(bundle)
    assert report["conditions"]["throttled"] is True and devices == {}
    assert all(measured[k] is not None for k in TIMED)
    assert _figures_row(md) == [WITHHELD, WITHHELD, cell(measured["map50_95"]), WITHHELD, WITHHELD, WITHHELD]
    assert "Figures withheld: the run throttled (temperature x86\\_pkg\\_temp reached 97.0 C" in md
    assert "Batch sweep: withheld (throttled)." in md and "| batch |" not in md
    assert _rule_measured(md, "fps") == "{} (throttled)".format(cell(measured["fps_e2e"]))
    assert _rule_measured(md, "map50") == cell(measured["map50"])  # accuracy is not timed


def test_a_cool_run_s_gate_report_shows_its_figures(bundle):
    report, _devices, _points, _missing = _judged(bundle)
    measured, md = report["measured"], _gate_md(bundle)
    shown = [cell(measured[k]) for k in ("fps_e2e", "latency_ms_p95", "map50_95", *TIMED[2:])]
    assert _figures_row(md) == shown and "withheld" not in md
    assert _rule_measured(md, "fps") == cell(measured["fps_e2e"])
