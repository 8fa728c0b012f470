"""Device-only timed runs: end to end on a recorded clip, and the on-device detections for mAP.

The timing itself (warm-up, timed loop, percentiles, model-only, batch sweep, end to end over image
files) is the one core :mod:`edgeproof.runtime.timing`, shared with the build side; the model
wrapper is the runtime's :class:`~edgeproof.runtime.detector.Detector`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.timing import stats_ms


def end_to_end_clip(detector: Detector, clip: Path, n: int, edge: Optional[Callable[[], Any]] = None) -> Dict[str, Any]:
    """End to end on ``n`` frames of a recorded clip (looped if shorter): decode in a reader thread
    overlapped with letterbox -> infer -> NMS, as a video application runs. FPS is frames per wall second.
    ``edge``: called right before that wall time starts and right after it ends (an energy window's edges)."""
    from edgeproof.device.video import FrameReader, open_capture

    ms: List[float] = []
    if edge is not None:
        edge()
    start = time.perf_counter()
    while len(ms) < n:
        reader = FrameReader(open_capture(str(clip)), live=False, max_frames=n - len(ms))
        try:
            before = len(ms)
            for frame in reader:
                t0 = time.perf_counter()
                detector([np.ascontiguousarray(frame[:, :, ::-1])])
                ms.append((time.perf_counter() - t0) * 1000.0)
        finally:
            reader.close()
        if len(ms) == before:
            raise ValueError(f"{clip}: no frames could be decoded")
    wall = time.perf_counter() - start
    if edge is not None:
        edge()
    lat = stats_ms(ms)
    lat["fps"] = round(n / wall, 3)
    lat["images"] = n
    lat["source"] = f"clip:{clip.name}"
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
