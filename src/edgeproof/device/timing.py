"""Device-only timed runs: end to end on a recorded clip, and the on-device detections for mAP.

The timing itself (warm-up, timed loop, percentiles, model-only, batch sweep, end to end over image
files) is the one core :mod:`edgeproof.runtime.timing`, shared with the build side; the model
wrapper is the runtime's :class:`~edgeproof.runtime.detector.Detector`.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.timing import stats_ms


def _clip_frames(clip: Path) -> Iterator[Tuple[int, np.ndarray]]:
    """The clip's frames as ``(index, rgb)``, looped, each read and decoded only when asked for (so in
    :func:`~edgeproof.runtime.overlap.detect_frames` a frame's decode counts in its latency; reopening the
    clip to loop counts in the frame after the end, as it would in an application that loops)."""
    from edgeproof.device.video import open_capture

    index = 0
    while True:
        cap = open_capture(str(clip))
        try:
            before = index
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield index, np.ascontiguousarray(frame[:, :, ::-1])  # OpenCV's BGR -> RGB
                index += 1
        finally:
            cap.release()
        if index == before:
            raise ValueError(f"{clip}: no frames could be decoded")


def end_to_end_clip(
    detector: Detector, clip: Path, warmup: int, n: int, edge: Optional[Callable[[], Any]] = None
) -> Dict[str, Any]:
    """End to end on ``n`` frames of a recorded clip (looped if shorter), after ``warmup`` untimed ones: read +
    decode of frame n+1 in a thread overlapped with frame n, as a video application runs
    (:func:`~edgeproof.runtime.overlap.detect_frames`, prefetch 1). Each frame's latency runs from the start of
    its decode to its boxes (queue wait included), as over image files; FPS is frames per wall second.
    ``edge``: called right before that wall time starts and right after it ends (an energy window's edges)."""
    from edgeproof.runtime.overlap import frame_latencies

    frames = _clip_frames(clip)
    try:
        frame_latencies(detector, itertools.islice(frames, warmup))
        if edge is not None:
            edge()
        ms, wall = frame_latencies(detector, itertools.islice(frames, n))
        if edge is not None:
            edge()
    finally:
        frames.close()  # releases the capture (each pass's reader thread has ended)
    lat = stats_ms(ms)
    lat.update(fps=round(n / wall, 3), images=n, source=f"clip:{clip.name}", prefetch=1)
    return lat


def coco_detections(
    detector: Detector, gt: Dict[str, Any], images_dir: Path, category_ids: Sequence[int]
) -> Tuple[List[Dict[str, Any]], float]:
    """COCO results (original category ids, ``[x, y, w, h]``) for every ground-truth image, with the
    detector's own post-processing (the mAP settings); and images/s."""
    results = []
    start = time.perf_counter()
    for im in gt["images"]:
        det = detector([load_image(images_dir / im["file_name"])])[0]
        for box, score, cls in zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist()):
            if not 0 <= cls < len(category_ids):
                raise ValueError(f"model predicted class index {cls}; the bundle names {len(category_ids)} classes")
            x0, y0, x1, y1 = box
            results.append(
                {
                    "image_id": im["id"],
                    "category_id": int(category_ids[cls]),
                    "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
                    "score": round(float(score), 5),
                }
            )
    elapsed = time.perf_counter() - start
    return results, round(len(gt["images"]) / elapsed, 3) if elapsed > 0 else 0.0
