"""`edgeproof perf`'s rounds: the order entries run in, and which frames each entry times."""

from __future__ import annotations

from pathlib import Path

from edgeproof.benchmark import BenchmarkParams
from edgeproof.perf import pipelines
from edgeproof.perf import run as perf_run
from edgeproof.runtime import overlap
from edgeproof.runtime.deploy import DeploySettings

FIGURES = {
    "latency_model_ms_p50": 1.0,
    "latency_model_ms_p95": 1.0,
    "latency_ms_p50": 1.0,
    "latency_ms_p95": 1.0,
    "fps_e2e": 1.0,
}


def test_the_order_of_the_entries_turns_from_round_to_round(monkeypatch):
    """Finding 9: every round ran ultralytics-pt, ultralytics-onnx, then edgeproof, always in that order, so
    whatever a place in the round brings (the cold start after another entry, a drift within the round) fell on
    the same entry every round."""
    ran: list[str] = []

    def timed(name):
        ran.append(name)
        return dict(FIGURES)

    monkeypatch.setattr(perf_run.ultra, "time_predict", lambda model, *_a: timed(model))
    monkeypatch.setattr(perf_run, "_edgeproof", lambda path, *_a: timed(path.stem))
    monkeypatch.setattr(perf_run.pipelines, "pipeline_entries", lambda *_a: {})
    monkeypatch.setattr(perf_run.pipelines, "ultralytics_parallel", lambda *_a: {})
    inputs = perf_run.PerfInputs(Path("best.pt"), Path("optimized"), Path("data"), None, rounds=4)
    models = {"ultralytics-pt": "pt", "ultralytics-onnx": "onnx"}
    files = {"fp32": Path("fp32.onnx"), "int8": Path("int8.onnx")}
    rounds = perf_run._time_rounds(inputs, models, files, [Path("a.jpg")], 64, None, None, None)
    assert [ran[k : k + 4] for k in range(0, 16, 4)] == [
        ["pt", "onnx", "fp32", "int8"],
        ["onnx", "pt", "int8", "fp32"],
        ["fp32", "int8", "pt", "onnx"],
        ["int8", "fp32", "onnx", "pt"],
    ]
    assert {k: len(v) for k, v in rounds.items()} == {"ultralytics-pt": 4, "ultralytics-onnx": 4, "fp32": 4, "int8": 4}


def test_the_overlapped_entry_times_the_frames_the_serial_entries_time(monkeypatch, tmp_path):
    """Finding 9: the overlapped pipeline timed frames warmup .. warmup + runs - 1 of the cycle, the serial and
    ultralytics entries frames 0 .. runs - 1: with 50 images and 100 frames, different frames."""
    passes: list[list[Path]] = []

    def latencies(_detector, paths, _depth=1):
        passes.append(list(paths))
        return [1.0] * len(paths), 0.01 * len(paths)

    monkeypatch.setattr(overlap, "overlapped_latencies", latencies)
    monkeypatch.setattr(pipelines, "Detector", lambda *_a, **_kw: object())
    monkeypatch.setattr(pipelines, "load_image", lambda _p: None)
    monkeypatch.setattr(pipelines.core, "model_only", lambda *_a: {"p50": 1.0, "p95": 1.0})
    images = [tmp_path / f"{k}.jpg" for k in range(5)]
    bench = BenchmarkParams(warmup=3, runs=7)
    pipelines.overlapped(Path("m.onnx"), images, bench, DeploySettings())
    warm, timed = passes
    assert len(warm) == 3 and timed == [images[i % 5] for i in range(7)]  # as core.end_to_end's frame i
