"""Matching one image's detections to its ground truth, the way COCO does (numpy only).

Rules, as in pycocotools' ``evaluateImg`` at a single IoU threshold:

* detections are visited by descending score; each takes the unmatched same-class box with the
  highest IoU >= the threshold, non-crowd boxes first;
* a detection whose best match is a crowd region is *ignored* (neither TP nor FP); crowd regions
  may absorb any number of detections; the IoU with a crowd region is intersection / detection area;
* a ground-truth box matched by nobody is a false negative; crowd regions never are.

Because a detection's fate depends only on higher-scored detections, matching everything once and
then keeping the detections above a confidence gives the same answer as matching at that confidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeproof.runtime.postprocess import box_iou

TP, FP, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class ImageTruth:
    """One image's ground truth: xyxy boxes in original pixels, class indices, crowd flags."""

    boxes: np.ndarray
    classes: np.ndarray
    crowd: np.ndarray

    @property
    def n_objects(self) -> int:
        """Non-crowd boxes (the ones that can be missed)."""
        return int((~self.crowd).sum())


@dataclass(frozen=True)
class ImageMatch:
    """Per-detection status (``TP``/``FP``/``IGNORED``) and per-GT-box matched flags."""

    status: np.ndarray
    gt_matched: np.ndarray


def truth_by_image(gt: Mapping[str, Any], category_to_class: Mapping[int, int]) -> dict[int, ImageTruth]:
    """:class:`ImageTruth` for every image of a COCO ground-truth dict (class indices via the mapping)."""
    rows: dict[int, list[tuple[list[float], int, bool]]] = {int(im["id"]): [] for im in gt["images"]}
    for ann in gt["annotations"]:
        x, y, w, h = (float(v) for v in ann["bbox"])
        rows.setdefault(int(ann["image_id"]), []).append(
            ([x, y, x + w, y + h], category_to_class[int(ann["category_id"])], bool(ann.get("iscrowd", 0)))
        )
    out = {}
    for image_id, items in rows.items():
        out[image_id] = ImageTruth(
            boxes=np.asarray([b for b, _, _ in items], dtype=float).reshape(-1, 4),
            classes=np.asarray([c for _, c, _ in items], dtype=np.int64),
            crowd=np.asarray([z for _, _, z in items], dtype=bool),
        )
    return out


def iou_matrix(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray | None = None) -> np.ndarray:
    """IoU (float64) of ``(n, 4)`` xyxy detections against ``(m, 4)`` xyxy boxes; for crowd boxes
    intersection over the detection's area (COCO's rule). The runtime's one IoU function."""
    dets, gts = np.asarray(dets, float).reshape(-1, 4), np.asarray(gts, float).reshape(-1, 4)
    return box_iou(dets, gts, crowd)


def _best_gt(ious: np.ndarray, free: np.ndarray, crowd: np.ndarray, thr: float) -> int:
    """COCO's choice for one detection: best free non-crowd box >= thr, else best crowd box >= thr."""
    for pool in (free & ~crowd, crowd):
        cand = np.where(pool & (ious >= thr), ious, -1.0)
        if cand.size and cand.max() >= 0:
            return int(cand.argmax())
    return -1


def match_image(
    truth: ImageTruth, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, thr: float
) -> ImageMatch:
    """Class-aware COCO matching of one image's detections at IoU ``thr``."""
    n = len(scores)
    status = np.full(n, FP, dtype=np.int8)
    gt_matched = np.zeros(len(truth.classes), dtype=bool)
    if n == 0 or len(truth.classes) == 0:
        return ImageMatch(status, gt_matched)
    ious = iou_matrix(boxes, truth.boxes, truth.crowd)
    ious = np.where(np.asarray(classes)[:, None] == truth.classes[None, :], ious, 0.0)
    candidates = (ious >= thr).any(axis=1)  # most low-confidence detections overlap nothing: FP at once
    for d in np.argsort(-np.asarray(scores), kind="stable"):
        if not candidates[d]:
            continue
        g = _best_gt(ious[d], ~gt_matched, truth.crowd, thr)
        if g < 0:
            continue
        if truth.crowd[g]:
            status[d] = IGNORED
        else:
            status[d], gt_matched[g] = TP, True
    return ImageMatch(status, gt_matched)


def confusion_pairs(
    truth: ImageTruth, boxes: np.ndarray, classes: np.ndarray, thr: float
) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """Class-agnostic matching for the confusion matrix (ultralytics' rule: highest IoU pairs first).

    Returns ``(pairs, unmatched_gt, unmatched_dets)``: ``(gt class, predicted class)`` of each matched
    pair, the classes of non-crowd boxes nobody matched, and the classes of detections that matched
    no box (detections lying on a crowd region are dropped, as COCO ignores them).
    """
    objects = ~truth.crowd
    gt_boxes, gt_classes = truth.boxes[objects], truth.classes[objects]
    classes = np.asarray(classes, dtype=np.int64)
    ious = iou_matrix(boxes, gt_boxes)
    d_idx, g_idx = np.nonzero(ious >= thr)
    order = np.argsort(-ious[d_idx, g_idx], kind="stable")
    used_d: set[int] = set()
    used_g: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for d, g in zip(d_idx[order].tolist(), g_idx[order].tolist(), strict=True):
        if d not in used_d and g not in used_g:
            used_d.add(d)
            used_g.add(g)
            pairs.append((int(gt_classes[g]), int(classes[d])))
    free_d = np.asarray([d for d in range(len(classes)) if d not in used_d], dtype=np.int64)
    if truth.crowd.any() and free_d.size:
        on_crowd = (iou_matrix(boxes[free_d], truth.boxes[truth.crowd], truth.crowd[truth.crowd]) >= thr).any(axis=1)
        free_d = free_d[~on_crowd]
    missed = np.asarray([c for g, c in enumerate(gt_classes.tolist()) if g not in used_g], dtype=np.int64)
    return pairs, missed, classes[free_d]


def by_class(values: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts of class indices ``0..n_classes-1``."""
    return np.bincount(np.asarray(values, dtype=np.int64), minlength=n_classes)[:n_classes]
