"""The runtime's blocked NMS keeps exactly what the simple greedy NMS (the reference, kept only here) keeps."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.runtime import postprocess
from edgeproof.runtime.postprocess import Postprocess, nms, xywh_to_xyxy


def reference_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None):
    """The textbook loop: keep the best box, drop every box with IoU > threshold against it, repeat."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if not rest.size:
            break
        box, others = boxes[best], boxes[rest]
        ix0, iy0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
        ix1, iy1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
        inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
        area = (box[2] - box[0]) * (box[3] - box[1])
        areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
        union = area + areas - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _raw(rng: np.random.Generator, n: int, nc: int, *, ties: bool, grid: bool) -> np.ndarray:
    pred = np.zeros((4 + nc, n), np.float32)
    pred[0], pred[1] = rng.uniform(0, 128, n), rng.uniform(0, 128, n)
    pred[2], pred[3] = rng.uniform(1, 60, n), rng.uniform(1, 60, n)
    pred[4:] = rng.uniform(0, 1, (nc, n)) ** 3
    if ties:
        pred[4:] = np.round(pred[4:], 2)
    if grid:  # many identical and touching boxes
        pred[:4] = np.round(pred[:4] / 8) * 8
    return pred


@pytest.mark.parametrize("seed", range(40))
def test_postprocess_keeps_what_the_reference_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = _raw(rng, int(rng.integers(0, 500)), int(rng.integers(1, 5)), ties=seed % 3 == 0, grid=seed % 4 == 0)
    for multi_label in (True, False):
        for iou in (0.3, 0.5, 0.7, 1.0):
            max_det = int(rng.integers(1, 400))
            det = Postprocess(0.001, iou, max_det, multi_label)(pred)
            rows = pred.T
            if multi_label:
                r, c = np.nonzero(rows[:, 4:] > 0.001)
                scores, classes = rows[r, 4 + c], c
            else:
                c = rows[:, 4:].argmax(axis=1)
                s = rows[np.arange(len(rows)), 4 + c]
                r = np.nonzero(s > 0.001)[0]
                scores, classes = s[r], c[r]
            boxes = xywh_to_xyxy(rows[r, :4])
            keep = reference_nms(boxes + classes[:, None].astype(np.float32) * 7680.0, scores, iou, max_det)
            np.testing.assert_array_equal(det.boxes, boxes[keep])
            np.testing.assert_array_equal(det.scores, scores[keep])
            np.testing.assert_array_equal(det.classes, classes[keep])


def test_chains_across_block_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A suppression chain longer than a block: box k suppresses k+1 only, so every other box is kept."""
    monkeypatch.setattr(postprocess, "BLOCK", 4)
    n = 23
    boxes = np.asarray([[10.0 * k, 0, 10.0 * k + 15, 10] for k in range(n)], np.float32)  # IoU(k, k+1) = 0.2
    scores = np.linspace(1, 0.5, n).astype(np.float32)
    kept = nms(boxes, scores, 0.1)
    np.testing.assert_array_equal(kept, reference_nms(boxes, scores, 0.1))
    assert kept.tolist() == list(range(0, n, 2))
    np.testing.assert_array_equal(nms(boxes, scores, 0.1, max_keep=5), reference_nms(boxes, scores, 0.1, max_keep=5))


def test_empty_and_single() -> None:
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []
    assert nms(np.ones((1, 4), np.float32), np.ones(1, np.float32), 0.5).tolist() == [0]
    assert len(Postprocess(0.5, 0.7)(np.zeros((6, 10), np.float32))) == 0
