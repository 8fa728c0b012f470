"""pycocotools scoring in image shards, in worker processes, while inference is still running.

``COCOeval.evaluate()`` scores every (category, area range, image) on its own (``evaluateImg``);
only ``accumulate()`` looks across images. Evaluating disjoint shards of images with pycocotools
itself and laying their per-image records out in the order ``evaluate()`` would have produced
(category, then area range, then sorted image id) therefore gives the very same ``evalImgs``, and
``accumulate()``/``summarize()`` then produce bit-identical precision, recall and summary stats
(``tests/unit/test_eval_shards.py`` compares every array with a one-shot evaluation).

Why: pycocotools' per-image matching is pure Python (about 3.5 ms of CPU per image at the mAP
confidence), as much as a third of the model's own time. Scored shard by shard in other
processes, it overlaps inference instead of following it, and the GIL of the inference loop is
left alone.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import numpy as np

from edgeproof.evaluation.coco import coco_object, evaluated_cocoeval, quiet, run_cocoeval

log = logging.getLogger(__name__)
T = TypeVar("T")

#: What one shard returns: its sorted image ids, category ids and ``evalImgs`` in pycocotools' order.
ShardResult = tuple[list[int], list[int], list[dict[str, Any] | None]]


def evaluate_shard(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> ShardResult:
    """pycocotools ``evaluate()`` on the images of ``gt`` (which lists every category) only."""
    coco_eval = evaluated_cocoeval(gt, results)
    p = coco_eval.params
    return [int(i) for i in p.imgIds], [int(c) for c in p.catIds], coco_eval.evalImgs


def merge_shards(shards: Sequence[ShardResult], n_areas: int) -> tuple[list[int], list[int], list[Any]]:
    """All shards' ``evalImgs`` in the order a single ``evaluate()`` over their union lays them out."""
    if not shards:
        return [], [], []
    cat_ids = shards[0][1]
    by_key: dict[tuple[int, int, int], Any] = {}
    for img_ids, cats, records in shards:
        if cats != cat_ids:
            raise ValueError(f"shards were scored with different categories: {cats} vs {cat_ids}")
        n = len(img_ids)
        for k in range(len(cats)):
            for a in range(n_areas):
                base = (k * n_areas + a) * n
                for i, img_id in enumerate(img_ids):
                    by_key[(k, a, img_id)] = records[base + i]
    all_ids = sorted({i for s in shards for i in s[0]})
    if len(all_ids) != sum(len(s[0]) for s in shards):
        raise ValueError("an image was scored in more than one shard")
    merged = [by_key[(k, a, i)] for k in range(len(cat_ids)) for a in range(n_areas) for i in all_ids]
    return all_ids, cat_ids, merged


def accumulate_shards(gt: Mapping[str, Any], shards: Sequence[ShardResult]) -> Any:
    """An accumulated, summarized pycocotools ``COCOeval`` from shard results covering ``gt``'s images."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_eval = COCOeval(coco_object(gt, COCO), None, "bbox")
    p = coco_eval.params
    img_ids, cat_ids, records = merge_shards(shards, len(p.areaRng))
    expected = sorted(int(i) for i in np.unique([im["id"] for im in gt["images"]]))
    if img_ids != expected:
        raise ValueError(f"shards cover {len(img_ids)} images but the ground truth lists {len(expected)}")
    # what evaluate() leaves behind, so accumulate() reads the same parameters
    p.imgIds, p.catIds, p.maxDets = img_ids, cat_ids, sorted(p.maxDets)
    coco_eval.evalImgs = records
    coco_eval._paramsEval = copy.deepcopy(p)
    with quiet():
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def _background() -> None:
    """Worker initializer: lowest CPU priority, so scoring fills idle cores and never slows inference."""
    with contextlib.suppress(AttributeError, OSError):  # os.nice is POSIX-only
        os.nice(19)


class ShardedCocoEval:
    """Collects detections image by image and scores them with pycocotools in shards.

    ``workers`` processes score full shards while the caller keeps producing detections
    (``0``: plain one-shot pycocotools in this process when :meth:`finish` is called). Images may
    arrive in any order; each must arrive once. Workers are started with ``spawn``, which imports
    the main script again: call this from under ``if __name__ == "__main__":`` (the stages, the CLI
    and the benchmarks do). Should the workers die, the shards are scored here, with a warning.
    """

    def __init__(self, gt: Mapping[str, Any], workers: int = 1, shard_images: int = 32) -> None:
        if workers < 0 or shard_images < 1:
            raise ValueError(f"workers must be >= 0 and shard_images >= 1, got {workers} and {shard_images}")
        self.gt = gt
        self.shard_images = shard_images
        self._anns: dict[int, list[Mapping[str, Any]]] = {int(im["id"]): [] for im in gt["images"]}
        for ann in gt["annotations"]:
            self._anns[int(ann["image_id"])].append(ann)
        self._images = {int(im["id"]): im for im in gt["images"]}
        self._ids: list[int] = []
        self._results: list[Mapping[str, Any]] = []
        self._shards: list[tuple[dict[str, Any], list[Mapping[str, Any]], Future[ShardResult] | None]] = []
        self._broken = False
        ctx = multiprocessing.get_context("spawn")  # fork would copy ONNX Runtime's threads mid-run
        self._pool = ProcessPoolExecutor(workers, ctx, _background) if workers else None

    def add(self, image_ids: Sequence[int], results: Sequence[Mapping[str, Any]]) -> None:
        """The COCO results of ``image_ids`` (images without detections included)."""
        self._ids.extend(int(i) for i in image_ids)
        self._results.extend(results)
        if self._pool is not None and len(self._ids) >= self.shard_images:
            self._flush()

    def _flush(self) -> None:
        if not self._ids:
            return
        shard = {
            "images": [self._images[i] for i in self._ids],
            "annotations": [a for i in self._ids for a in self._anns[i]],
            "categories": list(self.gt["categories"]),
        }
        self._shards.append((shard, self._results, self._submit(evaluate_shard, shard, self._results)))
        self._ids, self._results = [], []

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        if self._pool is None or self._broken:
            return None
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool as exc:
            self._mark_broken(exc)
            return None

    def _mark_broken(self, exc: BaseException) -> None:
        if not self._broken:  # e.g. a worker was killed, or a script lacks the `if __name__ == "__main__"` guard
            log.warning("pycocotools worker process failed (%s); scoring in this process instead", exc)
        self._broken = True

    def _wait(self, future: Future[T] | None, fn: Callable[..., T], *args: Any) -> T:
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool as exc:
                self._mark_broken(exc)
        return fn(*args)

    def finish(self) -> Any:
        """Score what is left, wait for the workers; the accumulated, summarized ``COCOeval``."""
        if self._pool is None:
            if sorted(self._ids) != sorted(self._images):
                raise ValueError(f"{len(self._ids)} images were added but the ground truth lists {len(self._images)}")
            return run_cocoeval(self.gt, self._results)
        self._flush()
        shards = [self._wait(future, evaluate_shard, gt, results) for gt, results, future in self._shards]
        return accumulate_shards(self.gt, shards)

    def call(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        """Start ``fn(*args)`` in the worker pool (other scorers); the returned function waits for
        its result, computing it here instead when there are no workers or they died."""
        future = self._submit(fn, *args)
        return lambda: self._wait(future, fn, *args)

    def close(self) -> None:
        """Stop the workers (pending shards are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ShardedCocoEval:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
