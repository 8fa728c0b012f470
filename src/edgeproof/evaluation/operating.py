"""The operating point: what the deployed detector gets right and wrong at its own thresholds.

Input is the *deployment set* (best class per box, NMS at the deployment IoU, kept down to the
mAP confidence). Precision, recall and F1 are COCO-style class-aware matches at ``match_iou``;
the confusion matrix uses class-agnostic matching so that a right box with a wrong class shows up
off the diagonal. Every count comes from detections with ``score > conf`` (the runtime's rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edgeproof.data.classkeys import ALL
from edgeproof.evaluation.matching import FP, IGNORED, TP, ImageTruth, by_class, confusion_pairs, match_image
from edgeproof.runtime.postprocess import Detections


@dataclass(frozen=True)
class MatchedSet:
    """Every deployment detection of the split with its match status, and the ground-truth counts."""

    image_ids: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    status: np.ndarray
    n_gt: np.ndarray  # non-crowd boxes per class
    n_objects_by_image: dict[int, int]


@dataclass(frozen=True)
class ImageScore:
    """How one image fares at the operating point (for the worst-first mosaic)."""

    image_id: int
    f1: float
    tp: int
    fp: int
    fn: int


def match_all(
    truths: Mapping[int, ImageTruth], deploy: Mapping[int, Detections], n_classes: int, match_iou: float
) -> MatchedSet:
    """Match every image's deployment detections to its ground truth once (see :mod:`.matching`)."""
    ids, scores, classes, status = [], [], [], []
    n_gt = np.zeros(n_classes, dtype=np.int64)
    per_image = {}
    for image_id, truth in truths.items():
        det = deploy.get(image_id, Detections.empty())
        match = match_image(truth, det.boxes, det.scores, det.classes, match_iou)
        ids.append(np.full(len(det), image_id, dtype=np.int64))
        scores.append(np.asarray(det.scores, dtype=float))
        classes.append(np.asarray(det.classes, dtype=np.int64))
        status.append(match.status)
        n_gt += by_class(truth.classes[~truth.crowd], n_classes)
        per_image[image_id] = truth.n_objects
    cat = np.concatenate
    return MatchedSet(
        image_ids=cat(ids) if ids else np.zeros(0, np.int64),
        scores=cat(scores) if scores else np.zeros(0),
        classes=cat(classes) if classes else np.zeros(0, np.int64),
        status=cat(status) if status else np.zeros(0, np.int8),
        n_gt=n_gt,
        n_objects_by_image=per_image,
    )


def _ratio(num: float, den: float) -> float | None:
    return round(float(num) / float(den), 6) if den > 0 else None


