"""What a model run costs the frame's other steps (issue 22): the steps outside the model, timed cold.

    python benchmarks/after_model.py --models models/optimized --out reports/after_model.json

``edgeproof perf`` finds the steps around the model (read + decode the file, letterbox to the input,
decode + NMS) about twice as slow inside a frame as back to back. This script asks why, by timing each
step right after different things, on the same val images and the same detector:

* ``alone``: the step after itself (warm caches, the figure a step's own benchmark gives);
* ``model``: after ``session.run`` on the default threads (what a frame does);
* ``model_1_thread``: after ``session.run`` on one intra-op thread (no thread pool, nothing spinning);
* ``model_then_sleep``: after ``session.run`` and a 2 ms sleep (spinning workers have gone to sleep);
* ``sweep_<N>MiB``: after reading an ``N`` MiB array (evicts the caches up to that size, no model).

For each condition: the median ms of each step over ``--rounds`` interleaved rounds (the median of
each round's median) and the minor page faults per call (those counted around the condition too, so a
figure of 0 rules page faults out). ``edgeproof perf`` keeps the cheapest of these checks, the steps after
a read past the L3, in its "Where the time goes" section; this script adds the others. If the model's
cost to the other steps is the caches, a large enough sweep reproduces much of it, and one thread, no
spinning and a sleep do not remove it. Prints one JSON object and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.canonical import split_image_paths
from edgeproof.device.fingerprint import device_fingerprint
from edgeproof.perf.anatomy import SKIP_RUNS, median_after, step_calls
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import SessionSettings

SWEEPS_MIB = (1, 4, 32, 64)


def conditions(detector: Detector, single: Detector, batch: np.ndarray) -> dict[str, Callable[[], Any]]:
    """What runs before each timed step (see the module docstring)."""

    def then_sleep() -> None:
        detector.infer(batch)
        time.sleep(0.002)

    out: dict[str, Callable[[], Any]] = {
        "alone": lambda: None,
        "model": lambda: detector.infer(batch),
        "model_1_thread": lambda: single.infer(batch),
        "model_then_sleep": then_sleep,
    }
    for mib in SWEEPS_MIB:
        out[f"sweep_{mib}MiB"] = np.ones(mib * 2**20 // 8).sum  # reads the whole array
    return out


def measure(model: Path, paths: list[Path], rounds: int, frames: int) -> dict[str, Any]:
    """Every step outside the model after every condition, interleaved over ``rounds``: the median of the
    rounds' medians (ms) and the minor page faults per call (most of any round)."""
    detector = Detector(model, Postprocess())
    single = Detector(model, Postprocess(), SessionSettings(intra_op_threads=1))
    batch, _ = detector.preprocess([load_image(paths[0])])
    calls = {k: v for k, v in step_calls(detector, paths).items() if k != "model"}
    calls["read_file"] = lambda i: paths[i % len(paths)].read_bytes()  # the decode's syscalls, apart
    befores = conditions(detector, single, batch)
    ms: dict[str, dict[str, list[float]]] = {c: {s: [] for s in calls} for c in befores}
    faults: dict[str, dict[str, float]] = {c: dict.fromkeys(calls, 0.0) for c in befores}
    for _ in range(rounds):
        for cond, before in befores.items():
            for name, call in calls.items():
                f0 = _faults()
                ms[cond][name].append(median_after(before, call, frames))
                calls_made = frames + SKIP_RUNS  # the untimed first calls fault too
                faults[cond][name] = max(faults[cond][name], (_faults() - f0) / calls_made)
    medians = {c: {s: round(statistics.median(v), 4) for s, v in per.items()} for c, per in ms.items()}
    for per in medians.values():
        per["outside_model"] = round(sum(v for k, v in per.items() if k != "read_file"), 4)
    return {"ms": medians, "max_minor_faults_per_call": faults, "file_mb": round(model.stat().st_size / 1e6, 2)}


def _faults() -> int:
    """Minor page faults of this process so far (counted around the ``before()`` calls too)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models/optimized"))
    parser.add_argument("--variants", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    paths = split_image_paths(args.data, "val")[: args.images]
    fp = device_fingerprint()
    result = {
        "machine": f"{fp.get('cpu_model')}, {fp.get('cpu_cores')} cores",
        "onnxruntime": fp.get("onnxruntime", {}).get("version"),
        "images": len(paths),
        "rounds": args.rounds,
        "frames": args.frames,
        "variants": {v: measure(args.models / f"{v}.onnx", paths, args.rounds, args.frames) for v in args.variants},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
