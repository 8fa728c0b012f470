"""The evaluation's blocked NMS must keep exactly what the runtime's NMS keeps."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.evaluation import fastnms
from edgeproof.evaluation.fastnms import blocked_nms, postprocess_fast
from edgeproof.runtime.postprocess import nms, postprocess


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
def test_postprocess_identical_to_runtime(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = _raw(rng, int(rng.integers(0, 500)), int(rng.integers(1, 5)), ties=seed % 3 == 0, grid=seed % 4 == 0)
    for multi_label in (True, False):
        for iou in (0.3, 0.5, 0.7, 1.0):
            max_det = int(rng.integers(1, 400))
            a = postprocess(pred, 0.001, iou, max_det, multi_label)
            b = postprocess_fast(pred, 0.001, iou, max_det, multi_label)
            np.testing.assert_array_equal(a.boxes, b.boxes)
            np.testing.assert_array_equal(a.scores, b.scores)
            np.testing.assert_array_equal(a.classes, b.classes)


def test_chains_across_block_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A suppression chain longer than a block: box k suppresses k+1 only, so every other box is kept."""
    monkeypatch.setattr(fastnms, "BLOCK", 4)
    n = 23
    boxes = np.asarray([[10.0 * k, 0, 10.0 * k + 15, 10] for k in range(n)], np.float32)  # IoU(k, k+1) = 0.2
    scores = np.linspace(1, 0.5, n).astype(np.float32)
    kept = blocked_nms(boxes, scores, 0.1)
    np.testing.assert_array_equal(kept, nms(boxes, scores, 0.1))
    assert kept.tolist() == list(range(0, n, 2))
    np.testing.assert_array_equal(blocked_nms(boxes, scores, 0.1, max_keep=5), nms(boxes, scores, 0.1, max_keep=5))


def test_empty_and_single() -> None:
    assert blocked_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []
    assert blocked_nms(np.ones((1, 4), np.float32), np.ones(1, np.float32), 0.5).tolist() == [0]
    assert len(postprocess_fast(np.zeros((6, 10), np.float32), 0.5, 0.7)) == 0
