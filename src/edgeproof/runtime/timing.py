"""The one timing core: warm-up, timed loop, percentiles, model-only and end-to-end, interleaved rounds.

Used by the build benchmark (``edgeproof.benchmark``), the release choice (``release/measure.py``),
``edgeproof perf`` and the device measurement (``device/measure.py``), so a figure means the same
thing wherever it is read. Python 3.8, numpy only (it runs on the Jetson).

One meaning, one name, in every document built from these figures:

* ``latency_ms`` / ``latency_ms_pNN`` / ``fps_e2e``: **end to end**, per frame at batch 1: read and
  decode the image file (on a device with ``e2e_input: clip``, the clip's frame: ``device/timing.py``),
  letterbox, ``session.run``, decode + NMS at the deployment operating point, boxes mapped back to the
  original pixels;
* ``latency_model_ms`` / ``latency_model_ms_pNN`` / ``fps_model``: **model only**, ``session.run`` on
  a ready input tensor (at the stated batch; FPS counts images).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import SessionSettings

PERCENTILES = (50, 90, 95, 99)


def stats_ms(latencies_ms: Sequence[float], frames_per_call: int = 1) -> Dict[str, Any]:
    """Percentiles (p50/p90/p95/p99), mean, std, min, max of per-call latencies in ms; FPS and samples.

    ``fps`` is throughput over the timed calls: ``frames_per_call`` x calls / their summed time.
    """
    arr = np.asarray(latencies_ms, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no latency samples")
    values = np.percentile(arr, PERCENTILES)
    out: Dict[str, Any] = {f"p{q}": round(float(v), 4) for q, v in zip(PERCENTILES, values)}  # noqa: B905 (3.8)
    out.update(
        mean=round(float(arr.mean()), 4),
        std=round(float(arr.std()), 4),
        min=round(float(arr.min()), 4),
        max=round(float(arr.max()), 4),
        fps=round(1000.0 * frames_per_call * arr.size / float(arr.sum()), 3),
        samples=int(arr.size),
    )
    return out


def time_calls(
    fn: Callable[[int], Any],
    warmup: int,
    runs: int,
    before: Optional[Callable[[], Any]] = None,
    edge: Optional[Callable[[], Any]] = None,
) -> List[float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``runs`` times; each timed call's milliseconds.
    ``before``: called (untimed) right before every call, e.g. to time a step after something else.
    ``edge``: called once after the warm-up and once after the last timed call, so a window measured
    alongside (energy) spans exactly the timed calls."""
    for i in range(warmup):
        if before is not None:
            before()
        fn(i)
    if edge is not None:
        edge()
    out = []
    for i in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000.0)
    if edge is not None:
        edge()
    return out


def model_only(detector: Detector, image: np.ndarray, batch: int, warmup: int, runs: int) -> Dict[str, Any]:
    """``session.run`` alone on ``batch`` copies of a real letterboxed image (a static-batch model: its own
    batch); statistics of :func:`stats_ms` plus ``batch``. FPS counts images."""
    size = detector.fixed_batch or batch
    tensor, _ = detector.preprocess([image] * size)
    stats = stats_ms(time_calls(lambda _i: detector.infer(tensor), warmup, runs), frames_per_call=size)
    stats["batch"] = size
    return stats


def batch_sweep(detector: Detector, image: np.ndarray, sizes: Sequence[int], runs: int) -> List[Dict[str, Any]]:
    """Model-only throughput (images/s) and latency per batch size; a static-batch model at its own size only."""
    out = []
    for size in [detector.fixed_batch] if detector.fixed_batch else list(sizes):
        lat = model_only(detector, image, size, warmup=2, runs=max(3, runs))
        out.append(
            {
                "batch": size,
                "images_per_s": lat["fps"],
                "latency_model_ms_p50": lat["p50"],
                "latency_model_ms_p95": lat["p95"],
            }
        )
    return out


def end_to_end(
    detector: Detector, paths: Sequence[Path], warmup: int, runs: int, edge: Optional[Callable[[], Any]] = None
) -> Dict[str, Any]:
    """Per-frame latency of the whole path over image files (cycled), batch 1: read + decode the file,
    letterbox, infer, decode + NMS, boxes to original pixels. Statistics plus ``images``/``distinct_images``.
    ``edge``: see :func:`time_calls` (the edges of the timed frames, warm-up excluded)."""
    if not paths:
        raise ValueError("end-to-end timing needs at least one image")

    def one(i: int) -> None:
        detector([load_image(paths[i % len(paths)])])

    stats = stats_ms(time_calls(one, warmup, runs, edge=edge))
    stats.update(images=runs, distinct_images=min(runs, len(paths)))
    return stats


