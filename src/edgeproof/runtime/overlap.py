"""Overlapped frame pipeline: decode + letterbox frame n+1 in a thread while the model runs frame n.

A bounded prefetch (``depth`` frames prepared ahead), so memory stays flat and a slow model applies
back-pressure. Decoding (Pillow), resizing (OpenCV) and ``session.run`` release the GIL, so the two
stages really run at once. Throughput (frames per wall second) rises; each frame's latency, counted
from the start of its decode to its boxes, includes any wait in the queue and is reported apart.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Sequence, Tuple

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Detections
from edgeproof.runtime.preprocess import load_image

_END = object()


def _producer(detector: Detector, paths: Sequence[Path], out: queue.Queue, stop: threading.Event) -> None:
    try:
        for path in paths:
            start = time.perf_counter()
            item = (path, detector.preprocess([load_image(path)]), start)
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        out.put(_END)
    except BaseException as exc:  # handed to the consumer, which raises it
        out.put(exc)


def detect_overlapped(
    detector: Detector, paths: Sequence[Path], depth: int = 1
) -> Iterator[Tuple[Path, Detections, float]]:
    """Detect in each image file, in order; yields ``(path, detections, start)`` where ``start`` is the
    ``time.perf_counter()`` at which that frame's decode began. Up to ``depth`` frames are prepared ahead."""
    if depth < 1:
        raise ValueError(f"prefetch depth must be at least 1, got {depth}")
    frames: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    worker = threading.Thread(target=_producer, args=(detector, list(paths), frames, stop), daemon=True)
    worker.start()
    try:
        while True:
            item: Any = frames.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            path, (batch, boxes), start = item
            raw = detector.infer(batch)
            yield path, detector.postprocess(raw, boxes)[0], start
    finally:
        stop.set()
        worker.join()


def overlapped_latencies(detector: Detector, paths: Sequence[Path], depth: int = 1) -> Tuple[List[float], float]:
    """Per-frame latencies (ms, decode start to boxes) and the wall seconds of one overlapped pass over ``paths``."""
    latencies = []
    start = time.perf_counter()
    for _path, _det, began in detect_overlapped(detector, paths, depth):
        latencies.append((time.perf_counter() - began) * 1000.0)
    return latencies, time.perf_counter() - start
