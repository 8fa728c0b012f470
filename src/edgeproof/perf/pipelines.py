"""The frame-pipeline entries of ``edgeproof perf``: the overlapped pipeline and frames in parallel.

Both keep the work per frame the same as the serial entry (batch 1, decode from file, letterbox,
infer, decode + NMS at the deploy operating point) and change only how frames share the cores:

- **overlapped** (``<variant>+overlap/intra-N``): frame n+1 decoded while the model runs frame n, one
  session at N intra-op threads (``benchmark.intra_op_threads``; the other split, ``+overlap-info``, is shown
  but never judged);
- **in parallel** (``<variant>+parallel``): a frame per core, on one single-threaded session the workers
  share (ONNX Runtime runs one session from several threads), frames handed out in turn, the way a
  multi-stream application or ``edgeproof detect --workers`` runs; ultralytics gets the same on its side
  (``ultralytics-onnx+parallel``: one ``YOLO`` per thread, its documented thread-safe pattern).

Throughput (FPS) and each frame's own latency are reported apart: parallel frames raise the first,
never the second.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgeproof.benchmark import BenchmarkParams
from edgeproof.perf import ultra
from edgeproof.runtime import timing as core
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import SessionSettings

OVERLAP = "+overlap"
OVERLAP_INFO = "+overlap-info"  # the thread split not named in advance: shown, never judged
PARALLEL = "+parallel"


def _session(bench: BenchmarkParams, threads: int) -> SessionSettings:
    return SessionSettings(tuple(bench.providers), bench.graph_optimization, threads)


def overlapped(path: Path, images: list[Path], bench: BenchmarkParams, deploy: DeploySettings) -> dict[str, float]:
    """One variant with the overlapped frame pipeline (prefetch 1) at ``bench.intra_op_threads``."""
    detector = Detector(path, Postprocess.deployed(deploy), _session(bench, bench.intra_op_threads))
    model = core.model_only(detector, load_image(images[0]), 1, bench.warmup, bench.runs)
    # end_to_end_overlapped times frames warmup .. warmup + runs - 1 of the cycle; the serial entries and
    # ultralytics time frames 0 .. runs - 1. Shifted by the warm-up, the timed frames are the same ones.
    shifted = [images[(j - bench.warmup) % len(images)] for j in range(len(images))]
    e2e = core.end_to_end_overlapped(detector, shifted, bench.warmup, bench.runs, depth=1)
    return _figures(model, e2e)


def parallel(
    path: Path, images: list[Path], bench: BenchmarkParams, deploy: DeploySettings, workers: int
) -> dict[str, float]:
    """One variant with ``workers`` frames in parallel on one shared single-threaded session (as
    ``edgeproof detect --workers`` runs); model-only is that session alone."""
    detector = Detector(path, Postprocess.deployed(deploy), _session(bench, 1))
    model = core.model_only(detector, load_image(images[0]), 1, bench.warmup, bench.runs)
    e2e = core.end_to_end_parallel([detector] * workers, images, bench.warmup, bench.runs)
    return _figures(model, e2e)


def _figures(model: Mapping[str, Any], e2e: Mapping[str, Any]) -> dict[str, float]:
    return {
        "latency_model_ms_p50": model["p50"],
        "latency_model_ms_p95": model["p95"],
        "latency_ms_p50": e2e["p50"],
        "latency_ms_p95": e2e["p95"],
        "fps_e2e": e2e["fps"],
    }


def _label(threads: int) -> str:
    return f"intra-{threads}" if threads else "intra-default"


def pipeline_entries(
    files: Mapping[str, Path],
    release: str | None,
    images: list[Path],
    bench: BenchmarkParams,
    deploy: DeploySettings,
) -> dict[str, Callable[[], dict[str, Any]]]:
    """fp32's and the release variant's overlapped entry and their parallel entry. The overlapped pipeline is
    judged at the thread split named in advance, ``benchmark.intra_op_threads`` (0: ONNX Runtime's default, where
    the prefetch thread competes), never at the better of two; the other split (cores - 1, or the default where
    that is the one named) runs as information only (``+overlap-info``)."""
    n = core.usable_cores()
    names = ["fp32"] + ([release] if release and release != "fp32" and release in files else [])
    named = bench.intra_op_threads
    other = (max(1, n - 1) if named == 0 else 0) if n > 1 else None
    splits = {f"{OVERLAP}/{_label(named)}": named}
    if other is not None and other != named:
        splits[f"{OVERLAP_INFO}/{_label(other)}"] = other
    out: dict[str, Callable[[], dict[str, Any]]] = {}
    for name in names:
        for label, threads in splits.items():
            split = bench.model_copy(update={"intra_op_threads": threads})
            out[f"{name}{label}"] = functools.partial(overlapped, files[name], images, split, deploy)
        if n > 1:
            out[f"{name}{PARALLEL}"] = functools.partial(parallel, files[name], images, bench, deploy, n)
    return out


def ultralytics_parallel(
    models: Mapping[str, Any], images: list[Path], imgsz: int, timing: ultra.Timing
) -> dict[str, Callable[[], dict[str, Any]]]:
    """ultralytics' ONNX predict with one ``YOLO`` per core in parallel (none on a one-core machine)."""
    if core.usable_cores() < 2 or "ultralytics-onnx" not in models:
        return {}
    model = models["ultralytics-onnx"]
    return {
        f"ultralytics-onnx{PARALLEL}": functools.partial(
            ultra.time_predict_parallel, model, images, imgsz, timing, core.usable_cores()
        )
    }