def interleaved(
    entries: Mapping[str, Callable[[], Dict[str, Any]]],
    rounds: int,
    on_round: Optional[Callable[[int, Dict[str, List[Dict[str, Any]]]], None]] = None,
) -> Dict[str, List[Dict[str, Any]]]:
    """Run every entry once per round, ``rounds`` times, in :func:`round_order`; each entry's results, one per
    round in round order (the result's keys in ``entries``' order).

    Interleaving makes a burst of load from elsewhere on the machine hit all entries alike, so entries
    are compared within one run only. ``on_round(r, results)`` is called after each round (logging).
    """
    names = list(entries)
    results: Dict[str, List[Dict[str, Any]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in round_order(names, r):
            results[name].append(entries[name]())
        if on_round is not None:
            on_round(r, results)
    return results


def round_order(names: Sequence[str], r: int) -> List[str]:
    """The order of round ``r``: it starts at entry ``r`` (cyclically) and runs forward in even rounds, backward in
    odd ones, so no entry always runs first (after the cold start of another's set-up) or always right after the
    same neighbour: each entry starts a round in turn, and each pair of entries runs both ways round."""
    n = len(names)
    step = -1 if r % 2 else 1
    return [names[(r + step * j) % n] for j in range(n)]


def median_round(rounds: Sequence[Dict[str, Any]], key: str = "fps_e2e") -> Dict[str, Any]:
    """The round with the median ``key`` (the upper middle for an even count), plus ``rounds_<key>``: all rounds'."""
    if not rounds:
        raise ValueError("no rounds")
    chosen = dict(sorted(rounds, key=lambda b: b[key])[len(rounds) // 2])
    chosen[f"rounds_{key}"] = [b[key] for b in rounds]
    return chosen


def end_to_end_overlapped(
    detector: Detector, paths: Sequence[Path], warmup: int, runs: int, depth: int = 1
) -> Dict[str, Any]:
    """End to end like :func:`end_to_end`, with frame n+1 decoded and letterboxed while the model runs frame n
    (:mod:`edgeproof.runtime.overlap`). ``fps`` is frames per wall second (throughput); the percentiles are each
    frame's latency from the start of its decode to its boxes, queue wait included."""
    from edgeproof.runtime.overlap import overlapped_latencies

    if not paths:
        raise ValueError("end-to-end timing needs at least one image")
    cycled = [paths[i % len(paths)] for i in range(warmup + runs)]
    overlapped_latencies(detector, cycled[:warmup], depth)
    latencies, wall = overlapped_latencies(detector, cycled[warmup:], depth)
    stats = stats_ms(latencies)
    stats.update(fps=round(runs / wall, 3), images=runs, distinct_images=min(runs, len(paths)), prefetch=depth)
    return stats


def parallel_calls(workers: Sequence[Callable[[int], Any]], warmup: int, runs: int) -> Tuple[List[float], float]:
    """Frames in parallel: ``len(workers)`` threads, worker ``k`` calling its own ``fn(i)`` for frames
    ``i = k, k + n, ...`` (each worker holds its own session). Each worker is warmed up ``warmup`` times
    first; returns every timed call's milliseconds and the wall seconds from the first start to the last
    end (so ``runs / wall`` is throughput, and the per-call times are each frame's own latency)."""
    n = len(workers)
    if n < 1:
        raise ValueError("frames in parallel need at least one worker")
    for fn in workers:
        for i in range(warmup):
            fn(i)
    latencies: List[List[float]] = [[] for _ in range(n)]
    errors: List[BaseException] = []
    gate = threading.Barrier(n + 1)

    def work(k: int) -> None:
        gate.wait()
        try:
            latencies[k].extend(time_calls(lambda j: workers[k](k + j * n), 0, len(range(k, runs, n))))
        except BaseException as exc:  # handed to the caller, which raises it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return [ms for per in latencies for ms in per], wall


def end_to_end_parallel(detectors: Sequence[Detector], paths: Sequence[Path], warmup: int, runs: int) -> Dict[str, Any]:
    """End to end like :func:`end_to_end` (the same work per frame, batch 1), with frames processed in
    parallel, one per detector (:func:`parallel_calls`). ``fps`` is frames per wall second (throughput);
    the percentiles are each frame's own latency, decode to boxes."""
    if not paths:
        raise ValueError("end-to-end timing needs at least one image")

    def worker(detector: Detector) -> Callable[[int], Any]:
        return lambda i: detector([load_image(paths[i % len(paths)])])

    latencies, wall = parallel_calls([worker(d) for d in detectors], warmup, runs)
    stats = stats_ms(latencies)
    stats.update(fps=round(runs / wall, 3), images=runs, distinct_images=min(runs, len(paths)), workers=len(detectors))
    return stats


CPU_ONLY = ("CPUExecutionProvider",)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a container pinned to 2 of 16 cores has 2)."""
    getter = getattr(os, "sched_getaffinity", None)
    return len(getter(0)) if getter is not None else (os.cpu_count() or 1)


def frames_in_parallel(
    model: Path,
    postprocess: Postprocess,
    providers: Sequence[str],
    graph_optimization: str,
    paths: Sequence[Path],
    warmup: int,
    runs: int,
    cores: Optional[int] = None,
) -> Dict[str, Any]:
    """Throughput with a frame per core in parallel on one shared single-threaded session (as
    ``edgeproof detect --workers`` runs): :func:`end_to_end_parallel` plus ``measured: true``.
    Informational (the gate judges one frame at a time), so it never raises: not measured, with the
    reason, on one core, with a GPU provider (frames would queue on the one device) or when it fails."""
    cores = cores or usable_cores()
    if tuple(providers) != CPU_ONLY:
        return {"measured": False, "reason": f"providers {list(providers)}: parallel frames would share one device"}
    if cores < 2:
        return {"measured": False, "reason": "one core"}
    try:
        detector = Detector(model, postprocess, SessionSettings(CPU_ONLY, graph_optimization, 1))
        return {"measured": True, **end_to_end_parallel([detector] * cores, paths, warmup, runs)}
    except Exception as exc:  # informational: the failure is the record
        return {"measured": False, "reason": f"failed: {type(exc).__name__}: {exc}"}
