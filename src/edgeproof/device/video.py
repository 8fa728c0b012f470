"""A video feed through the release model: a file, a camera index or an RTSP URL (OpenCV, optional).

Decode runs in a reader thread, overlapped with inference: while the model works on frame *n*,
frame *n+1* is being decoded. A file is processed frame by frame (the reader waits for the
model); a live source (camera, RTSP) keeps only the newest frames, so the output stays real time
and the FPS is what the device sustains. Each frame: BGR -> RGB -> letterbox -> infer -> decode +
NMS -> boxes in frame pixels; optionally drawn and written to a video file or shown in a window.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from edgeproof.runtime.timing import stats_ms

log = logging.getLogger(__name__)

_END = object()


def import_cv2() -> Any:
    """OpenCV, with install advice (the device core works without it; video needs it)."""
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            "video input needs OpenCV: `pip install opencv-python-headless` (on a Jetson: JetPack's python3-opencv)"
        ) from exc
    return cv2


def is_live(source: str) -> bool:
    """A camera index or a network stream (frames may be dropped to stay real time), not a file."""
    return source.isdigit() or source.split("://", 1)[0].lower() in ("rtsp", "rtmp", "http", "https", "udp")


def open_capture(source: str) -> Any:
    """``cv2.VideoCapture`` for a file path, a camera index (``"0"``) or a URL; an error if it cannot open."""
    cv2 = import_cv2()
    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise ValueError(f"{source}: cannot open the video source (missing file, camera or stream?)")
    return cap


class FrameReader:
    """Reads frames in a thread into a small queue; ``live`` drops the oldest frame when the queue is full."""

    def __init__(self, cap: Any, live: bool, depth: int = 4, max_frames: Optional[int] = None) -> None:
        self.cap, self.live, self.max_frames = cap, live, max_frames
        self.frames: queue.Queue = queue.Queue(maxsize=depth)
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgeproof-video-reader", daemon=True)

    def _put(self, item: Any) -> None:
        live = self.live and item is not _END
        while not self._stop.is_set():
            try:
                if live:
                    self.frames.put_nowait(item)
                else:
                    self.frames.put(item, timeout=0.1)
                return
            except queue.Full:
                if live:  # keep the newest frames: drop the oldest waiting one
                    try:
                        self.frames.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set() and (self.max_frames is None or n < self.max_frames):
            ok, frame = self.cap.read()
            if not ok:
                break
            self._put(frame)
            n += 1
        self._put(_END)

    def __iter__(self) -> Any:
        self._thread.start()
        while True:
            item = self.frames.get()
            if item is _END:
                return
            yield item

    def close(self) -> None:
        """Stop reading and release the capture."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.cap.release()


def draw(frame: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, names: Dict[int, str]) -> None:
    """Draw boxes with class name and score onto a BGR frame, in place."""
    cv2 = import_cv2()
    for (x0, y0, x1, y1), score, cls in zip(boxes.astype(int).tolist(), scores.tolist(), classes.tolist()):
        color = ((37 * cls) % 256, (97 * cls + 80) % 256, (17 * cls + 160) % 256)
        cv2.rectangle(frame, (x0, y0), (x1, y1), color, 2)
        label = f"{names.get(int(cls), str(cls))} {score:.2f}"
        cv2.putText(frame, label, (x0, max(y0 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)


def _writer(path: Path, cap: Any, frame: np.ndarray) -> Any:
    cv2 = import_cv2()
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return cv2.VideoWriter(str(path), fourcc, fps, (frame.shape[1], frame.shape[0]))


def _partial(out: Path) -> Path:
    """Where the video is written until it is whole: beside ``out``, with its suffix (OpenCV picks the
    container by it), so a run killed part-way leaves the user's file at ``out`` as it was."""
    return out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")


def run_video(
    detect: Callable[[np.ndarray], Any],
    source: str,
    names: Dict[int, str],
    out: Optional[Path] = None,
    show: bool = False,
    max_frames: Optional[int] = None,
    report_every_s: float = 1.0,
) -> Dict[str, Any]:
    """Run ``detect`` (RGB frame -> Detections) over a video source; returns FPS and latency figures.

    ``out`` is replaced only by a finished video (written beside it, then renamed): Ctrl-C stops the run
    there and keeps the frames so far, as a stream is stopped; a crash or a kill leaves ``out`` untouched."""
    cv2 = import_cv2()
    cap = open_capture(source)
    reader = FrameReader(cap, is_live(source), max_frames=max_frames)
    writer, latencies, n_det, finished = None, [], 0, False
    partial = _partial(out) if out is not None else None
    start = last = time.perf_counter()
    try:
        try:
            for frame in reader:
                t0 = time.perf_counter()
                det = detect(np.ascontiguousarray(frame[:, :, ::-1]))
                latencies.append(time.perf_counter() - t0)
                n_det += len(det)
                if out is not None or show:
                    draw(frame, det.boxes, det.scores, det.classes, names)
                if partial is not None:
                    writer = writer or _writer(partial, cap, frame)
                    writer.write(frame)
                if show:
                    cv2.imshow("edgeproof", frame)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
                now = time.perf_counter()
                if now - last >= report_every_s:
                    log.info("%d frames, %.1f FPS", len(latencies), len(latencies) / (now - start))
                    last = now
        except KeyboardInterrupt:
            log.warning("interrupted after %d frames: stopping there", len(latencies))
        finished = True
    finally:
        reader.close()
        if writer is not None:
            writer.release()
        if partial is not None and partial.exists():  # partial is set only with out
            if finished:
                os.replace(partial, out)
            else:
                partial.unlink()
        if show:
            cv2.destroyAllWindows()
    return _summary(source, latencies, time.perf_counter() - start, n_det, reader.dropped, out)


def _summary(source: str, latencies: List[float], elapsed: float, n_det: int, dropped: int, out: Any) -> Dict[str, Any]:
    stats = stats_ms([1000.0 * s for s in latencies or [0.0]])
    return {
        "source": source,
        "frames": len(latencies),
        "dropped_frames": dropped,
        "fps": round(len(latencies) / elapsed, 3) if elapsed > 0 else 0.0,
        "latency_ms": {f"p{q}": round(stats[f"p{q}"], 3) for q in (50, 95, 99)},
        "detections": n_det,
        "output": str(out) if out is not None else None,
    }
