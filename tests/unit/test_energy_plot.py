"""The energy chart (issue 20): mJ/frame against mAP50-95 per device profile and variant, from the
device reports; only measured figures, the reason for every profile without one, and a chart that
says so when nothing was measured."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from stages import gate as gate_stage

from edgeproof.evaluation import figures
from edgeproof.headline import device_benches
from edgeproof.io import sha256_file
from edgeproof.release import energy_plot
from tests.unit.test_headline import BENCH, EVAL, TRAIN

REPO = Path(__file__).resolve().parents[2]
ORIN_SHA, FP32_SHA, INT8_SHA = "a" * 64, "b" * 64, "c" * 64
NO_RAPL = "no powercap interface (/sys/class/powercap absent)"


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _bench(variant: str, sha: str, mj: float | None, reason: str | None = None) -> dict:
    energy = {"measurable": mj is not None, "reason": reason, "source": "tegrastats VDD_IN" if mj else None}
    if mj is not None:  # what a board records beside a measured figure: its power readings, some inside the window
        energy.update(samples=40, inside_samples=38, interval_ms=100.0)
    return {"variant": variant, "model_sha256": sha, "fps_e2e": 30.0, "energy_mj_per_frame": mj, "energy": energy}


def _gate(sha: str, map50_95: float, source: str) -> dict:
    """A device verdict that vouches for its bench.json: passed, on ``sha``, on a run that did not throttle."""
    rules = [{"name": n, "status": "pass", "source": source} for n in ("map50", "map_drop")]
    return {
        "verdict": "pass",
        "passed": True,
        "model_sha256": sha,
        "rules": rules,
        "measured": {"map50_95": map50_95, "energy_mj_per_frame": None},
        "conditions": {"throttled": False, "reasons": []},
    }


@pytest.fixture
def release() -> dict:
    """``reports/release.json``: the build-side scores, and the profiles the device reports could cover."""
    variants = {
        "fp32": {"evaluated": True, "sha256": FP32_SHA, "map50_95": 0.7801},
        "int8": {"evaluated": True, "sha256": INT8_SHA, "map50_95": 0.7866},
    }
    released = {"cpu-ci": INT8_SHA, "jetson-nano": INT8_SHA, "jetson-orin-nano": ORIN_SHA, "jetson-xavier": ORIN_SHA}
    profiles = {name: {"sha256": sha} for name, sha in released.items()}
    return {"build_profile": "cpu-ci", "profiles": profiles, "variants": variants}


@pytest.fixture
def reports(tmp_path) -> Path:
    """Orin: energy + a device mAP; Nano: energy scored build side; cpu-ci: not measurable; Xavier: missing."""
    root = tmp_path / "reports/device"
    _write(root / "jetson-orin-nano/bench.json", _bench("fp32", ORIN_SHA, 41.25))
    _write(root / "jetson-orin-nano/gate.json", _gate(ORIN_SHA, 0.7712, "device detections (pycocotools)"))
    _write(root / "jetson-nano/bench.json", _bench("int8", INT8_SHA, 120.5))
    _write(root / "jetson-nano/gate.json", _gate(INT8_SHA, 0.7866, "build side"))
    _write(root / "cpu-ci/bench.json", _bench("int8", INT8_SHA, None, NO_RAPL))
    _write(root / "cpu-ci/gate.json", _gate(INT8_SHA, 0.7866, "device detections (pycocotools)"))
    return root


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_csv_holds_exactly_the_measured_points(reports, release, tmp_path):
    rel = tmp_path / "release.json"
    _write(rel, release)
    csv_path, png = tmp_path / "plots/energy_map.csv", tmp_path / "plots/energy_map.png"
    energy_plot.draw(reports, rel, csv_path, png)
    assert _csv(csv_path) == [
        {
            "profile": "jetson-nano",
            "variant": "int8",
            "energy_mj_per_frame": "120.5",
            "map50_95": "0.7866",
            "map_source": "build side",  # the Nano gate judged the build-side score, not device detections
        },
        {
            "profile": "jetson-orin-nano",
            "variant": "fp32",
            "energy_mj_per_frame": "41.25",
            "map50_95": "0.7712",
            "map_source": "device",
        },
    ]
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profiles_without_a_measured_figure_are_named_with_the_reason(reports, release):
    points, missing = energy_plot.collect(reports, release)
    assert sorted(p["profile"] for p in points) == ["jetson-nano", "jetson-orin-nano"]
    assert missing == {
        "cpu-ci": f"bench.json energy not measurable ({NO_RAPL})",
        "jetson-xavier": energy_plot.NO_REPORT,
    }


def test_the_reasons_are_on_the_chart_and_the_axes_are_honest(reports, release, monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path, dpi: drawn.append(fig) or path)
    energy_plot.write_png(tmp_path / "e.png", *energy_plot.collect(reports, release))
    (fig,) = drawn
    text = "\n".join(t.get_text() for t in fig.texts)
    assert NO_RAPL in text and "jetson-xavier" in text
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0.0 and ax.get_xlim()[1] >= 120.5
    lo, hi = ax.get_ylim()
    assert hi - lo >= 0.1 - 1e-9 and lo <= 0.7712 and hi >= 0.7866
    assert len(ax.collections) == 2  # one marker per measured point


def test_a_figure_without_a_score_of_its_file_is_not_plotted(reports, release):
    # the Orin gate judged its accuracy build side, and the build side evaluated another fp32 file: no mAP
    _write(reports / "jetson-orin-nano/gate.json", _gate(ORIN_SHA, 0.7, "build side"))
    points, missing = energy_plot.collect(reports, release)
    assert [p["profile"] for p in points] == ["jetson-nano"]
    assert "41.25 mJ/frame measured, but no mAP50-95" in missing["jetson-orin-nano"]


@pytest.mark.parametrize("folder", ["absent", None])
def test_with_no_device_reports_the_chart_says_nothing_was_measured(folder, monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path, dpi: drawn.append(fig) or path)
    root = tmp_path / folder if folder else None
    csv_path = tmp_path / "energy_map.csv"
    assert energy_plot.draw(root, None, csv_path, tmp_path / "energy_map.png") == []
    assert csv_path.read_text() == "profile,variant,energy_mj_per_frame,map50_95,map_source\n"
    (fig,) = drawn
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("no energy measured" in t for t in texts)


def test_an_empty_chart_renders_to_a_file(tmp_path, release):
    png = tmp_path / "energy_map.png"
    energy_plot.write_png(png, *energy_plot.collect(tmp_path / "none", release))
    assert png.stat().st_size > 1000


def test_the_gate_stage_draws_it_and_dvc_declares_it():
    gate = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["gate"]
    outs = {next(iter(o)) if isinstance(o, dict) else o: o for o in gate["outs"]}
    assert outs["plots/release/energy_map.csv"] == {"plots/release/energy_map.csv": {"cache": False}}
    assert "plots/release/energy_map.png" in outs
    track = gate["cmd"].split("--track-plots", 1)[1]
    assert "plots/release/energy_map.png" in track.split("--")[0]  # attached to the MLflow record
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    flat = [next(iter(p)) if isinstance(p, dict) else p for p in plots]
    assert "plots/release/energy_map.png" in flat
    scatter = [p for p in plots if isinstance(p, dict) and "energy_map.csv" in json.dumps(p)]
    assert len(scatter) == 1 and next(iter(scatter[0].values()))["template"] == "scatter"


def test_the_gate_stage_writes_both_files_from_its_device_reports(reports, tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["track"]["enabled"] = False
    t = tmp_path
    (t / "params.yaml").write_text(yaml.safe_dump(params))
    model = t / "fp32.onnx"
    model.write_bytes(b"\0" * 1000)
    sha = sha256_file(model)
    _write(t / "eval.json", {**EVAL, "model_sha256": sha})
    _write(t / "bench.json", {**BENCH, "model_sha256": sha})
    _write(t / "train.json", TRAIN)
    argv = ["--params", str(t / "params.yaml"), "--model", str(model), "--eval", str(t / "eval.json")]
    argv += ["--bench", str(t / "bench.json"), "--report-json", str(t / "gate.json"), "--report-md", str(t / "g.md")]
    argv += ["--headline", str(t / "headline.json"), "--train-metrics", str(t / "train.json")]
    argv += ["--device-reports", str(reports), "--energy-plot", str(t / "e.csv"), str(t / "e.png")]
    gate_stage.main(argv)  # the verdict does not matter: the chart is drawn whatever it is
    # no release.json: no device report is about a released file, so the headline shows none, nor the chart
    assert _csv(t / "e.csv") == [] and "devices" not in json.loads((t / "headline.json").read_text())
    assert (t / "e.png").stat().st_size > 1000


@pytest.mark.parametrize(("mj", "shown"), [(-40.0, "-40.0 is outside the possible range"), (float("inf"), "Infinity")])
def test_an_impossible_energy_figure_is_not_plotted_and_names_its_file(
    reports, release, monkeypatch, tmp_path, mj, shown
):
    """-40 mJ/frame was plotted; Infinity made the drawing raise "Axis limits cannot be NaN or Inf" without
    naming the file. Now the profile is listed with its file and why, and the chart is drawn."""
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path, dpi: drawn.append(fig) or path)
    _write(reports / "jetson-nano/bench.json", _bench("int8", INT8_SHA, mj))
    csv_path = tmp_path / "energy_map.csv"
    points = energy_plot.draw(reports, None, csv_path, tmp_path / "e.png")
    assert "jetson-nano" not in [p["profile"] for p in points] and "jetson-nano" not in csv_path.read_text()
    _points, missing = energy_plot.collect(reports, release)
    assert missing["jetson-nano"].startswith("bench.json energy impossible (energy_mj_per_frame: ")
    assert shown in missing["jetson-nano"] and len(drawn) == 1


def _verdict(folder: Path, **fields) -> None:
    _write(folder / "gate.json", {**json.loads((folder / "gate.json").read_text()), **fields})


HOT = "temperature thermal_zone0 reached 99.0 C > max_temp_c 95"


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (  # a hot board: the gate says inconclusive, and the numbers say nothing about the model
            lambda d: _verdict(
                d, verdict="inconclusive", passed=False, conditions={"throttled": True, "reasons": [HOT]}
            ),
            f"the run throttled ({HOT}): its figures say nothing about the model",
        ),
        (lambda d: _verdict(d, conditions=None), "conditions.throttled is missing"),
        (  # an energy record the gate held invalid (one reading over the window)
            lambda d: _verdict(
                d, verdict="fail", passed=False, rules=[{"name": "energy", "status": "invalid", "source": "device"}]
            ),
            "rules energy invalid",
        ),
        (lambda d: (d / "gate.json").unlink(), "no readable device verdict beside it"),
        (lambda d: _verdict(d, model_sha256="d" * 64), "judged model_sha256 dddddddddddd"),
        (
            lambda d: _verdict(
                d, verdict="inconclusive", passed=False, rules=[{"name": "machine_match", "status": "inconclusive"}]
            ),
            "rules machine_match inconclusive",
        ),
    ],
)
def test_the_chart_plots_no_figure_the_headline_leaves_out(reports, release, caplog, edit, why):
    """The chart plotted the Nano's 120.5 mJ/frame beside a verdict that threw it out (an invalid energy
    rule, no gate.json, a throttled run) while the headline left it out; both now ask one test."""
    edit(reports / "jetson-nano")
    points, missing = energy_plot.collect(reports, release)
    assert [p["profile"] for p in points] == ["jetson-orin-nano"] and why in missing["jetson-nano"]
    shown = device_benches(reports, release)
    assert "jetson-nano" not in shown and why in caplog.text  # the headline's warning, the same reason
    assert {p: d["energy_mj_per_frame"] for p, d in shown.items() if "energy_mj_per_frame" in d} == {
        p["profile"]: p["energy_mj_per_frame"] for p in points
    }


def test_the_chart_shows_the_energy_the_headline_shows(reports, release):
    points, _missing = energy_plot.collect(reports, release)
    shown = device_benches(reports, release)
    assert sorted(shown) == ["cpu-ci", "jetson-nano", "jetson-orin-nano"]  # cpu-ci: speed only, no energy
    assert {p: d["energy_mj_per_frame"] for p, d in shown.items() if "energy_mj_per_frame" in d} == {
        p["profile"]: p["energy_mj_per_frame"] for p in points
    }
