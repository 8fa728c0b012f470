"""Latency and throughput of an ONNX model with ONNX Runtime on this machine.

Two numbers matter on a device: the model alone (``session.run`` on a ready tensor) and the
end-to-end path a camera app pays per frame (decode the file -> letterbox -> infer -> decode
+ NMS). Both come from the one timing core (:mod:`edgeproof.runtime.timing`, which defines the
field names); FPS is throughput over the timed frames, so it includes every frame, slow ones too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edgeproof.device.fingerprint import device_fingerprint
from edgeproof.device.footprint import isolated_footprint
from edgeproof.profiles import ProviderName
from edgeproof.runtime import timing
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import SessionSettings
from edgeproof.schema import Section as _Section


class BenchmarkParams(_Section):
    """Latency/FPS measurement with ONNX Runtime on the machine the stage runs on."""

    providers: list[ProviderName] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    intra_op_threads: int = Field(0, ge=0, le=1024)
    batch: int = Field(1, ge=1, le=256)
    warmup: int = Field(10, ge=0, le=10_000)
    runs: int = Field(100, ge=1, le=1_000_000)
    e2e_images: int = Field(50, ge=1, le=100_000)


log = logging.getLogger(__name__)


def benchmark_model(detector: Detector, sample: np.ndarray, batch: int, warmup: int, runs: int) -> dict[str, Any]:
    """Model-only latency (:func:`~edgeproof.runtime.timing.model_only`); a static batch must be ``batch``."""
    if detector.fixed_batch and detector.fixed_batch != batch:
        raise ValueError(
            f"{detector.model_path} has a fixed batch of {detector.fixed_batch}; benchmark.batch is {batch}"
        )
    return timing.model_only(detector, sample, batch, warmup, runs)


def benchmark_e2e(detector: Detector, image_paths: Sequence[Path], warmup: int, runs: int) -> dict[str, Any]:
    """End-to-end per-frame latency (:func:`~edgeproof.runtime.timing.end_to_end`, batch 1)."""
    return timing.end_to_end(detector, image_paths, warmup, runs)


def memory_footprint(
    model: Path, images: Sequence[Path], params: BenchmarkParams, deploy: DeploySettings, sha256: str | None = None
) -> dict[str, Any]:
    """The model's memory in a fresh process of its own (:mod:`edgeproof.device.footprint`), over the same
    end-to-end frames as the timing, so variants compare by their own memory, not the measuring process's.

    ``sha256``: the digest of the bytes that were timed; a file that no longer has it is not measured. A
    footprint that cannot be measured says why (``peak_memory_mb`` None: a memory rule is inconclusive).
    """
    session = SessionSettings(tuple(params.providers), params.graph_optimization, params.intra_op_threads)
    paths = list(images)[: params.e2e_images]
    try:
        return isolated_footprint(model, paths, session, deploy, max(params.runs, len(paths)), sha256)
    except RuntimeError as exc:
        log.warning("memory not measured: %s", exc)
        return {"peak_memory_mb": None, "memory": {"measurable": False, "reason": str(exc), "isolated": True}}


def parallel_throughput(
    model: Path, images: Sequence[Path], params: BenchmarkParams, deploy: DeploySettings
) -> dict[str, Any]:
    """End to end with a frame per core in parallel (:func:`~edgeproof.runtime.timing.frames_in_parallel`):
    what a multi-stream application gets from this machine. Informational: the gate judges one frame at a
    time, so a failure here is recorded with its reason, never raised."""
    paths = list(images)[: params.e2e_images]
    post = Postprocess.deployed(deploy)
    return timing.frames_in_parallel(
        model, post, params.providers, params.graph_optimization, paths, params.warmup, params.runs
    )


def measured_apart(
    model: Path, images: Sequence[Path], params: BenchmarkParams, deploy: DeploySettings, sha256: str | None = None
) -> dict[str, Any]:
    """What is measured once per model, apart from timed rounds: the memory footprint (a child process, of
    the bytes with ``sha256`` when given) and the throughput with frames in parallel."""
    return {
        "memory": memory_footprint(model, images, params, deploy, sha256),
        "e2e_parallel": parallel_throughput(model, images, params, deploy),
    }


def run_benchmark(
    model: Path, images: Sequence[Path], params: BenchmarkParams, deploy: DeploySettings, apart: bool = True
) -> dict[str, Any]:
    """The ``metrics/bench.json`` document: model-only and end-to-end figures plus the device fingerprint.

    ``latency_ms`` and ``fps_e2e`` (what the gate reads) are end-to-end, per frame at batch 1, with the
    deployment's post-processing (``deploy``); ``latency_model_ms`` and ``fps_model`` are
    ``session.run`` alone at ``params.batch``. ``model_sha256`` is the digest of the bytes the session
    was built from. ``apart``: also measure :func:`measured_apart` (callers that time a model in several
    rounds measure it once, apart).
    """
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
    doc = {
        "fps_e2e": e2e_stats["fps"],
        "fps_model": model_stats["fps"],
        "latency_ms": {k: e2e_stats[k] for k in pick},
        "latency_model_ms": {k: model_stats[k] for k in pick},
        "e2e": e2e_stats,
        "model": model_stats,
        "model_sha256": detector.sha256,
        "model_path": model.as_posix(),
        "input_size": list(detector.input_size),
        "settings": {**params.model_dump(), "e2e_images_used": len(paths)},
        "deploy": asdict(deploy),
        "device": device_fingerprint(detector.providers),
    }
    return with_apart(doc, measured_apart(model, paths, params, deploy, detector.sha256)) if apart else doc


def with_apart(doc: dict[str, Any], apart: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a benchmark document) with :func:`measured_apart`'s figures: ``peak_memory_mb`` and the
    footprint's figures and method, flat, under ``memory``; ``e2e_parallel`` and ``fps_e2e_parallel``."""
    footprint, par = apart["memory"], apart["e2e_parallel"]
    detail = {k: v for k, v in footprint.items() if k != "memory"}
    return {
        **doc,
        "peak_memory_mb": footprint["peak_memory_mb"],
        "memory": {**detail, **footprint["memory"]},
        "fps_e2e_parallel": par.get("fps") if par.get("measured") else None,
        "e2e_parallel": par,
    }
