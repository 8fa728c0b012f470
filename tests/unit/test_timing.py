"""The one timing core (issue 19.3): one set of primitives, one model wrapper, one meaning per field name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeproof.perf import run as perf_run
from edgeproof.runtime import timing
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.session import create_session

SRC = Path(__file__).resolve().parents[2] / "src" / "edgeproof"


def _raw() -> np.ndarray:
    raw = np.zeros((5, 2), np.float32)
    raw[:, 0] = [32, 32, 16, 16, 0.9]
    return raw


def test_time_calls_runs_before_untimed_ahead_of_every_call(monkeypatch):
    events: list[str] = []
    times = timing.time_calls(lambda i: events.append(f"call{i}"), 1, 2, before=lambda: events.append("before"))
    assert events == ["before", "call0", "before", "call0", "before", "call1"] and len(times) == 2
    clock = [0.0]  # a fake clock: before() takes 5 s, each call 1 s; only the calls are timed

    def advance(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    assert timing.time_calls(lambda i: advance(1.0), 1, 3, before=lambda: advance(5.0)) == [1000.0] * 3


def test_stats_are_percentiles_and_throughput_of_the_samples():
    s = timing.stats_ms([1.0, 2.0, 3.0, 4.0], frames_per_call=2)
    assert (s["p50"], s["min"], s["max"], s["mean"], s["samples"]) == (2.5, 1.0, 4.0, 2.5, 4)
    assert s["fps"] == round(1000 * 2 * 4 / 10.0, 3)  # images per second over the timed calls
    with pytest.raises(ValueError, match="no latency samples"):
        timing.stats_ms([])


def test_rounds_are_interleaved_and_the_median_round_is_kept():
    order = []
    fps = {"a": iter([10.0, 30.0, 20.0]), "b": iter([5.0, 6.0, 7.0])}
    entries = {k: (lambda k=k: order.append(k) or {"fps_e2e": next(fps[k])}) for k in ("a", "b")}
    rounds = timing.interleaved(entries, 3)
    assert order == ["a", "b", "b", "a", "a", "b"]  # the order turns (timing.round_order)
    assert list(rounds) == ["a", "b"] and rounds["b"] == [{"fps_e2e": f} for f in (5.0, 6.0, 7.0)]
    chosen = timing.median_round(rounds["a"], "fps_e2e")
    assert chosen["fps_e2e"] == 20.0 and chosen["rounds_fps_e2e"] == [10.0, 30.0, 20.0]


def test_no_entry_always_runs_first_or_after_the_same_neighbour():
    """Diff review finding 3: the release stage's rounds (this function) ran fp32 first in every round."""
    order = []
    entries = {k: (lambda k=k: order.append(k) or {"fps_e2e": 1.0}) for k in ("fp32", "int8", "int8_trt")}
    timing.interleaved(entries, 3)
    runs = [order[k : k + 3] for k in range(0, 9, 3)]
    assert runs == [["fp32", "int8", "int8_trt"], ["int8", "fp32", "int8_trt"], ["int8_trt", "fp32", "int8"]]
    assert [r[0] for r in runs] == ["fp32", "int8", "int8_trt"]


def test_one_wrapper_times_a_session_built_elsewhere(fixed_detector_factory, tmp_path):
    """The device builds its own session (profiling, TensorRT options): the runtime's Detector wraps it."""
    path = fixed_detector_factory(_raw(), batch=2)
    session = create_session(path, ["CPUExecutionProvider"], "disable")
    detector = Detector(path, ort_session=session)
    assert detector.session is session and detector.fixed_batch == 2
    image = np.zeros((40, 64, 3), np.uint8)
    model = timing.model_only(detector, image, batch=1, warmup=0, runs=3)
    assert model["batch"] == 2 and model["samples"] == 3  # a static batch is timed at its own size
    sweep = timing.batch_sweep(detector, image, [1, 4], runs=3)
    assert [r["batch"] for r in sweep] == [2]
    assert set(sweep[0]) == {"batch", "images_per_s", "latency_model_ms_p50", "latency_model_ms_p95"}
    files = []
    for i in range(3):
        files.append(tmp_path / f"im{i}.png")
        Image.fromarray(np.full((48, 64, 3), 40 * i, np.uint8)).save(files[-1])
    e2e = timing.end_to_end(Detector(path), files, warmup=1, runs=4)
    assert (e2e["samples"], e2e["images"], e2e["distinct_images"]) == (4, 4, 3)


def test_perf_entries_name_model_only_latency_as_such(monkeypatch):
    """`latency_ms_*` is end to end everywhere; perf used it for model-only latency."""
    doc = {"latency_model_ms": {"p50": 5.0, "p95": 6.0}, "latency_ms": {"p50": 9.0, "p95": 11.0}, "fps_e2e": 100.0}
    monkeypatch.setattr(perf_run, "run_benchmark", lambda *_a, **_kw: doc)
    entry = perf_run._edgeproof(Path("m.onnx"), [], None, None)
    assert entry == {
        "latency_model_ms_p50": 5.0,
        "latency_model_ms_p95": 6.0,
        "latency_ms_p50": 9.0,
        "latency_ms_p95": 11.0,
        "fps_e2e": 100.0,
    }


def _percentile_users() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "reliability" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "percentile":
                found.append(path.relative_to(SRC).as_posix())
                break
    return found


def test_latency_percentiles_are_computed_in_one_place():
    assert _percentile_users() == ["runtime/timing.py"]
