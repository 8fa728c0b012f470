"""Detection-level agreement of two pipelines on the same images, and what their differences point to.

Two pipelines that feed the model the same pixels and decode its output the same way produce the
same detections: same image, same category, boxes within rounding, scores within float noise. A
detection of one is *matched* to one of the other (one to one, highest scores first) when both are
on the same image, have the same category, overlap with IoU >= :data:`MATCH_IOU` and their scores
differ by at most :data:`SCORE_TOLERANCE`.

When they do not agree, the unmatched detections usually say why: a right box with another
category (category ids), boxes consistently larger or smaller (scale), or consistently offset
(letterbox padding or a shift).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeproof.runtime.postprocess import box_iou

MATCH_IOU = 0.9
SCORE_TOLERANCE = 0.005


@dataclass(frozen=True)
class ImageAgreement:
    """How the two pipelines' detections of one image compare."""

    image_id: int
    ours: int
    theirs: int
    matched: int

    @property
    def share(self) -> float:
        """Matched share of the larger of the two detection counts (1.0 when both are empty)."""
        return self.matched / max(self.ours, self.theirs) if max(self.ours, self.theirs) else 1.0


_Grouped = dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]


def _xyxy(results: Sequence[Mapping[str, Any]]) -> np.ndarray:
    b = np.asarray([r["bbox"] for r in results], dtype=float).reshape(-1, 4)
    return np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]])


