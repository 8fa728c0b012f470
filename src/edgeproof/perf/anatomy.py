"""Where the time goes: the model's time per operator type, and an end-to-end frame split into its steps.

The compute floor (:mod:`edgeproof.perf.floor`) counts only the convolutions' FLOPs. Whether a model
can come within 1.3x of it depends on what else it runs, so this module measures it rather than
guessing:

- **per operator type** (ONNX Runtime's own profiler, the same session settings as the timed runs):
  milliseconds per run, share, node count and the bytes each type moves (its inputs, outputs and
  weights as the profiler reports them); the convolutions' own GFLOP/s, to set against the floor's;
- **per step of a frame** (decode, letterbox into the input tensor, model, decode + NMS), medians over the same
  val images, so the time outside the model is shown, not inferred; and each step alone, back to back on warm
  caches, so what the other steps of a frame (the model above all) cost each one through the caches is shown too;
  and each step right after reading an array larger than any L3, no model run, so how much of that cost the
  caches alone bring back is measured, not assumed.

The profiler adds a little time per node, so the per-type milliseconds are scaled to the model-only
p50 measured without the profiler in the same call; the shares are the profiler's own.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.perf.floor import LARGE_BYTES
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import SessionSettings, graph_level, import_ort
from edgeproof.runtime.timing import time_calls

CONV_OPS = ("Conv", "QLinearConv", "ConvInteger", "FusedConv", "NchwcConv")
SKIP_RUNS = 5  # the first runs allocate and tune; their kernel times are not the model's


def _kernel_events(events: list[dict[str, Any]], skip: int) -> tuple[list[dict[str, Any]], int]:
    """The per-node kernel events of every run after the first ``skip``, and how many runs that is."""
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    if len(starts) <= skip:
        raise ValueError(f"profile has {len(starts)} runs; need more than {skip}")
    after = starts[skip]
    kernels = [
        e
        for e in events
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time") and e["ts"] >= after
    ]
    return kernels, len(starts) - skip


def op_breakdown(events: list[dict[str, Any]], skip: int = SKIP_RUNS) -> dict[str, Any]:
    """Per operator type from an ONNX Runtime profile (its JSON events): ``ms_per_run`` (profiled),
    ``share``, ``nodes`` per run and ``mbytes`` (inputs + outputs + weights) per run; plus the total."""
    kernels, runs = _kernel_events(events, skip)
    per: dict[str, dict[str, float]] = {}
    for e in kernels:
        args = e.get("args", {})
        row = per.setdefault(args.get("op_name", "?"), {"us": 0.0, "nodes": 0, "bytes": 0.0})
        row["us"] += e["dur"]
        row["nodes"] += 1
        row["bytes"] += sum(float(args.get(k, 0) or 0) for k in ("activation_size", "output_size", "parameter_size"))
    total = sum(r["us"] for r in per.values()) or 1.0
    ops = {
        op: {
            "ms_per_run": round(r["us"] / runs / 1000.0, 4),
            "share": round(r["us"] / total, 4),
            "nodes": round(r["nodes"] / runs),
            "mbytes": round(r["bytes"] / runs / 1e6, 3),
        }
        for op, r in sorted(per.items(), key=lambda kv: -kv[1]["us"])
    }
    return {"ops": ops, "profiled_ms_per_run": round(total / runs / 1000.0, 4), "runs": runs}


def profile_model(
    model: Path, sample: np.ndarray, session: SessionSettings, runs: int, gflop: float | None = None
) -> dict[str, Any]:
    """Profile ``model`` on ``sample`` (one ready input) for ``runs`` runs; :func:`op_breakdown` with each
    type's milliseconds scaled to the unprofiled p50 (``ms``), and the convolutions' GFLOP/s when
    ``gflop`` (the model's convolution GFLOP, :func:`~edgeproof.perf.floor.count_flops`) is given."""
    ort = import_ort()
    detector = Detector(model, session=session)
    batch = sample.astype(detector.input_dtype, copy=False)
    p50 = _p50_ms(lambda _i: detector.session.run(None, {detector.input_name: batch}), runs)
    options = ort.SessionOptions()
    options.graph_optimization_level = graph_level(session.graph_optimization)
    options.intra_op_num_threads = session.intra_op_threads
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="edgeproof-profile-") as tmp:
        options.profile_file_prefix = str(Path(tmp) / "ort")
        profiled = ort.InferenceSession(str(model), sess_options=options, providers=list(session.providers))
        for _ in range(runs + SKIP_RUNS):
            profiled.run(None, {detector.input_name: batch})
        events = json.loads(Path(profiled.end_profiling()).read_text())
    out = op_breakdown(events)
    for row in out["ops"].values():
        row["ms"] = round(row["share"] * p50, 4)
    conv_ms = sum(r["ms"] for op, r in out["ops"].items() if op in CONV_OPS)
    out.update(model_ms_p50=p50, conv_ms=round(conv_ms, 4), conv_share=round(conv_ms / p50, 4) if p50 else None)
    out["conv_gflop_per_s"] = round(gflop / conv_ms * 1e3, 1) if gflop and conv_ms else None
    return out


