"""Frame pipelines beyond one frame at a time: overlapped, and frames in parallel.

**Overlapped** (:func:`detect_frames`; over image files :func:`detect_overlapped`): decode + letterbox
frame n+1 in a thread while the model runs frame n (the frames of a clip too: ``device/timing.py``). A
bounded prefetch (``depth`` frames prepared ahead), so memory stays flat and a slow model applies
back-pressure. Decoding (Pillow), resizing (OpenCV) and ``session.run`` release the GIL,
so the two stages really run at once.

**In parallel** (:func:`detect_parallel`): ``workers`` threads each take a whole frame (decode to
boxes) on one shared detector; ONNX Runtime lets several threads run one session at once, so the
weights are held once. With a single-threaded session per call this uses every core for whole
frames instead of splitting each convolution across cores, which on a small CPU wastes less time
in synchronisation and keeps a core busy while another decodes.

Either way throughput (frames per wall second) rises; each frame's latency, counted from the start of
its decode to its boxes, is reported apart.
"""

from __future__ import annotations

import collections
import itertools
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Deque, Iterable, Iterator, List, Sequence, Tuple

import numpy as np

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Detections
from edgeproof.runtime.preprocess import load_image

_END = object()


def decoded(paths: Iterable[Path]) -> Iterator[Tuple[Path, np.ndarray]]:
    """Each image file with its RGB pixels, decoded only when the next one is asked for (so a frame's decode
    runs where, and when, :func:`detect_frames` stamps its start)."""
    for path in paths:
        yield path, load_image(path)


def _producer(
    detector: Detector,
    frames: Iterator[Tuple[Any, np.ndarray]],
    out: queue.Queue,
    slots: threading.Semaphore,
    stop: threading.Event,
) -> None:
    try:
        while True:
            # a frame is decoded only once a slot is free, so no frame waits decoded longer than it must
            while not slots.acquire(timeout=0.05):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            start = time.perf_counter()  # before the decode: a frame's latency counts its decode
            item = next(frames, _END)
            if item is _END:
                break
            key, rgb = item
            out.put((key, detector.preprocess([rgb]), start))
        out.put(_END)
    except BaseException as exc:  # handed to the consumer, which raises it
        out.put(exc)


def detect_frames(
    detector: Detector, frames: Iterable[Tuple[Any, np.ndarray]], depth: int = 1
) -> Iterator[Tuple[Any, Detections, float]]:
    """Detect in each ``(key, rgb)`` of ``frames``, in order, the next ones decoded (``next(frames)``) and
    letterboxed in a thread; yields ``(key, detections, start)`` where ``start`` is the ``time.perf_counter()``
    at which that frame's decode began. Up to ``depth`` frames are prepared ahead."""
    if depth < 1:
        raise ValueError(f"prefetch depth must be at least 1, got {depth}")
    prepared: queue.Queue = queue.Queue()  # bounded by the slots: at most ``depth`` frames decoded ahead
    slots, stop = threading.Semaphore(depth), threading.Event()
    worker = threading.Thread(target=_producer, args=(detector, iter(frames), prepared, slots, stop), daemon=True)
    worker.start()
    try:
        while True:
            item: Any = prepared.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            key, (batch, boxes), start = item
            slots.release()  # the next frame decodes while this one runs
            raw = detector.infer(batch)
            yield key, detector.postprocess(raw, boxes)[0], start
    finally:
        stop.set()
        worker.join()


def detect_overlapped(
    detector: Detector, paths: Sequence[Path], depth: int = 1
) -> Iterator[Tuple[Path, Detections, float]]:
    """Detect in each image file, in order (:func:`detect_frames` over the files); yields ``(path, detections,
    start)`` where ``start`` is the ``time.perf_counter()`` at which that frame's decode began."""
    yield from detect_frames(detector, decoded(list(paths)), depth)


def frame_latencies(
    detector: Detector, frames: Iterable[Tuple[Any, np.ndarray]], depth: int = 1
) -> Tuple[List[float], float]:
    """Per-frame latencies (ms, decode start to boxes, queue wait included) and the wall seconds of one
    overlapped pass (:func:`detect_frames`) over ``frames``."""
    latencies = []
    start = time.perf_counter()
    for _key, _det, began in detect_frames(detector, frames, depth):
        latencies.append((time.perf_counter() - began) * 1000.0)
    return latencies, time.perf_counter() - start


def overlapped_latencies(detector: Detector, paths: Sequence[Path], depth: int = 1) -> Tuple[List[float], float]:
    """Per-frame latencies (ms, decode start to boxes) and the wall seconds of one overlapped pass over ``paths``."""
    return frame_latencies(detector, decoded(list(paths)), depth)


def _whole_frame(detector: Detector, path: Path) -> Tuple[Path, np.ndarray, Detections, float]:
    try:
        rgb = load_image(path)
        start = time.perf_counter()
        det = detector([rgb])[0]
    except Exception as exc:  # every failure names its image (the decoder's errors already do)
        if str(path) in str(exc):
            raise
        try:
            named = type(exc)(f"{path}: {exc}")
        except Exception:  # an exception type that takes no message: keep it as it is
            raise exc from None
        raise named from exc
    return path, rgb, det, (time.perf_counter() - start) * 1000.0


def detect_parallel(
    detector: Detector, paths: Sequence[Path], workers: int
) -> Iterator[Tuple[Path, np.ndarray, Detections, float]]:
    """Detect in each image file with ``workers`` frames in parallel, yielding in input order
    ``(path, rgb, detections, model_ms)`` (``model_ms``: the detector call, decode excluded). At most
    ``2 x workers`` frames are in flight, so memory stays flat over any number of files; the first
    error (naming its file) reaches the caller."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    todo = iter(paths)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgeproof-frame") as pool:
        pending: Deque[Future] = collections.deque(
            pool.submit(_whole_frame, detector, p) for p in itertools.islice(todo, 2 * workers)
        )
        while pending:
            done = pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                pending.append(pool.submit(_whole_frame, detector, following))
            yield done
