"""Run the ONNX detector over a COCO-described image set: COCO results plus deployment detections.

Every batch is inferred once and post-processed twice from the same raw output:

* the **mAP set** — low confidence, multi-label NMS (what COCO tools expect);
* the **deployment set** — best class per box and NMS at the deployment IoU, exactly what
  :class:`edgeproof.runtime.detector.Detector` returns on the device, kept down to the mAP
  confidence so the operating point and F1-vs-confidence can be read off at any threshold
  (greedy NMS and score-ordered matching give the same result whether a confidence threshold is
  applied before or after them).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edgeproof.evaluation.fastnms import postprocess_fast
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Detections
from edgeproof.runtime.preprocess import Letterbox, boxes_to_original, load_image

log = logging.getLogger(__name__)

_LOADERS = 2  # decode/letterbox threads (Pillow and numpy release the GIL)
_PREFETCH = 3  # batches prepared ahead of inference: bounded, so memory does not grow with the dataset


@dataclass(frozen=True)
class PostprocessConfig:
    """One way of turning raw output into detections."""

    conf: float
    iou: float
    max_det: int
    multi_label: bool


@dataclass(frozen=True)
class Predictions:
    """COCO-format mAP detections, per-image deployment detections, and how fast they were produced."""

    results: list[dict[str, Any]]
    deploy: dict[int, Detections]
    n_images: int
    seconds: float
    batch: int

    @property
    def images_per_s(self) -> float:
        """Images per second of the whole loop (decode, letterbox, inference, both post-processings)."""
        return self.n_images / self.seconds if self.seconds > 0 else 0.0


def to_coco_results(image_id: int, det: Detections, class_to_category: Mapping[int, int]) -> list[dict[str, Any]]:
    """COCO result dicts (``bbox`` = x, y, w, h in original pixels) with original category ids."""
    if len(det) == 0:
        return []
    unknown = sorted({int(c) for c in det.classes} - set(class_to_category))
    if unknown:
        raise ValueError(
            f"model predicted class index {unknown[0]} but the dataset maps only {sorted(class_to_category)}: "
            "the model and the prepared dataset disagree on the classes"
        )
    b = np.asarray(det.boxes, dtype=np.float64)
    xywh = np.round(np.column_stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]), 3).tolist()
    scores = np.round(np.asarray(det.scores, dtype=np.float64), 5).tolist()
    categories = [int(class_to_category[int(c)]) for c in det.classes]
    image_id = int(image_id)
    return [
        {"image_id": image_id, "category_id": c, "bbox": box, "score": s}
        for box, s, c in zip(xywh, scores, categories, strict=True)
    ]


def _decode(raw: np.ndarray, lb: Letterbox, cfg: PostprocessConfig) -> Detections:
    det = postprocess_fast(raw, cfg.conf, cfg.iou, cfg.max_det, cfg.multi_label)
    return Detections(boxes_to_original(det.boxes, lb), det.scores, det.classes)


def _batches(
    detector: Detector, images: Sequence[Mapping[str, Any]], images_dir: Path, step: int, ahead: int
) -> Iterator[tuple[list[Mapping[str, Any]], np.ndarray, list[Letterbox]]]:
    """Decoded, letterboxed input batches, prepared by a thread pool ahead of inference."""

    def load(chunk: list[Mapping[str, Any]]) -> tuple[np.ndarray, list[Letterbox]]:
        return detector.preprocess([load_image(images_dir / im["file_name"]) for im in chunk])

    chunks = [list(images[i : i + step]) for i in range(0, len(images), step)]
    with ThreadPoolExecutor(max_workers=_LOADERS) as pool:
        pending: deque[Future[tuple[np.ndarray, list[Letterbox]]]] = deque()
        for i, chunk in enumerate(chunks):
            while len(pending) <= ahead and i + len(pending) < len(chunks):  # bounded read-ahead
                pending.append(pool.submit(load, chunks[i + len(pending)]))
            batch, lbs = pending.popleft().result()
            yield chunk, batch, lbs


_ChunkOut = tuple[list[int], list[dict[str, Any]], dict[int, Detections]]

#: Receives each batch's image ids and their COCO results as soon as they are post-processed.
ResultSink = Callable[[list[int], list[dict[str, Any]]], None]


def _postprocess_chunk(
    chunk: Sequence[Mapping[str, Any]],
    raw: np.ndarray,
    lbs: Sequence[Letterbox],
    mapset: PostprocessConfig,
    deploy: PostprocessConfig | None,
    class_to_category: Mapping[int, int],
) -> _ChunkOut:
    results: list[dict[str, Any]] = []
    deployed: dict[int, Detections] = {}
    for im, pred, lb in zip(chunk, raw, lbs, strict=True):
        results.extend(to_coco_results(im["id"], _decode(pred, lb, mapset), class_to_category))
        if deploy is not None:
            deployed[int(im["id"])] = _decode(pred, lb, deploy)
    return [int(im["id"]) for im in chunk], results, deployed


def _warm_up(detector: Detector, pool: ThreadPoolExecutor, streams: int, step: int, first: Path | None) -> None:
    """Untimed work before the clock starts, as ultralytics' validator does (its dataset scan has
    opened every image by then). A first run allocates buffers, some per thread, so every inference
    thread runs once, all at the same time; the first image load initialises the decoders (~25 ms)."""
    if first is not None:
        detector.preprocess([load_image(first)])
    for warm in [pool.submit(detector.warmup, step) for _ in range(streams)]:
        warm.result()


def predict_coco(
    detector: Detector,
    gt: Mapping[str, Any],
    images_dir: Path,
    class_to_category: Mapping[int, int],
    batch: int = 8,
    deploy: PostprocessConfig | None = None,
    streams: int = 1,
    sink: ResultSink | None = None,
) -> Predictions:
    """Detect on every image listed in ``gt['images']`` (files under ``images_dir``).

    A dynamic-batch model is fed ``batch`` images per call (a static one its own batch size); a
    progress bar shows images/s. ``deploy`` (optional) adds the deployment detections per image.
    Three stages overlap, each with bounded read-ahead: decoding/letterboxing (thread pool),
    inference (``streams`` batches in flight at once on the one session: ONNX Runtime runs are
    thread-safe and release the GIL) and post-processing (one thread). Results keep image order;
    ``sink`` (optional) gets them batch by batch, e.g. to score while inference goes on.
    """
    if streams < 1:
        raise ValueError(f"streams must be >= 1, got {streams}")
    cfg = detector.config
    mapset = PostprocessConfig(cfg.conf, cfg.iou, cfg.max_det, cfg.multi_label)
    images = list(gt["images"])
    step = detector.fixed_batch or batch
    results: list[dict[str, Any]] = []
    deployed: dict[int, Detections] = {}

    def collect(done: Future[_ChunkOut]) -> None:
        ids, chunk_results, chunk_deployed = done.result()
        results.extend(chunk_results)
        deployed.update(chunk_deployed)
        if sink is not None:
            sink(ids, chunk_results)
        bar.update(len(ids))

    with ThreadPoolExecutor(max_workers=streams) as infer, ThreadPoolExecutor(max_workers=1) as post:
        _warm_up(detector, infer, streams, step, images_dir / images[0]["file_name"] if images else None)
        start = time.perf_counter()
        with tqdm(total=len(images), desc="evaluate", unit="img") as bar:
            running: deque[tuple[list[Mapping[str, Any]], Future[np.ndarray], list[Letterbox]]] = deque()
            pending: deque[Future[_ChunkOut]] = deque()

            def finish_oldest() -> None:
                chunk, raw, lbs = running.popleft()
                out = raw.result()[: len(chunk)]
                pending.append(post.submit(_postprocess_chunk, chunk, out, lbs, mapset, deploy, class_to_category))
                while len(pending) > _PREFETCH:
                    collect(pending.popleft())

            for chunk, inputs, lbs in _batches(detector, images, images_dir, step, _PREFETCH + streams):
                running.append((chunk, infer.submit(detector.infer, inputs), lbs))
                if len(running) >= streams:
                    finish_oldest()
            while running:
                finish_oldest()
            while pending:
                collect(pending.popleft())
            seconds = time.perf_counter() - start
    log.info(
        "predicted %d images in %.2f s (%.1f img/s, batch %d, %d stream(s))",
        len(images),
        seconds,
        len(images) / max(seconds, 1e-9),
        step,
        streams,
    )
    return Predictions(results=results, deploy=deployed, n_images=len(images), seconds=seconds, batch=step)
