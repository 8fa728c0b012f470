"""The ultralytics entries of ``edgeproof perf``: ``YOLO(best.pt).predict`` and ``YOLO(best.onnx).predict``
on ultralytics' own default ONNX export of the same weights (what a user would otherwise ship).

Each is timed the way a user calls it: one image path in, ``Results`` out (ultralytics reads the
file, letterboxes, infers, runs NMS). Model-only latency is ultralytics' own ``speed['inference']``.
mAP50-95 is pycocotools on its predictions at the evaluation thresholds, as for edgeproof's entries.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeproof.evaluation.coco import score_coco
from edgeproof.runtime.timing import parallel_calls, stats_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """How many frames and with which deployment thresholds to time."""

    warmup: int
    runs: int
    conf: float
    iou: float
    max_det: int


def export_default_onnx(yolo_cls: Any, weights: Path, folder: Path, imgsz: int) -> Path:
    """ultralytics' default ONNX export of ``weights`` (static shape, simplified) into ``folder``."""
    local = folder / "best.pt"  # ultralytics writes the .onnx next to the .pt
    shutil.copyfile(weights, local)
    return Path(yolo_cls(str(local)).export(format="onnx", imgsz=imgsz, device="cpu"))


def time_predict(model: Any, images: Sequence[Path], imgsz: int, timing: Timing) -> dict[str, float]:
    """Per-frame ``predict`` over ``images`` (cycled): model-only p50/p95 (its speed), end-to-end p50/p95 and FPS."""
    kwargs = {"imgsz": imgsz, "conf": timing.conf, "iou": timing.iou, "max_det": timing.max_det}
    for i in range(timing.warmup):
        model.predict(str(images[i % len(images)]), verbose=False, device="cpu", **kwargs)
    inference, frames, start = [], [], time.perf_counter()
    for i in range(timing.runs):
        t0 = time.perf_counter()
        result = model.predict(str(images[i % len(images)]), verbose=False, device="cpu", **kwargs)
        frames.append((time.perf_counter() - t0) * 1000.0)
        inference.append(result[0].speed["inference"])
    seconds = time.perf_counter() - start
    stats, e2e = stats_ms(inference), stats_ms(frames)
    return {
        "latency_model_ms_p50": stats["p50"],
        "latency_model_ms_p95": stats["p95"],
        "latency_ms_p50": e2e["p50"],
        "latency_ms_p95": e2e["p95"],
        "fps_e2e": timing.runs / seconds,
    }


def time_predict_parallel(
    model: Any, images: Sequence[Path], imgsz: int, timing: Timing, workers: int
) -> dict[str, float]:
    """``predict`` with frames in parallel, the way ultralytics' thread-safe inference guide runs it: one
    ``YOLO`` instance per thread (here ``workers`` instances of ``model``'s file), never one shared.
    ``fps_e2e`` is frames per wall second; the latencies are each frame's own."""
    kwargs = {"imgsz": imgsz, "conf": timing.conf, "iou": timing.iou, "max_det": timing.max_det}
    instances = [type(model)(str(model.ckpt_path), task=model.task) for _ in range(workers)]

    def worker(instance: Any) -> Any:
        return lambda i: instance.predict(str(images[i % len(images)]), verbose=False, device="cpu", **kwargs)

    frames, wall = parallel_calls([worker(m) for m in instances], timing.warmup, timing.runs)
    e2e = stats_ms(frames)
    return {
        "latency_model_ms_p50": None,  # ultralytics' speed['inference'] is per call; not collected across threads
        "latency_model_ms_p95": None,
        "latency_ms_p50": e2e["p50"],
        "latency_ms_p95": e2e["p95"],
        "fps_e2e": timing.runs / wall,
    }


def predict_map(
    model: Any,
    gt: Mapping[str, Any],
    images_dir: Path,
    class_to_category: Mapping[int, int],
    imgsz: int,
    thresholds: Mapping[str, Any],
) -> float | None:
    """pycocotools mAP50-95 of ultralytics' predictions (at the evaluation's conf/iou/max_det)."""
    results = []
    for im in gt["images"]:
        r = model.predict(str(images_dir / im["file_name"]), imgsz=imgsz, verbose=False, device="cpu", **thresholds)
        boxes = r[0].boxes
        for (x0, y0, x1, y1), score, cls in zip(
            boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist(), strict=True
        ):
            results.append(
                {
                    "image_id": im["id"],
                    "category_id": int(class_to_category[int(cls)]),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    return score_coco(gt, results).metrics["map50_95"]


def load_models(weights: Path, imgsz: int, state: Path, folder: Path) -> dict[str, Any]:
    """``{"ultralytics-pt": YOLO(best.pt), "ultralytics-onnx": YOLO(its own export)}``."""
    from edgeproof.training.ultralytics_env import configure

    yolo_cls = configure(state)
    onnx_file = export_default_onnx(yolo_cls, weights, folder, imgsz)
    log.info("ultralytics' own ONNX export: %s", onnx_file)
    return {"ultralytics-pt": yolo_cls(str(weights)), "ultralytics-onnx": yolo_cls(str(onnx_file), task="detect")}


def temp_folder() -> tempfile.TemporaryDirectory[str]:
    """Where ultralytics' export goes (removed after the run)."""
    return tempfile.TemporaryDirectory(prefix="edgeproof-perf-")
