"""Decoding YOLO (anchor-free, ultralytics 'u' head) ONNX output and NMS in numpy.

The exported model outputs ``(batch, 4 + num_classes, num_anchors)``: box centre/size in
model-input pixels, then per-class scores already passed through a sigmoid (no objectness).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_MAX_WH = 7680.0  # class offset for batched NMS: larger than any input side
_MAX_CANDIDATES = 30_000


@dataclass(frozen=True)
class Detections:
    """Detections of one image: ``boxes`` (n, 4) xyxy, ``scores`` (n,), ``classes`` (n,) model indices."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """Centre/size boxes to corner boxes."""
    out = np.empty_like(xywh)
    half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
    out[:, 0], out[:, 1] = xywh[:, 0] - half_w, xywh[:, 1] - half_h
    out[:, 2], out[:, 3] = xywh[:, 0] + half_w, xywh[:, 1] + half_h
    return out


def box_iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box against ``(n, 4)`` boxes."""
    ix0, iy0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    ix1, iy1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first.

    A box is suppressed when its IoU with an already kept box is strictly greater than
    ``iou_threshold`` (the torchvision convention).
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if not rest.size:
            break
        order = rest[box_iou_one_to_many(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def postprocess(
    pred: np.ndarray,
    conf: float,
    iou: float,
    max_det: int = 300,
    multi_label: bool = False,
    agnostic: bool = False,
    nms_fn: Callable[..., np.ndarray] = nms,
) -> Detections:
    """Turn one image's raw output ``(4 + nc, n_anchors)`` into NMS-filtered detections.

    ``multi_label`` keeps every (box, class) pair above ``conf`` (what COCO mAP evaluation
    wants); otherwise each box keeps its best class only (what a deployment wants). ``nms_fn``
    is any NMS with :func:`nms`'s signature and results (e.g. a faster blocked variant).
    """
    pred = np.asarray(pred, dtype=np.float32).T  # (n_anchors, 4 + nc)
    boxes_xywh, cls_scores = pred[:, :4], pred[:, 4:]
    if multi_label:
        rows, cols = np.nonzero(cls_scores > conf)
        scores, classes = cls_scores[rows, cols], cols
    else:
        classes = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(cls_scores.shape[0]), classes]
        rows = np.nonzero(scores > conf)[0]
        scores, classes = scores[rows], classes[rows]
    if rows.size == 0:
        return Detections.empty()
    if rows.size > _MAX_CANDIDATES:
        top = np.argsort(-scores, kind="stable")[:_MAX_CANDIDATES]
        rows, scores, classes = rows[top], scores[top], classes[top]
    boxes = xywh_to_xyxy(boxes_xywh[rows])
    offset = 0.0 if agnostic else classes[:, None].astype(np.float32) * _MAX_WH
    keep = nms_fn(boxes + offset, scores, iou, max_keep=max_det)
    return Detections(boxes=boxes[keep], scores=scores[keep], classes=classes[keep].astype(np.int64))
