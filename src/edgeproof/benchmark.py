"""Latency and throughput of an ONNX model with ONNX Runtime on this machine.

Two numbers matter on a device: the model alone (``session.run`` on a ready tensor) and the
end-to-end path a camera app pays per frame (decode the file -> letterbox -> infer -> decode
+ NMS). Both are measured after a warm-up, over many runs, and reported as percentiles; FPS is
throughput (frames per second of wall time), so it includes every frame, slow ones too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from tqdm import tqdm

from edgeproof.device.fingerprint import device_fingerprint
from edgeproof.device.memory import PeakMemory
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import SessionSettings
from edgeproof.schema import Section as _Section


class BenchmarkParams(_Section):
    """Latency/FPS measurement with ONNX Runtime on the machine the stage runs on."""

    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    intra_op_threads: int = Field(0, ge=0, le=1024)
    batch: int = Field(1, ge=1, le=256)
    warmup: int = Field(10, ge=0, le=10_000)
    runs: int = Field(100, ge=1, le=1_000_000)
    e2e_images: int = Field(50, ge=1, le=100_000)


log = logging.getLogger(__name__)


def summarize_ms(latencies_ms: Sequence[float], frames_per_call: int = 1) -> dict[str, float]:
    """Percentiles (p50/p90/p95/p99), mean, std, min, max of latencies in ms, and FPS."""
    arr = np.asarray(latencies_ms, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p95, p99 = np.percentile(arr, [50, 90, 95, 99])
    return {
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p95": round(float(p95), 4),
        "p99": round(float(p99), 4),
        "mean": round(float(arr.mean()), 4),
        "std": round(float(arr.std()), 4),
        "min": round(float(arr.min()), 4),
        "max": round(float(arr.max()), 4),
        "fps": round(1000.0 * frames_per_call * arr.size / float(arr.sum()), 3),
        "samples": int(arr.size),
    }


def time_calls(fn: Callable[[int], Any], warmup: int, runs: int, desc: str) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``runs`` times; return each run's ms."""
    for i in range(warmup):
        fn(i)
    out = []
    for i in tqdm(range(runs), desc=desc, unit="run", leave=False):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def benchmark_model(detector: Detector, sample: np.ndarray, batch: int, warmup: int, runs: int) -> dict[str, float]:
    """Model-only latency: ``session.run`` on a ready ``batch`` of a real preprocessed image."""
    if detector.fixed_batch and detector.fixed_batch != batch:
        raise ValueError(
            f"{detector.model_path} has a fixed batch of {detector.fixed_batch}; benchmark.batch is {batch}"
        )
    tensor, _ = detector.preprocess([sample] * batch)
    lat = time_calls(lambda _i: detector.infer(tensor), warmup, runs, "model")
    return summarize_ms(lat, frames_per_call=batch)


def benchmark_e2e(detector: Detector, image_paths: Sequence[Path], warmup: int, runs: int) -> dict[str, float]:
    """End-to-end per-frame latency: read + decode file, letterbox, infer, decode + NMS (batch 1)."""
    if not image_paths:
        raise ValueError("end-to-end benchmark needs at least one image")

    def one(i: int) -> None:
        detector([load_image(image_paths[i % len(image_paths)])])

    return summarize_ms(time_calls(one, warmup, runs, "end-to-end"))


def run_benchmark(
    model: Path, images: Sequence[Path], params: BenchmarkParams, deploy: DeploySettings
) -> dict[str, Any]:
    """The ``metrics/bench.json`` document: model-only and end-to-end figures plus the device fingerprint.

    ``latency_ms`` and ``fps_e2e`` (what the gate reads) are end-to-end, per frame at batch 1, with the
    deployment's post-processing (``deploy``); ``latency_model_ms`` and ``fps_model`` are
    ``session.run`` alone at ``params.batch``. ``model_sha256`` is the digest of the bytes the session
    was built from.
    """
    memory = PeakMemory().start()  # this variant's own peak resident memory (the release report compares them)
    session = SessionSettings(tuple(params.providers), params.graph_optimization, params.intra_op_threads)
    detector = Detector(model, Postprocess.deployed(deploy), session)
    paths = list(images)[: params.e2e_images]
    model_stats = benchmark_model(detector, load_image(paths[0]), params.batch, params.warmup, params.runs)
    e2e_stats = benchmark_e2e(detector, paths, params.warmup, params.runs)
    log.info(
        "end-to-end %.1f FPS (p95 %.2f ms); model-only %.1f FPS (p95 %.2f ms) on %s",
        e2e_stats["fps"],
        e2e_stats["p95"],
        model_stats["fps"],
        model_stats["p95"],
        detector.providers,
    )
    pick = ("p50", "p90", "p95", "p99", "mean")
    peak = memory.stop()
    return {
        "fps_e2e": e2e_stats["fps"],
        "fps_model": model_stats["fps"],
        "latency_ms": {k: e2e_stats[k] for k in pick},
        "latency_model_ms": {k: model_stats[k] for k in pick},
        "e2e": e2e_stats,
        "model": model_stats,
        "peak_memory_mb": peak["peak_memory_mb"],
        "memory": peak,
        "model_sha256": detector.sha256,
        "model_path": model.as_posix(),
        "input_size": list(detector.input_size),
        "settings": {**params.model_dump(), "e2e_images_used": len(paths)},
        "deploy": asdict(deploy),
        "device": device_fingerprint(detector.providers),
    }
