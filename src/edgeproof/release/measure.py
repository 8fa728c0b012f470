"""Evaluate and benchmark every variant that can be judged on this machine.

Evaluation is the project's one evaluation (``evaluate_onnx``); fp32's result is reused from the
``evaluate`` stage when it scored the same file (same sha256), so the reference is not evaluated
twice. The benchmark is the project's one benchmark (``run_benchmark``), run for all measurable
variants in interleaved rounds in one process, so they share the machine's state; each variant
keeps its median round (by end-to-end FPS) as its figures of record, and its best round for the
speed comparison (other load only ever slows a round down). Memory is measured once per variant, apart,
in a fresh process of its own (:func:`~edgeproof.benchmark.memory_footprint`): in this process, which holds
torch, the variants' peaks would differ by noise. So is the throughput with frames in parallel. A
variant whose numerics cannot be judged here (fp16 without a GPU provider) is recorded as not evaluated,
with the reason, and never scored on a CPU.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproof.benchmark import BenchmarkParams, measured_apart, run_benchmark, with_apart
from edgeproof.evaluation.crosscheck import disagreements
from edgeproof.evaluation.params import EvaluateParams
from edgeproof.evaluation.run import evaluate_onnx
from edgeproof.io import sha256_file
from edgeproof.release.choose import map_drop
from edgeproof.runtime import timing
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.training.crosscheck import ultralytics_val
from edgeproof.verdict.eval_size import size_record

log = logging.getLogger(__name__)


@dataclass
class Measured:
    """Per variant: the evaluation and benchmark documents, or why there are none."""

    evals: dict[str, dict[str, Any]] = field(default_factory=dict)
    benches: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_judged: dict[str, str] = field(default_factory=dict)


def judged_here(parity: Mapping[str, Any]) -> dict[str, str]:
    """Variants whose detections could not be judged here (from ``metrics/parity.json``), with the reason."""
    per = parity.get("detections", {}).get("variants", {})
    return {name: v.get("reason", "not measured here") for name, v in per.items() if not v.get("measured")}


def _log_round(rounds: int) -> Callable[[int, dict[str, list[dict[str, Any]]]], None]:
    def log_round(r: int, results: dict[str, list[dict[str, Any]]]) -> None:
        fps = {name: runs[-1]["fps_e2e"] for name, runs in results.items()}
        log.info("round %d/%d: %s FPS end to end", r + 1, rounds, fps)

    return log_round


def measure(
    files: Mapping[str, Path],
    parity: Mapping[str, Any],
    data: Path,
    images: Sequence[Path],
    evaluate: EvaluateParams,
    bench: BenchmarkParams,
    deploy: DeploySettings,
    rounds: int,
    reference_eval: Mapping[str, Any] | None = None,
) -> Measured:
    """Evaluate + benchmark ``files`` (variant -> ONNX path); ``reference_eval``: the evaluate stage's fp32 result."""
    out = Measured(not_judged={k: v for k, v in judged_here(parity).items() if k in files})
    todo = {name: path for name, path in files.items() if name not in out.not_judged}
    for name, path in todo.items():
        same = reference_eval is not None and name == "fp32" and reference_eval.get("model_sha256") == sha256_file(path)
        if same and reference_eval is not None:
            log.info("fp32: reusing the evaluate stage's result for the same file")
            out.evals[name] = dict(reference_eval)
        else:
            out.evals[name] = evaluate_onnx(path, data, evaluate, deploy, validator=ultralytics_val).metrics
    entries = {
        name: functools.partial(run_benchmark, path, images, bench, deploy, apart=False) for name, path in todo.items()
    }
    runs = timing.interleaved(entries, rounds, on_round=_log_round(rounds))
    medians = {name: timing.median_round(b, "fps_e2e") for name, b in runs.items()}
    out.benches = {
        name: with_apart(median, measured_apart(todo[name], images, bench, deploy, median.get("model_sha256")))
        for name, median in medians.items()
    }
    return out


def records(
    facts: Mapping[str, Any], parity: Mapping[str, Any], measured: Measured, paths: Mapping[str, tuple[Path, Path]]
) -> dict[str, dict[str, Any]]:
    """The ``variants`` part of ``reports/release.json`` (with the full documents under ``eval``/``bench``).

    ``paths``: variant -> (eval JSON, bench JSON) where the stage writes the documents.
    """
    ref = measured.evals.get("fp32", {}).get("map50_95")
    per_parity = parity.get("detections", {}).get("variants", {})
    out: dict[str, dict[str, Any]] = {}
    for name, fact in facts.items():
        p = per_parity.get(name, {})
        rec: dict[str, Any] = {
            "path": fact["path"],
            "sha256": fact["sha256"],
            "parity_passed": p.get("passed"),
            "parity_matched_share": p.get("matched_share"),
            "parity_measured": p.get("measured"),  # false: not measurable here (fp16 without a GPU provider)
            "parity_reason": p.get("reason"),  # why it broke parity, was not judged or not measured
        }
        if name in measured.not_judged or name not in measured.evals:
            rec.update(evaluated=False, reason=measured.not_judged.get(name, "not measured"))
        else:
            ev, bench = measured.evals[name], measured.benches[name]
            m = ev.get("map50_95")
            rec.update(
                evaluated=True,
                map50_95=m,
                map50=ev.get("map50"),
                map_drop=map_drop(ref, m) if ref is not None and m is not None else None,
                fps_e2e=bench["fps_e2e"],
                fps_e2e_best_round=max(bench.get("rounds_fps_e2e") or [bench["fps_e2e"]]),
                latency_ms_p95=bench["latency_ms"]["p95"],
                latency_model_ms_p50=bench["latency_model_ms"]["p50"],
                peak_memory_mb=bench.get("peak_memory_mb"),
                model_memory_mb=bench.get("memory", {}).get("model_added_mb"),
                fps_e2e_parallel=bench.get("fps_e2e_parallel"),
                cross_check_problems=disagreements(ev["cross_check"]) if "cross_check" in ev else [],
                **size_record(ev),  # the val set behind map50/map50_95: a board that does not evaluate judges them
                eval_json=paths[name][0].as_posix(),
                bench_json=paths[name][1].as_posix(),
                eval=ev,
                bench=bench,
            )
        out[name] = rec
    return out


def public(variants: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records without the full documents (they are in their own files)."""
    return {name: {k: v for k, v in rec.items() if k not in ("eval", "bench")} for name, rec in variants.items()}
