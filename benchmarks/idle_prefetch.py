"""The overlapped frame pipeline with its decode thread at the lowest priority (issue 22).

    python benchmarks/idle_prefetch.py --variant int8 --rounds 9

``edgeproof detect --video`` and ``edgeproof perf``'s ``+overlap`` entries decode frame n+1 in a thread
while the model runs frame n. On two cores that thread competes with ONNX Runtime's intra-op threads. Set
to ``SCHED_IDLE`` it would run only on a core ONNX Runtime leaves idle, which a worker that does not spin
between operators does. This script times, in interleaved rounds over the same val images: one frame at
a time, and overlapped with the decode thread at normal or idle priority, with ONNX Runtime's spinning on
(its default) or off. Each: frames per wall second and the median frame latency (decode start to boxes);
the ratio of each round's FPS to one-frame-at-a-time's, median and range. Prints one JSON object.
The idle priority is set by wrapping the pipeline's producer (``runtime.overlap._producer``): an
experiment, not an option of the product. Linux only (``os.SCHED_IDLE``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgeproof.data.canonical import split_image_paths
from edgeproof.runtime import overlap
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image

_PRODUCER = overlap._producer


def _idle_producer(*args: Any, **kwargs: Any) -> Any:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread only
    return _PRODUCER(*args, **kwargs)


def detector(model: Path, spin: bool) -> Detector:
    """A detector at the deployed operating point; ``spin``: ONNX Runtime's intra-op spinning."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return Detector(model, Postprocess(), ort_session=session)


def serial(d: Detector, paths: list[Path], frames: int) -> tuple[float, float]:
    """Frames per second and median latency, one frame at a time."""
    latencies, start = [], time.perf_counter()
    for i in range(frames):
        began = time.perf_counter()
        d([load_image(paths[i % len(paths)])])
        latencies.append((time.perf_counter() - began) * 1000.0)
    return frames / (time.perf_counter() - start), statistics.median(latencies)


def overlapped(d: Detector, paths: list[Path], frames: int, idle: bool) -> tuple[float, float]:
    """Frames per second and median latency, frame n+1 decoded while frame n runs."""
    overlap._producer = _idle_producer if idle else _PRODUCER
    try:
        latencies, wall = overlap.overlapped_latencies(d, [paths[i % len(paths)] for i in range(frames)], 1)
    finally:
        overlap._producer = _PRODUCER
    return frames / wall, statistics.median(latencies)


def entries(model: Path, paths: list[Path], frames: int) -> dict[str, Callable[[], tuple[float, float]]]:
    """Each way to run the frames, as a call that times one round of it."""
    spin, still = detector(model, True), detector(model, False)
    return {
        "serial": lambda: serial(spin, paths, frames),
        "serial_no_spin": lambda: serial(still, paths, frames),
        "overlap": lambda: overlapped(spin, paths, frames, False),
        "overlap_idle": lambda: overlapped(spin, paths, frames, True),
        "overlap_no_spin": lambda: overlapped(still, paths, frames, False),
        "overlap_idle_no_spin": lambda: overlapped(still, paths, frames, True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--models", type=Path, default=Path("models/optimized"))
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    paths = split_image_paths(args.data, "val")[:50]
    runs = entries(args.models / f"{args.variant}.onnx", paths, args.frames)
    for run in runs.values():  # warm-up
        run()
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, run in runs.items():
            got[k].append(run())
    out = {}
    for k, rounds in got.items():
        ratios = sorted(f / s for (f, _), (s, _) in zip(rounds, got["serial"], strict=True))
        out[k] = {
            "fps": round(statistics.median(f for f, _ in rounds), 1),
            "latency_ms_p50": round(statistics.median(ms for _, ms in rounds), 2),
            "fps_vs_serial_by_round": [round(statistics.median(ratios), 3), round(ratios[0], 3), round(ratios[-1], 3)],
        }
    print(json.dumps({"variant": args.variant, "rounds": args.rounds, "frames": args.frames, "ways": out}, indent=2))


if __name__ == "__main__":
    main()
