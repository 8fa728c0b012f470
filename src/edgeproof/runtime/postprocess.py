"""Decoding YOLO (anchor-free, ultralytics 'u' head) ONNX output and NMS in numpy: the one decode/NMS path.

The exported model outputs ``(batch, 4 + num_classes, num_anchors)``: box centre/size in
model-input pixels, then per-class scores already passed through a sigmoid (no objectness).

:class:`Postprocess` is the one type for "raw output -> detections". The deployment's settings come
from :class:`edgeproof.runtime.deploy.DeploySettings` (:meth:`Postprocess.deployed`); the mAP
scoring's from :class:`edgeproof.runtime.scoring.ScoringSettings` (:meth:`Postprocess.scoring`: low
confidence, multi-label). Evaluation and device run this same code.

The NMS is greedy NMS decided a block of candidates at a time (one IoU matrix settles the block among
itself, one more removes what the block's kept boxes suppress from the rest): the same kept indices
as the one-box-per-round loop (``tests/unit/test_postprocess.py`` keeps that loop as the reference),
without one round of numpy calls per kept box, which at the mAP confidence (hundreds of candidates
per image) would make NMS, not the model, the slow part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional

import numpy as np

from edgeproof.runtime.preprocess import Letterbox, boxes_to_original

if TYPE_CHECKING:
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.scoring import ScoringSettings

_MAX_WH = 7680.0  # class offset for batched NMS: larger than any input side
_MAX_CANDIDATES = 30_000
BLOCK = 64  # candidates decided per NMS round


@dataclass(frozen=True)
class Detections:
    """Detections of one image: ``boxes`` (n, 4) xyxy, ``scores`` (n,), ``classes`` (n,) model indices."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """Centre/size boxes to corner boxes."""
    half = xywh[:, 2:4] / 2
    return np.concatenate((xywh[:, :2] - half, xywh[:, :2] + half), axis=1)


def box_iou(a: np.ndarray, b: np.ndarray, crowd: Optional[np.ndarray] = None) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of xyxy boxes, computed in the inputs' dtype.

    ``crowd`` (optional, one flag per box of ``b``): for those boxes the denominator is the area of
    the ``a`` box instead of the union (COCO's rule for crowd regions). Zero-area pairs give 0.
    """
    side = np.minimum(a[:, None, 2:4], b[None, :, 2:4])  # the overlap's far corner, then its sides
    side -= np.maximum(a[:, None, 0:2], b[None, :, 0:2])
    np.maximum(side, 0, out=side)
    inter = side[..., 0] * side[..., 1]
    size_a, size_b = a[:, 2:4] - a[:, 0:2], b[:, 2:4] - b[:, 0:2]
    area = (size_a[:, 0] * size_a[:, 1])[:, None]
    areas = (size_b[:, 0] * size_b[:, 1])[None, :]
    union = area + areas - inter
    if crowd is not None and crowd.any():
        union = np.where(np.asarray(crowd, bool)[None, :], area, union)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: Optional[int] = None) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first (ties: lower index first).

    A box is suppressed when its IoU with an already kept box is strictly greater than
    ``iou_threshold`` (the torchvision convention); a NaN IoU suppresses nothing.
    """
    order = np.argsort(-scores, kind="stable")
    limit = len(order) if max_keep is None else max_keep
    keep: List[int] = []
    alive = order
    while alive.size and len(keep) < limit:
        block, rest = alive[:BLOCK], alive[BLOCK:]
        over = ~(box_iou(boxes[block], boxes[block]) <= iou_threshold)
        removed = np.zeros(len(block), dtype=bool)
        kept_local: List[int] = []
        for j in range(len(block)):
            if removed[j]:
                continue
            kept_local.append(j)
            if len(keep) + len(kept_local) >= limit:
                break
            removed |= over[j]
        kept = block[kept_local]
        keep.extend(kept.tolist())
        if rest.size and len(keep) < limit:
            rest = rest[(box_iou(boxes[kept], boxes[rest]) <= iou_threshold).all(axis=0)]
        alive = rest
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class Postprocess:
    """How raw output becomes detections: confidence, NMS IoU, cap, label mode and NMS mode.

    ``multi_label`` keeps every (box, class) pair above ``conf`` (what COCO mAP evaluation wants);
    otherwise each box keeps its best class only (what a deployment does). ``agnostic`` runs NMS
    across classes instead of within each class.
    """

    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    multi_label: bool = False
    agnostic: bool = False

    @classmethod
    def deployed(cls, deploy: DeploySettings, conf: Optional[float] = None) -> Postprocess:
        """The deployed detector's post-processing; ``conf`` overrides the confidence only (the
        evaluation keeps deployment detections down to its mAP confidence to draw curves)."""
        return cls(
            conf=deploy.conf if conf is None else conf,
            iou=deploy.iou,
            max_det=deploy.max_det,
            multi_label=False,
            agnostic=deploy.agnostic,
        )

    @classmethod
    def scoring(cls, settings: ScoringSettings) -> Postprocess:
        """The post-processing of the detections mAP is computed on (class-wise NMS)."""
        return cls(conf=settings.conf, iou=settings.iou, max_det=settings.max_det, multi_label=settings.multi_label)

    def __call__(self, pred: np.ndarray, letterbox: Optional[Letterbox] = None) -> Detections:
        """Decode + NMS one image's raw output ``(4 + nc, n_anchors)``; with ``letterbox`` the boxes
        are mapped back to the original image's pixels, else they stay in model-input pixels."""
        det = self._decode(pred)
        if letterbox is None or len(det) == 0:
            return det
        return Detections(boxes_to_original(det.boxes, letterbox), det.scores, det.classes)

    def _decode(self, pred: np.ndarray) -> Detections:
        pred = np.asarray(pred, dtype=np.float32)  # (4 + nc, n_anchors)
        if self.multi_label:
            per_anchor = pred[4:].T  # anchor-major, as NMS's tie order expects
            rows, cols = np.nonzero(per_anchor > self.conf)
            scores, classes = per_anchor[rows, cols], cols
        else:
            # the best score per anchor over contiguous rows, and the class only for the few above conf: the
            # same picks as an argmax over every anchor (a NaN or inf best score is no detection either way)
            best = pred[4:].max(axis=0)
            rows = np.nonzero(best > self.conf)[0]
            scores, classes = best[rows], pred[4:, rows].argmax(axis=0)
        finite = np.isfinite(scores)  # a corrupt output's inf/nan score is no detection
        if not finite.all():
            rows, scores, classes = rows[finite], scores[finite], classes[finite]
        if rows.size == 0:
            return Detections.empty()
        if rows.size > _MAX_CANDIDATES:
            top = np.argsort(-scores, kind="stable")[:_MAX_CANDIDATES]
            rows, scores, classes = rows[top], scores[top], classes[top]
        boxes = xywh_to_xyxy(pred[:4, rows].T)
        offset = 0.0 if self.agnostic else classes[:, None].astype(np.float32) * _MAX_WH
        keep = nms(boxes + offset, scores, self.iou, max_keep=self.max_det)
        return Detections(boxes=boxes[keep], scores=scores[keep], classes=classes[keep].astype(np.int64))