def _group(results: Sequence[Mapping[str, Any]]) -> _Grouped:
    """image id -> category id -> (xyxy boxes, scores), best score first."""
    rows: dict[int, dict[int, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        rows[int(r["image_id"])][int(r["category_id"])].append(r)
    out: _Grouped = {}
    for image_id, by_cat in rows.items():
        out[image_id] = {}
        for cat, items in by_cat.items():
            items = sorted(items, key=lambda r: -float(r["score"]))
            out[image_id][cat] = (_xyxy(items), np.asarray([float(r["score"]) for r in items]))
    return out


def match_count(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    iou: float = MATCH_IOU,
    score_tolerance: float | None = SCORE_TOLERANCE,
) -> int:
    """One-to-one matches between two score-sorted ``(xyxy boxes, scores)`` sets of one image and class:
    IoU >= ``iou`` and (unless ``score_tolerance`` is None) scores within ``score_tolerance``."""
    (boxes_a, scores_a), (boxes_b, scores_b) = a, b
    if not len(scores_a) or not len(scores_b):
        return 0
    ok = box_iou(boxes_a, boxes_b) >= iou
    if score_tolerance is not None:
        ok &= np.abs(scores_a[:, None] - scores_b[None, :]) <= score_tolerance
    free = np.ones(len(scores_b), dtype=bool)
    matched = 0
    for i in np.nonzero(ok.any(axis=1))[0]:
        cand = np.nonzero(ok[i] & free)[0]
        if cand.size:
            free[cand[0]] = False
            matched += 1
    return matched


def per_image(
    ours: Sequence[Mapping[str, Any]], theirs: Sequence[Mapping[str, Any]], image_ids: Sequence[int]
) -> list[ImageAgreement]:
    """Per-image counts and one-to-one matches, in ``image_ids`` order."""
    a, b = _group(ours), _group(theirs)
    empty = (np.zeros((0, 4)), np.zeros(0))
    out = []
    for image_id in image_ids:
        ga, gb = a.get(int(image_id), {}), b.get(int(image_id), {})
        matched = sum(match_count(ga[c], gb.get(c, empty)) for c in ga)
        n_a, n_b = sum(len(s) for _, s in ga.values()), sum(len(s) for _, s in gb.values())
        out.append(ImageAgreement(int(image_id), n_a, n_b, matched))
    return out


def summary(images: Sequence[ImageAgreement]) -> dict[str, Any]:
    """Pooled agreement: matched detections as a share of the larger total, and the settings."""
    ours, theirs = sum(i.ours for i in images), sum(i.theirs for i in images)
    matched = sum(i.matched for i in images)
    return {
        "share": round(matched / max(ours, theirs), 6) if max(ours, theirs) else 1.0,
        "matched": matched,
        "edgeproof": ours,
        "ultralytics": theirs,
        "iou": MATCH_IOU,
        "score_tolerance": SCORE_TOLERANCE,
    }


def _best_pairs(ours: np.ndarray, theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``ours`` the ``theirs`` box it overlaps most (IoU > 0.3), as index arrays."""
    if not len(ours) or not len(theirs):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    iou = box_iou(ours, theirs)
    best = iou.argmax(axis=1)
    keep = iou[np.arange(len(ours)), best] > 0.3
    return np.nonzero(keep)[0], best[keep]


def likely_cause(ours: Sequence[Mapping[str, Any]], theirs: Sequence[Mapping[str, Any]]) -> str:
    """A best guess at why two detection sets of the same images differ (ids, scale, letterbox)."""
    if not ours or not theirs:
        return "one pipeline has no detections on these images (model, input scaling or confidence threshold)"
    mine, other = _xyxy(ours), _xyxy(theirs)
    cat_a = np.asarray([int(r["category_id"]) for r in ours])
    cat_b = np.asarray([int(r["category_id"]) for r in theirs])
    i, j = _best_pairs(mine, other)
    if not i.size:
        return "the boxes do not overlap at all (image ids, or coordinates in another space)"
    if i.size < 0.5 * max(len(mine), len(other)):
        return (
            "detections present on one side only (confidence threshold, NMS settings, image ids, "
            "or the pixels fed to the model)"
        )
    close = box_iou(mine[i], other[j]).diagonal() >= MATCH_IOU
    if close.mean() > 0.5 and (cat_a[i][close] != cat_b[j][close]).mean() > 0.5:
        return "category ids: the same boxes carry different categories (class index -> category id mapping)"
    wa, wb = mine[i, 2] - mine[i, 0], other[j, 2] - other[j, 0]
    ratio = float(np.median(wa / np.maximum(wb, 1e-9)))
    if abs(ratio - 1) > 0.02:
        return f"scale: edgeproof's boxes are {ratio:.3f}x ultralytics' (resize factor or input size)"
    dx = float(np.median((mine[i, 0] + mine[i, 2] - other[j, 0] - other[j, 2]) / 2))
    dy = float(np.median((mine[i, 1] + mine[i, 3] - other[j, 1] - other[j, 3]) / 2))
    if max(abs(dx), abs(dy)) > 0.5:
        return f"letterbox: edgeproof's boxes are offset by ({dx:+.1f}, {dy:+.1f}) px (padding or a box shift)"
    scores_a = np.asarray([float(r["score"]) for r in ours])[i]
    scores_b = np.asarray([float(r["score"]) for r in theirs])[j]
    return _near_boxes(np.abs(mine[i] - other[j]), np.abs(scores_a - scores_b), ratio)


def _near_boxes(box_diff: np.ndarray, score_diff: np.ndarray, ratio: float) -> str:
    """The cause when paired boxes are within half a pixel of each other: their scores tell pixels fed to the
    model (scores differ) from the mapping of boxes back to the image (scores agree, boxes a fraction apart)."""
    score = float(np.median(score_diff))
    if score > SCORE_TOLERANCE:
        return (
            f"same boxes, different scores (median difference {score:.4f}): the pixels fed to the model differ "
            "(decoding, resize or normalisation)"
        )
    return (
        f"same scores (median difference {score:.4f}), boxes slightly apart (median corner "
        f"difference {float(np.median(box_diff)):.2f} px, largest {float(box_diff.max()):.2f}; widths "
        f"{ratio:.4f}x ultralytics'): the boxes are mapped back to the image differently; ultralytics undoes the "
        "letterbox with one gain for both axes, edgeproof each axis' own scale, which differ on a non-square input"
    )
