"""Timed runs on the device: model-only latency, a batch-size sweep, end to end, and on-device detections.

End to end is what a user's application does per image: decode the file, letterbox, run the
model, decode + NMS, map boxes back to the original pixels. Model-only is the session call alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import check_input, check_output
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import boxes_to_original, letterbox, load_image, to_input


class Model:
    """A session with its input name, input size and (static or dynamic) batch.

    The model's signature is checked as the runtime's :class:`~edgeproof.runtime.detector.Detector`
    checks it (an NCHW image batch in, a detector's ``(B, 4 + nc, anchors)`` out), naming ``path``.
    """

    def __init__(self, session: Any, input_size: Tuple[int, int], path: Path) -> None:
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.input_size = input_size
        self.fixed_batch: Optional[int] = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.input_dtype = check_input(path, inp)
        check_output(path, session.get_outputs()[0], None)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The raw ``(B, 4 + nc, anchors)`` output for an NCHW batch (cast to the model's input type)."""
        return self.session.run(None, {self.input_name: batch.astype(self.input_dtype, copy=False)})[0]

    def batch_of(self, image: np.ndarray, size: int) -> np.ndarray:
        """``size`` copies of one letterboxed image as an input batch (a static model: its own size)."""
        boxed, _ = letterbox(image, self.input_size)
        return to_input([boxed] * (self.fixed_batch or size))


def stats_ms(seconds: Sequence[float]) -> Dict[str, Any]:
    """Latency statistics in milliseconds (p50/p90/p95/p99, mean, min, max, std) of per-run seconds."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    out = {f"p{q}": round(float(np.percentile(ms, q)), 4) for q in (50, 90, 95, 99)}
    out.update(
        mean=round(float(ms.mean()), 4),
        min=round(float(ms.min()), 4),
        max=round(float(ms.max()), 4),
        std=round(float(ms.std()), 4),
        samples=int(ms.size),
    )
    return out


def time_calls(fn: Callable[[], Any], warmup: int, runs: int) -> List[float]:
    """Seconds per call of ``fn`` over ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def model_only(model: Model, image: np.ndarray, batch: int, warmup: int, runs: int) -> Dict[str, Any]:
    """Session-call latency at ``batch`` on a real letterboxed image; FPS counts images."""
    inputs = model.batch_of(image, batch)
    lat = stats_ms(time_calls(lambda: model.run(inputs), warmup, runs))
    lat["batch"] = int(inputs.shape[0])
    lat["fps"] = round(1000.0 * inputs.shape[0] / lat["mean"], 3)
    return lat


def batch_sweep(model: Model, image: np.ndarray, sizes: Sequence[int], runs: int) -> List[Dict[str, Any]]:
    """Throughput (images/s) and latency per batch size; a static-batch model is timed at its own size only."""
    sizes = [model.fixed_batch] if model.fixed_batch else list(sizes)
    out = []
    for size in sizes:
        lat = model_only(model, image, size, warmup=2, runs=max(3, runs))
        out.append({"batch": size, "images_per_s": lat["fps"], "latency_ms_p50": lat["p50"], "p95": lat["p95"]})
    return out


def detect_one(model: Model, path: Path, post: Postprocess) -> Tuple[Any, Any]:
    """Decode -> letterbox -> infer -> NMS -> original pixels for one image file; ``(boxes, detections)``."""
    image = load_image(path)
    boxed, lb = letterbox(image, model.input_size)
    raw = model.run(to_input([boxed]))[0]
    det = post(raw)
    return boxes_to_original(det.boxes, lb), det


def end_to_end(model: Model, paths: Sequence[Path], deploy: DeploySettings, n: int) -> Dict[str, Any]:
    """End-to-end latency over ``n`` image files (cycling ``paths``), after two untimed images."""
    post = Postprocess.deployed(deploy)
    for path in paths[:2]:
        detect_one(model, path, post)
    seconds = []
    for i in range(n):
        start = time.perf_counter()
        detect_one(model, paths[i % len(paths)], post)
        seconds.append(time.perf_counter() - start)
    lat = stats_ms(seconds)
    lat["fps"] = round(n / sum(seconds), 3)
    lat["images"] = n
    lat["distinct_images"] = min(n, len(paths))
    return lat


def end_to_end_clip(model: Model, clip: Path, deploy: DeploySettings, n: int) -> Dict[str, Any]:
    """End to end on ``n`` frames of a recorded clip (looped if shorter): decode in a reader thread
    overlapped with letterbox -> infer -> NMS, as a video application runs. FPS is frames per wall second."""
    from edgeproof.device.video import FrameReader, open_capture

    post = Postprocess.deployed(deploy)
    seconds: List[float] = []
    start = time.perf_counter()
    while len(seconds) < n:
        reader = FrameReader(open_capture(str(clip)), live=False, max_frames=n - len(seconds))
        try:
            before = len(seconds)
            for frame in reader:
                t0 = time.perf_counter()
                boxed, lb = letterbox(np.ascontiguousarray(frame[:, :, ::-1]), model.input_size)
                post(model.run(to_input([boxed]))[0], lb)
                seconds.append(time.perf_counter() - t0)
        finally:
            reader.close()
        if len(seconds) == before:
            raise ValueError(f"{clip}: no frames could be decoded")
    lat = stats_ms(seconds)
    lat["fps"] = round(n / (time.perf_counter() - start), 3)
    lat["images"] = n
    lat["source"] = f"clip:{clip.name}"
    return lat


def coco_detections(
    model: Model, gt: Dict[str, Any], images_dir: Path, post: Postprocess, category_ids: Sequence[int]
) -> Tuple[List[Dict[str, Any]], float]:
    """COCO results (original category ids, ``[x, y, w, h]``) for every ground-truth image; and images/s."""
    results = []
    start = time.perf_counter()
    for im in gt["images"]:
        boxes, det = detect_one(model, images_dir / im["file_name"], post)
        for box, score, cls in zip(boxes.tolist(), det.scores.tolist(), det.classes.tolist()):
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
