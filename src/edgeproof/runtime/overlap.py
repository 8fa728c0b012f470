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


def _producer(
    detector: Detector, paths: Sequence[Path], out: queue.Queue, slots: threading.Semaphore, stop: threading.Event
) -> None:
    try:
        for path in paths:
            # a frame is decoded only once a slot is free, so no frame waits decoded longer than it must
            while not slots.acquire(timeout=0.05):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            start = time.perf_counter()
            out.put((path, detector.preprocess([load_image(path)]), start))
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
    frames: queue.Queue = queue.Queue()  # bounded by the slots: at most ``depth`` frames decoded ahead
    slots, stop = threading.Semaphore(depth), threading.Event()
    worker = threading.Thread(target=_producer, args=(detector, list(paths), frames, slots, stop), daemon=True)
    worker.start()
    try:
        while True:
            item: Any = frames.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            path, (batch, boxes), start = item
            slots.release()  # the next frame decodes while this one runs
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
