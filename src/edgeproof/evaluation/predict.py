"""Run the ONNX detector over a COCO-described image set: COCO results plus deployment detections.

Every batch is inferred once and post-processed twice from the same raw output, both with the
runtime's one :class:`edgeproof.runtime.postprocess.Postprocess`:

* the **mAP set** — low confidence, multi-label NMS (what COCO tools expect);
* the **deployment set** — the ``deploy`` operating point (best class per box, NMS at the deployment
  IoU), exactly what :class:`edgeproof.runtime.detector.Detector` returns on the device, kept down
  to the mAP confidence so the operating point and F1-vs-confidence can be read off at any threshold
  (greedy NMS and score-ordered matching give the same result whether a confidence threshold is
  applied before or after them).

:class:`_Loop` runs the three overlapping steps, each with bounded read-ahead: **load** (decode and
letterbox in a thread pool), **infer** (``streams`` batches in flight on the one session: ONNX Runtime
runs are thread-safe and release the GIL) and **decode** (one thread), then **collect** in image order.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Detections, Postprocess
from edgeproof.runtime.preprocess import Letterbox, load_image

log = logging.getLogger(__name__)

_LOADERS = 2  # decode/letterbox threads (Pillow and numpy release the GIL)
_PREFETCH = 3  # batches prepared ahead of inference: bounded, so memory does not grow with the dataset

#: Receives each batch's image ids and their COCO results as soon as they are post-processed.
ResultSink = Callable[[list[int], list[dict[str, Any]]], None]


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


@dataclass(frozen=True)
class Decoding:
    """The two post-processings of every raw output, and the category ids of the COCO results."""

    mapset: Postprocess
    deploy: Postprocess | None
    class_to_category: Mapping[int, int]

    def chunk(
        self, chunk: Sequence[Mapping[str, Any]], raw: np.ndarray, lbs: Sequence[Letterbox]
    ) -> tuple[list[int], list[dict[str, Any]], dict[int, Detections]]:
        """One batch: its image ids, COCO results (mAP set) and deployment detections."""
        results: list[dict[str, Any]] = []
        deployed: dict[int, Detections] = {}
        for im, pred, lb in zip(chunk, raw, lbs, strict=True):
            results.extend(to_coco_results(im["id"], self.mapset(pred, lb), self.class_to_category))
            if self.deploy is not None:
                deployed[int(im["id"])] = self.deploy(pred, lb)
        return [int(im["id"]) for im in chunk], results, deployed


_Chunk = list[Mapping[str, Any]]
_Decoded = tuple[list[int], list[dict[str, Any]], dict[int, Detections]]


@dataclass
class _Loop:
    """One pass over the images: load -> infer -> decode -> collect (see the module docstring)."""

    detector: Detector
    decoding: Decoding
    images_dir: Path
    streams: int
    sink: ResultSink | None
    results: list[dict[str, Any]] = field(default_factory=list)
    deployed: dict[int, Detections] = field(default_factory=dict)
    running: deque[tuple[_Chunk, Future[np.ndarray], list[Letterbox]]] = field(default_factory=deque)
    decoding_q: deque[Future[_Decoded]] = field(default_factory=deque)

    def load(self, chunks: list[_Chunk]) -> Iterator[tuple[_Chunk, np.ndarray, list[Letterbox]]]:
        """Decoded, letterboxed input batches, prepared by a thread pool ahead of inference."""

        def one(chunk: _Chunk) -> tuple[np.ndarray, list[Letterbox]]:
            return self.detector.preprocess([load_image(self.images_dir / im["file_name"]) for im in chunk])

        ahead = _PREFETCH + self.streams
        with ThreadPoolExecutor(max_workers=_LOADERS) as pool:
            pending: deque[Future[tuple[np.ndarray, list[Letterbox]]]] = deque()
            for i, chunk in enumerate(chunks):
                while len(pending) <= ahead and i + len(pending) < len(chunks):  # bounded read-ahead
                    pending.append(pool.submit(one, chunks[i + len(pending)]))
                batch, lbs = pending.popleft().result()
                yield chunk, batch, lbs

    def warm_up(self, infer: ThreadPoolExecutor, step: int, first: Path | None) -> None:
        """Untimed work before the clock starts, as ultralytics' validator does (its dataset scan has
        opened every image by then). A first run allocates buffers, some per thread, so every inference
        thread runs once, all at the same time; the first image load initialises the decoders (~25 ms)."""
        if first is not None:
            self.detector.preprocess([load_image(first)])
        for warm in [infer.submit(self.detector.warmup, step) for _ in range(self.streams)]:
            warm.result()

    def decode_oldest(self, post: ThreadPoolExecutor, bar: tqdm) -> None:
        """Hand the oldest finished inference to the decoding thread; collect what is due."""
        chunk, raw, lbs = self.running.popleft()
        out = raw.result()[: len(chunk)]
        self.decoding_q.append(post.submit(self.decoding.chunk, chunk, out, lbs))
        while len(self.decoding_q) > _PREFETCH:
            self.collect(self.decoding_q.popleft(), bar)

    def collect(self, done: Future[_Decoded], bar: tqdm) -> None:
        """Append one decoded batch in image order and pass it to the sink."""
        ids, chunk_results, chunk_deployed = done.result()
        self.results.extend(chunk_results)
        self.deployed.update(chunk_deployed)
        if self.sink is not None:
            self.sink(ids, chunk_results)
        bar.update(len(ids))

    def run(self, chunks: list[_Chunk], infer: ThreadPoolExecutor, post: ThreadPoolExecutor, bar: tqdm) -> None:
        """Keep ``streams`` inferences in flight; drain everything at the end."""
        for chunk, inputs, lbs in self.load(chunks):
            self.running.append((chunk, infer.submit(self.detector.infer, inputs), lbs))
            if len(self.running) >= self.streams:
                self.decode_oldest(post, bar)
        while self.running:
            self.decode_oldest(post, bar)
        while self.decoding_q:
            self.collect(self.decoding_q.popleft(), bar)


def predict_coco(
    detector: Detector,
    gt: Mapping[str, Any],
    images_dir: Path,
    decoding: Decoding,
    batch: int = 8,
    streams: int = 1,
    sink: ResultSink | None = None,
) -> Predictions:
    """Detect on every image listed in ``gt['images']`` (files under ``images_dir``).

    A dynamic-batch model is fed ``batch`` images per call (a static one its own batch size); a
    progress bar shows images/s. Results keep image order; ``sink`` (optional) gets them batch by
    batch, e.g. to score while inference goes on.
    """
    if streams < 1:
        raise ValueError(f"streams must be >= 1, got {streams}")
    images = list(gt["images"])
    step = detector.fixed_batch or batch
    chunks = [images[i : i + step] for i in range(0, len(images), step)]
    loop = _Loop(detector, decoding, images_dir, streams, sink)
    with ThreadPoolExecutor(max_workers=streams) as infer, ThreadPoolExecutor(max_workers=1) as post:
        loop.warm_up(infer, step, images_dir / images[0]["file_name"] if images else None)
        start = time.perf_counter()
        with tqdm(total=len(images), desc="evaluate", unit="img") as bar:
            loop.run(chunks, infer, post, bar)
        seconds = time.perf_counter() - start
    log.info(
        "predicted %d images in %.2f s (%.1f img/s, batch %d, %d stream(s))",
        *(len(images), seconds, len(images) / max(seconds, 1e-9), step, streams),
    )
    return Predictions(results=loop.results, deploy=loop.deployed, n_images=len(images), seconds=seconds, batch=step)