def prf(tp: int, fp: int, fn: int) -> dict[str, float | int | None]:
    """Counts with precision, recall and F1 (``None`` where undefined: no detections / no boxes)."""
    return {
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def counts_at(matched: MatchedSet, conf: float, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (TP, FP, FN) counting only detections with ``score > conf``."""
    keep = matched.scores > conf
    tp = by_class(matched.classes[keep & (matched.status == TP)], n_classes)
    fp = by_class(matched.classes[keep & (matched.status == FP)], n_classes)
    return tp, fp, matched.n_gt - tp


def operating_point(
    matched: MatchedSet, names: Sequence[str], category_ids: Sequence[int], conf: float
) -> dict[str, object]:
    """Precision/recall/F1 per class, overall (micro: pooled counts) and mean over classes with boxes."""
    tp, fp, fn = counts_at(matched, conf, len(names))
    rows = [
        {"name": name, "category_id": int(cid), **prf(tp[k], fp[k], fn[k])}
        for k, (name, cid) in enumerate(zip(names, category_ids, strict=True))
    ]
    with_gt = [r for r in rows if r["tp"] + r["fn"] > 0]

    def mean(key: str) -> float | None:
        values = [r[key] for r in with_gt if r[key] is not None]
        return round(float(np.mean(values)), 6) if values else None

    return {
        "overall": prf(tp.sum(), fp.sum(), fn.sum()),
        "mean_class": {"precision": mean("precision"), "recall": mean("recall"), "f1": mean("f1")},
        "per_class": rows,
    }


def _sweep(scores: np.ndarray, status: np.ndarray, n_gt: int, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall, F1 at each threshold of ``grid`` (detections with ``score > threshold``)."""
    order = np.argsort(-scores, kind="stable")
    scores, status = scores[order], status[order]
    tp_cum = np.concatenate([[0], np.cumsum(status == TP)])
    n_cum = np.concatenate([[0], np.cumsum(status != IGNORED)])  # detections on crowd regions count for nothing
    above = np.searchsorted(-scores, -grid, side="left")  # how many scores are > each threshold
    tp, n = tp_cum[above], n_cum[above]
    precision = np.where(n > 0, tp / np.maximum(n, 1), 1.0)
    recall = tp / n_gt
    f1 = 2 * tp / (n + n_gt)
    return precision, recall, f1


def f1_curve(matched: MatchedSet, names: Sequence[str], points: int) -> list[dict[str, float | str]]:
    """Precision, recall and F1 against the confidence threshold, per class and for ``all`` classes.

    In these curves an empty detection set has precision 1 (nothing claimed, nothing wrong: the
    usual PR-curve convention); ``eval.json`` reports it as ``null`` instead. Classes without
    ground truth are left out.
    """
    grid = np.linspace(0.0, 1.0, points)
    rows: list[dict[str, float | str]] = []
    for k, label in enumerate([*names, ALL]):
        every = k == len(names)  # the aggregate row, by place: a class key is never ALL, but say so by index
        sel = np.ones(len(matched.classes), dtype=bool) if every else matched.classes == k
        n_gt = int(matched.n_gt.sum() if every else matched.n_gt[k])
        if n_gt == 0:
            continue
        precision, recall, f1 = _sweep(matched.scores[sel], matched.status[sel], n_gt, grid)
        for c, p, r, f in zip(grid, precision, recall, f1, strict=True):
            rows.append({"class": label, "confidence": round(float(c), 4), "precision": p, "recall": r, "f1": f})
    return [{k: float(v) if isinstance(v, np.floating) else v for k, v in row.items()} for row in rows]


def confusion_matrix(
    truths: Mapping[int, ImageTruth], deploy: Mapping[int, Detections], n_classes: int, conf: float, match_iou: float
) -> np.ndarray:
    """``(n+1, n+1)`` counts indexed ``[predicted, actual]``; index ``n`` is background.

    Column ``background``: detections that matched no box (false alarms). Row ``background``:
    boxes nobody detected (misses).
    """
    matrix = np.zeros((n_classes + 1, n_classes + 1), dtype=np.int64)
    for image_id, truth in truths.items():
        det = deploy.get(image_id, Detections.empty())
        keep = det.scores > conf
        pairs, missed, false_alarms = confusion_pairs(truth, det.boxes[keep], det.classes[keep], match_iou)
        for actual, predicted in pairs:
            matrix[predicted, actual] += 1
        np.add.at(matrix, (n_classes, missed), 1)
        np.add.at(matrix, (false_alarms, n_classes), 1)
    return matrix


def image_scores(matched: MatchedSet, conf: float) -> list[ImageScore]:
    """Per-image F1 at the operating point, worst first (then most errors, then image id).

    An image with no boxes and no detections scores 1.
    """
    ids = list(matched.n_objects_by_image)
    position = {image_id: i for i, image_id in enumerate(ids)}
    where = np.asarray([position[int(i)] for i in matched.image_ids], dtype=np.int64)
    keep = matched.scores > conf
    tps = np.bincount(where[keep & (matched.status == TP)], minlength=len(ids))
    fps = np.bincount(where[keep & (matched.status == FP)], minlength=len(ids))
    out = []
    for i, image_id in enumerate(ids):
        tp, fp = int(tps[i]), int(fps[i])
        fn = matched.n_objects_by_image[image_id] - tp
        f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0
        out.append(ImageScore(image_id, round(f1, 6), tp, fp, fn))
    return sorted(out, key=lambda s: (s.f1, -(s.fp + s.fn), s.image_id))