STEPS = ("decode", "letterbox_to_tensor", "model", "decode_nms")


def frame_steps(detector: Detector, paths: Sequence[Path], frames: int) -> dict[str, Any]:
    """Median milliseconds of each step of the end-to-end path (the detector's own methods, as
    :meth:`Detector.__call__` chains them) over ``frames`` frames (``paths`` cycled), the median whole
    frame, and ``outside_model_ms`` (the frame's median minus the model step's); the same steps alone
    (:func:`steps_alone`) and right after a cache-evicting read (:func:`steps_evicted`)."""
    if not paths:
        raise ValueError("frame steps need at least one image")
    times: dict[str, list[float]] = {s: [] for s in (*STEPS, "frame")}
    for i in range(frames + SKIP_RUNS):
        marks = [time.perf_counter()]
        image = load_image(paths[i % len(paths)])
        marks.append(time.perf_counter())
        batch, boxes = detector.preprocess([image])
        marks.append(time.perf_counter())
        raw = detector.infer(batch)
        marks.append(time.perf_counter())
        detector.postprocess(raw, boxes)
        marks.append(time.perf_counter())
        if i < SKIP_RUNS:
            continue
        for step, a, b in zip(STEPS, marks, marks[1:]):  # noqa: B905 (one mark more than steps)
            times[step].append((b - a) * 1000.0)
        times["frame"].append((marks[-1] - marks[0]) * 1000.0)
    med = {k: round(statistics.median(v), 4) for k, v in times.items()}
    alone = steps_alone(detector, paths, frames)
    outside_alone = sum(v for k, v in alone.items() if k != "model")
    evicted = steps_evicted(detector, paths, frames)
    return {
        "steps_ms": {s: med[s] for s in STEPS},
        "frame_ms": med["frame"],
        "outside_model_ms": round(med["frame"] - med["model"], 4),
        "alone_ms": alone,
        "outside_model_alone_ms": round(outside_alone, 4),
        "evicted_ms": evicted,
        "outside_model_evicted_ms": round(sum(evicted.values()), 4),
        "evicted_mib": LARGE_BYTES // 2**20,
        "frames": frames,
    }


def step_calls(detector: Detector, paths: Sequence[Path]) -> dict[str, Callable[[int], Any]]:
    """Each step of :func:`frame_steps` as a call on frame ``i`` (``paths`` cycled), its inputs prepared."""
    images = [load_image(p) for p in paths]
    prepared = [detector.preprocess([image]) for image in images]
    raws = [detector.infer(batch) for batch, _ in prepared]
    n = len(paths)
    return {
        "decode": lambda i: load_image(paths[i % n]),
        "letterbox_to_tensor": lambda i: detector.preprocess([images[i % n]]),
        "model": lambda i: detector.infer(prepared[i % n][0]),
        "decode_nms": lambda i: detector.postprocess(raws[i % n], prepared[i % n][1]),
    }


def steps_alone(detector: Detector, paths: Sequence[Path], frames: int) -> dict[str, float]:
    """Each step of :func:`frame_steps` repeated back to back, ``frames`` times over the same images cycled
    (each step's inputs prepared beforehand): medians in ms. Its caches stay warm, so the gap to the step's
    median inside a frame is what the other steps, the model above all, cost it through the caches."""
    return {step: _p50_ms(call, frames) for step, call in step_calls(detector, paths).items()}


def median_after(before: Callable[[], Any], call: Callable[[int], Any], frames: int) -> float:
    """Median ms of ``call(i)`` over ``frames`` calls, each timed right after an untimed ``before()``."""
    return round(statistics.median(time_calls(call, SKIP_RUNS, frames, before)), 4)


def steps_evicted(detector: Detector, paths: Sequence[Path], frames: int) -> dict[str, float]:
    """The steps outside the model, each right after reading an array larger than any L3 (no model run):
    medians in ms. What this brings back of the in-frame cost is the caches' share of it, not the model's
    threads (none run here)."""
    sweep = np.ones(LARGE_BYTES // 8)
    calls = step_calls(detector, paths)
    return {step: median_after(sweep.sum, call, frames) for step, call in calls.items() if step != "model"}


def _p50_ms(call: Any, runs: int) -> float:
    """Median ms of ``call(i)`` over ``runs`` timed calls after :data:`SKIP_RUNS` untimed ones."""
    return round(statistics.median(time_calls(call, SKIP_RUNS, runs)), 4)
