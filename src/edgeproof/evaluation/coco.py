"""pycocotools scoring, guarded against its sharp edges.

pycocotools crashes on an empty detection list and prints to stdout; both are handled here, and
``-1`` (no ground truth in an area range) becomes ``None`` rather than a fake score.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

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


def _quiet() -> contextlib.AbstractContextManager[Any]:
    return contextlib.redirect_stdout(io.StringIO())


def _coco_gt(gt: Mapping[str, Any]) -> Any:
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = copy.deepcopy(dict(gt))
    with _quiet():
        coco.createIndex()
    return coco


def _none_if_negative(value: float) -> float | None:
    return None if value < 0 else round(float(value), 6)


def _per_class(coco_eval: Any, categories: list[dict[str, Any]], gt: Mapping[str, Any]) -> list[dict[str, Any]]:
    precision = coco_eval.eval["precision"]  # [iou thresholds, recall points, classes, areas, max dets]
    n_gt: dict[int, int] = {}
    for ann in gt["annotations"]:
        if not ann.get("iscrowd", 0):
            n_gt[ann["category_id"]] = n_gt.get(ann["category_id"], 0) + 1
    rows = []
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p_all = precision[:, :, k, 0, -1]
        p_50 = precision[0, :, k, 0, -1]
        name = next((c["name"] for c in categories if c["id"] == cat_id), str(cat_id))
        rows.append(
            {
                "category_id": int(cat_id),
                "name": name,
                "ap": _none_if_negative(p_all[p_all > -1].mean()) if (p_all > -1).any() else None,
                "ap50": _none_if_negative(p_50[p_50 > -1].mean()) if (p_50 > -1).any() else None,
                "n_gt": n_gt.get(cat_id, 0),
            }
        )
    return rows


def _zero_metrics(gt: Mapping[str, Any]) -> dict[str, Any]:
    stats: dict[str, Any] = dict.fromkeys(STAT_NAMES, 0.0)
    per_class = [
        {
            "category_id": c["id"],
            "name": c["name"],
            "ap": 0.0,
            "ap50": 0.0,
            "n_gt": sum(1 for a in gt["annotations"] if a["category_id"] == c["id"] and not a.get("iscrowd", 0)),
        }
        for c in gt["categories"]
    ]
    return {**stats, "per_class": per_class}


def coco_evaluate(gt: Mapping[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """COCO bbox metrics of ``results`` against ``gt``: the 12 summary stats and per-class AP."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        log.warning("the model made no detections on %d images: every AP is 0", len(gt["images"]))
        return _zero_metrics(gt)
    coco_gt = _coco_gt(gt)
    with _quiet():
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        coco_eval = COCOeval(coco_gt, coco_dt, "bbox")
        coco_eval.params.imgIds = [im["id"] for im in gt["images"]]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    stats = {name: _none_if_negative(v) for name, v in zip(STAT_NAMES, np.asarray(coco_eval.stats), strict=True)}
    return {**stats, "per_class": _per_class(coco_eval, list(gt["categories"]), gt)}
