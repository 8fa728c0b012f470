"""The runtime's decode + NMS, with the greedy NMS loop blocked for speed; results are identical.

:func:`edgeproof.runtime.postprocess.nms` costs one round of numpy calls per kept box, which at
the mAP confidence (0.001: hundreds of candidates per image) makes NMS, not the model, the slow
part of an evaluation. :func:`blocked_nms` decides the same greedy NMS a block of candidates at a
time: one IoU matrix settles the block among itself, one more removes everything the block's kept
boxes suppress from the rest. The IoU arithmetic (float32, same operations in the same order) and the
tie-breaking (stable sort on ``-score``) are the runtime's, so the kept indices are the same, which
``tests/unit/test_eval_fastnms.py`` checks against the runtime on random and adversarial inputs.
"""

from __future__ import annotations

import numpy as np

from edgeproof.runtime.postprocess import Detections, postprocess

BLOCK = 64


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` computed exactly as ``box_iou_one_to_many`` does per row."""
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    areas = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def blocked_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS, same contract and result as :func:`edgeproof.runtime.postprocess.nms`."""
    order = np.argsort(-scores, kind="stable")
    limit = len(order) if max_keep is None else max_keep
    keep: list[int] = []
    alive = order
    while alive.size and len(keep) < limit:
        block, rest = alive[:BLOCK], alive[BLOCK:]
        over = ~(_iou(boxes[block], boxes[block]) <= iou_threshold)  # the runtime keeps `<=`, NaN included
        removed = np.zeros(len(block), dtype=bool)
        kept_local: list[int] = []
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
            rest = rest[(_iou(boxes[kept], boxes[rest]) <= iou_threshold).all(axis=0)]
        alive = rest
    return np.asarray(keep, dtype=np.int64)


def postprocess_fast(
    pred: np.ndarray, conf: float, iou: float, max_det: int = 300, multi_label: bool = False
) -> Detections:
    """:func:`edgeproof.runtime.postprocess.postprocess` (class-aware) with :func:`blocked_nms`."""
    return postprocess(pred, conf, iou, max_det, multi_label, nms_fn=blocked_nms)
