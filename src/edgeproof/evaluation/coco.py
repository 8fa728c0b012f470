"""pycocotools scoring, guarded against its sharp edges.

pycocotools crashes on an empty detection list and prints to stdout; both are handled here, and
``-1`` (no ground truth in an area range or class) becomes ``None`` rather than a fake score.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeproof.data.classkeys import class_keys

log = logging.getLogger(__name__)

STAT_NAMES = (
    "map50_95",
    "map50",
    "map75",
    "map_small",
    "map_medium",
    "map_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)

NO_DETECTIONS_WARNING = "the model made no detections on {n} images: every AP with ground truth is 0"


@dataclass(frozen=True)
class CocoScore:
    """What pycocotools measured: the summary metrics and the per-class PR curves behind AP50.

    ``pr_curves`` maps a class key (:func:`edgeproof.data.classkeys.class_keys`: the name, told
    apart by id where categories share one) to precision at each of ``recall_points`` (IoU 0.5, all areas,
    100 detections per image: the interpolated curve that AP50 averages); classes without ground
    truth are left out.
    """

    metrics: dict[str, Any]
    recall_points: np.ndarray
    pr_curves: dict[str, np.ndarray]


def quiet() -> contextlib.AbstractContextManager[Any]:
    """Swallow the progress prints of COCO tools."""
    return contextlib.redirect_stdout(io.StringIO())


def none_if_negative(value: float) -> float | None:
    """A COCO statistic as JSON: ``-1`` (not applicable) is ``None``; others rounded to 6 digits."""
    return None if value < 0 else round(float(value), 6)


def _mean_valid(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return round(float(valid.mean()), 6) if valid.size else None


def gt_counts(gt: Mapping[str, Any]) -> dict[int, int]:
    """Non-crowd ground-truth boxes per category id."""
    counts = {int(c["id"]): 0 for c in gt["categories"]}
    for ann in gt["annotations"]:
        if not ann.get("iscrowd", 0):
            counts[int(ann["category_id"])] = counts.get(int(ann["category_id"]), 0) + 1
    return counts


def background_images(gt: Mapping[str, Any]) -> int:
    """How many of ``gt``'s images are background: no non-crowd box (a crowd region is ignored by the mAP, so
    an image with only crowd regions is background to it too). Only false positives can be found on them."""
    boxed = {ann["image_id"] for ann in gt["annotations"] if not ann.get("iscrowd", 0)}
    return sum(1 for image in gt["images"] if image["id"] not in boxed)


def _per_class(coco_eval: Any, gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    precision = coco_eval.eval["precision"]  # [iou thresholds, recall points, classes, areas, max dets]
    n_gt = gt_counts(gt)
    n_dt: dict[int, int] = {}
    for r in results:
        n_dt[int(r["category_id"])] = n_dt.get(int(r["category_id"]), 0) + 1
    names = {int(c["id"]): str(c["name"]) for c in gt["categories"]}
    rows = []
    for k, cat_id in enumerate(coco_eval.params.catIds):
        rows.append(
            {
                "category_id": int(cat_id),
                "name": names.get(int(cat_id), str(cat_id)),
                "ap": _mean_valid(precision[:, :, k, 0, -1]),
                "ap50": _mean_valid(precision[0, :, k, 0, -1]),
                "ap75": _mean_valid(precision[5, :, k, 0, -1]),
                "n_gt": n_gt.get(int(cat_id), 0),
                "n_detections": n_dt.get(int(cat_id), 0),
            }
        )
    return rows


def _pr_curves(coco_eval: Any, gt: Mapping[str, Any]) -> dict[str, np.ndarray]:
    precision = coco_eval.eval["precision"]
    # keyed like every per-class figure: two classes sharing a name keep a curve each
    keys = class_keys((c["id"], c["name"]) for c in gt["categories"])
    curves = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        curve = precision[0, :, k, 0, -1]
        if (curve > -1).all():
            curves[keys.get(int(cat_id), str(cat_id))] = curve.astype(float)
    return curves


def coco_object(dataset: Mapping[str, Any], coco_cls: Any) -> Any:
    """A ``coco_cls`` (pycocotools or faster-coco-eval ``COCO``) over a deep copy of ``dataset``."""
    coco = coco_cls()
    coco.dataset = copy.deepcopy(dict(dataset))  # COCOeval writes "ignore" flags into the annotations
    with quiet():
        coco.createIndex()
    return coco


def detections_coco(coco_gt: Any, gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], coco_cls: Any) -> Any:
    """The detections as a COCO object; an empty list is built by hand (``loadRes`` crashes on it)."""
    if results:
        with quiet():
            return coco_gt.loadRes([dict(r) for r in results])
    empty = {"images": list(gt["images"]), "categories": list(gt["categories"]), "annotations": []}
    return coco_object(empty, coco_cls)


def evaluated_cocoeval(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> Any:
    """A pycocotools ``COCOeval`` (bbox) over ``gt``'s images after ``evaluate()``: per-image records only."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_gt = coco_object(gt, COCO)
    coco_dt = detections_coco(coco_gt, gt, results, COCO)
    with quiet():
        coco_eval = COCOeval(coco_gt, coco_dt, "bbox")
        coco_eval.params.imgIds = [im["id"] for im in gt["images"]]
        coco_eval.evaluate()
    return coco_eval


def run_cocoeval(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> Any:
    """An evaluated, accumulated and summarized pycocotools ``COCOeval`` (bbox)."""
    coco_eval = evaluated_cocoeval(gt, results)
    with quiet():
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def score_coco(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], coco_eval: Any = None) -> CocoScore:
    """COCO bbox metrics of ``results`` against ``gt``: 12 summary stats, per-class AP, PR curves.

    ``coco_eval``: an already accumulated and summarized ``COCOeval`` of exactly these results
    (e.g. from :class:`edgeproof.evaluation.shards.ShardedCocoEval`); by default one is run here.
    With no detections at all every AP and AR with ground truth is 0 (a warning is logged), and
    those without ground truth (an empty area range) are ``None``, as with detections.
    """
    if not results:
        log.warning(NO_DETECTIONS_WARNING.format(n=len(gt["images"])))
    if coco_eval is None:
        coco_eval = run_cocoeval(gt, results)
    stats = {name: none_if_negative(v) for name, v in zip(STAT_NAMES, np.asarray(coco_eval.stats), strict=True)}
    metrics = {**stats, "per_class": _per_class(coco_eval, gt, results)}
    return CocoScore(
        metrics=metrics,
        recall_points=np.asarray(coco_eval.params.recThrs, dtype=float),
        pr_curves=_pr_curves(coco_eval, gt),
    )
