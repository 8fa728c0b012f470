"""Run the ONNX detector over a COCO-described image set and emit COCO results."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Detections
from edgeproof.runtime.preprocess import load_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    """COCO-format detections plus how fast they were produced."""

    results: list[dict[str, Any]]
    n_images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else 0.0


def to_coco_results(image_id: int, det: Detections, class_to_category: Mapping[int, int]) -> list[dict[str, Any]]:
    """COCO result dicts (``bbox`` = x, y, w, h in original pixels) with original category ids."""
    out = []
    for box, score, cls in zip(det.boxes, det.scores, det.classes, strict=True):
        x0, y0, x1, y1 = (float(v) for v in box)
        try:
            category_id = class_to_category[int(cls)]
        except KeyError:
            raise ValueError(
                f"model predicted class index {int(cls)} but the dataset maps only {sorted(class_to_category)}: "
                "the model and the prepared dataset disagree on the classes"
            ) from None
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(category_id),
                "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
                "score": round(float(score), 5),
            }
        )
    return out


def predict_coco(
    detector: Detector,
    gt: Mapping[str, Any],
    images_dir: Path,
    class_to_category: Mapping[int, int],
    batch: int = 8,
) -> Predictions:
    """Detect on every image listed in ``gt['images']`` (files under ``images_dir``).

    Image decoding runs in a thread pool ahead of inference (Pillow releases the GIL), and a
    dynamic-batch model is fed ``batch`` images per call.
    """
    images = list(gt["images"])
    step = detector.fixed_batch or batch
    results: list[dict[str, Any]] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool, tqdm(total=len(images), desc="evaluate", unit="img") as bar:
        chunks = [images[i : i + step] for i in range(0, len(images), step)]
        loaded = pool.map(lambda chunk: [load_image(images_dir / im["file_name"]) for im in chunk], chunks)
        for chunk, arrays in zip(chunks, loaded, strict=True):
            for im, det in zip(chunk, detector(arrays), strict=True):
                results.extend(to_coco_results(im["id"], det, class_to_category))
            bar.update(len(chunk))
    seconds = time.perf_counter() - start
    log.info("predicted %d images in %.2f s (%.1f img/s)", len(images), seconds, len(images) / max(seconds, 1e-9))
    return Predictions(results=results, n_images=len(images), seconds=seconds)
