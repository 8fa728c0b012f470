"""The ultralytics entries of ``edgeproof perf``: ``YOLO(best.pt).predict`` and ``YOLO(best.onnx).predict``
on ultralytics' own default ONNX export of the same weights (what a user would otherwise ship).

Each is timed at its best documented setting for a stream of files: one ``predict(<manifest>, stream=True)``
generator at batch 1, ``Results`` out per frame (ultralytics reads the file, letterboxes, infers, runs NMS
between two yields), so its per-call setup is paid once, not per frame. Model-only latency is ultralytics' own
``speed['inference']``.
mAP50-95 is pycocotools on its predictions at the evaluation thresholds, as for edgeproof's entries.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
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
    agnostic: bool  # deploy.agnostic: NMS across classes, as the deployed detector runs it


def export_default_onnx(yolo_cls: Any, weights: Path, folder: Path, imgsz: int) -> Path:
    """ultralytics' default ONNX export of ``weights`` (static shape, simplified) into ``folder``."""
    local = folder / "best.pt"  # ultralytics writes the .onnx next to the .pt
    shutil.copyfile(weights, local)
    return Path(yolo_cls(str(local)).export(format="onnx", imgsz=imgsz, device="cpu"))


def _kwargs(imgsz: int, timing: Timing) -> dict[str, Any]:
    return {
        "imgsz": imgsz,
        "conf": timing.conf,
        "iou": timing.iou,
        "max_det": timing.max_det,
        "agnostic_nms": timing.agnostic,
        "verbose": False,
        "device": "cpu",
    }


def frame_manifest(folder: Path, frames: Sequence[Path]) -> Path:
    """A ``.txt`` manifest of ``frames`` in this order, repeats included, for one ``predict(stream=True)``.
    ultralytics sorts a manifest's lines, so each line is a numbered link to its frame."""
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(frames)))
    lines = []
    for k, image in enumerate(frames):
        link = folder / f"{k:0{width}d}{image.suffix}"
        link.symlink_to(Path(image).resolve())
        lines.append(str(link))
    manifest = folder / "frames.txt"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@contextlib.contextmanager
def frame_stream(model: Any, frames: Sequence[Path], imgsz: int, timing: Timing) -> Iterator[Iterator[Any]]:
    """One ``predict(<manifest>, stream=True)`` generator at batch 1 over ``frames``: ultralytics' documented
    setting for a stream of files, its per-call setup (config, source loader) paid once, not per frame. Each
    ``next`` reads and decodes the next file, letterboxes, infers and runs NMS. Closed on exit, so the
    predictor's lock, held while the generator is open, is released."""
    with temp_folder() as tmp:
        stream = model.predict(str(frame_manifest(Path(tmp), frames)), stream=True, **_kwargs(imgsz, timing))
        try:
            yield stream
        finally:
            stream.close()


def time_predict(model: Any, images: Sequence[Path], imgsz: int, timing: Timing) -> dict[str, float]:
    """One stream over ``images`` (cycled, as the edgeproof entries index them: warm-up frames ``0..warmup-1``,
    then timed frames ``0..runs-1``): the time between two yields is a frame's end-to-end latency; model-only
    p50/p95 is ultralytics' own ``speed['inference']``. FPS: timed frames per wall second."""
    frames = [images[i % len(images)] for i in (*range(timing.warmup), *range(timing.runs))]
    with frame_stream(model, frames, imgsz, timing) as stream:
        for _ in range(timing.warmup):
            next(stream)
        inference, latencies, start = [], [], time.perf_counter()
        for _ in range(timing.runs):
            t0 = time.perf_counter()
            result = next(stream)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            inference.append(result.speed["inference"])
        seconds = time.perf_counter() - start
    stats, e2e = stats_ms(inference), stats_ms(latencies)
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
    ``YOLO`` instance per thread (here ``workers`` instances of ``model``'s file), never one shared, each
    with its own stream (:func:`frame_stream`) over the frames :func:`parallel_calls` gives that worker.
    ``fps_e2e`` is frames per wall second; the latencies are each frame's own."""
    instances = [type(model)(str(model.ckpt_path), task=model.task) for _ in range(workers)]
    warmup = list(range(timing.warmup))
    with contextlib.ExitStack() as stack:
        streams = []
        for k, instance in enumerate(instances):  # worker k: its warm-up frames, then frames k, k + n, ...
            order = warmup + list(range(k, timing.runs, workers))
            frames = [images[i % len(images)] for i in order]
            streams.append(stack.enter_context(frame_stream(instance, frames, imgsz, timing)))
        # each call takes the next frame of its worker's stream, which holds exactly the frames asked for
        latencies, wall = parallel_calls([lambda _i, s=s: next(s) for s in streams], timing.warmup, timing.runs)
    e2e = stats_ms(latencies)
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
