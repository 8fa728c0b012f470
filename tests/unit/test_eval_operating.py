"""Operating point, confusion matrix, F1-vs-confidence and per-image scores on hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.evaluation.matching import FP, IGNORED, TP, ImageTruth, iou_matrix, match_image, truth_by_image
from edgeproof.evaluation.operating import (
    confusion_matrix,
    f1_curve,
    image_scores,
    match_all,
    operating_point,
)
from edgeproof.runtime.postprocess import Detections

NAMES = ["cat", "dog"]
CAT_IDS = [7, 9]


def truth(boxes: list[list[float]], classes: list[int], crowd: list[bool] | None = None) -> ImageTruth:
    return ImageTruth(
        np.asarray(boxes, float).reshape(-1, 4),
        np.asarray(classes, np.int64),
        np.asarray(crowd or [False] * len(classes), bool),
    )


def dets(rows: list[tuple[list[float], float, int]]) -> Detections:
    if not rows:
        return Detections.empty()
    return Detections(
        np.asarray([r[0] for r in rows], np.float32),
        np.asarray([r[1] for r in rows], np.float32),
        np.asarray([r[2] for r in rows], np.int64),
    )


CAT1 = [10, 10, 60, 60]
CAT2 = [100, 100, 150, 150]
DOG1 = [10, 100, 70, 160]

# image 1: cat found (0.9) + duplicate (0.6) + low-score false alarm (0.2)
# image 2: cat called dog (0.8), dog missed
# image 3: nothing to find, one false alarm (0.4)
TRUTHS = {
    1: truth([CAT1], [0]),
    2: truth([CAT2, DOG1], [0, 1]),
    3: truth([], []),
}
DEPLOY = {
    1: dets([(CAT1, 0.9, 0), ([12, 10, 60, 62], 0.6, 0), ([150, 10, 190, 40], 0.2, 1)]),
    2: dets([(CAT2, 0.8, 1)]),
    3: dets([([0, 0, 30, 30], 0.4, 0)]),
}


def test_iou_matrix_and_crowd_rule() -> None:
    a = np.asarray([[0, 0, 10, 10]], float)
    b = np.asarray([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 20, 20]], float)
    assert iou_matrix(a, b)[0] == pytest.approx([1.0, 50 / 150, 0.25])
    # against a crowd region the IoU is intersection / detection area
    assert iou_matrix(a, b, np.asarray([False, False, True]))[0, 2] == pytest.approx(1.0)


def test_match_image_statuses() -> None:
    m = match_image(TRUTHS[1], DEPLOY[1].boxes, DEPLOY[1].scores, DEPLOY[1].classes, 0.5)
    assert m.status.tolist() == [TP, FP, FP]
    assert m.gt_matched.tolist() == [True]
    crowd = truth([CAT1, [100, 0, 200, 100]], [0, 0], [False, True])
    m = match_image(crowd, *_arrays([(CAT1, 0.5, 0), ([120, 20, 150, 50], 0.9, 0)]), 0.5)
    assert m.status.tolist() == [TP, IGNORED]


def _arrays(rows: list[tuple[list[float], float, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = dets(rows)
    return d.boxes, d.scores, d.classes


def test_operating_point_counts() -> None:
    matched = match_all(TRUTHS, DEPLOY, 2, 0.5)
    point = operating_point(matched, NAMES, CAT_IDS, conf=0.25)
    cat, dog = point["per_class"]
    # cat: TP (0.9); FP: duplicate 0.6 and false alarm 0.4 (the 0.2 one is a dog, below conf anyway)
    assert (cat["tp"], cat["fp"], cat["fn"]) == (1, 2, 1)
    assert cat["precision"] == pytest.approx(1 / 3, abs=1e-6) and cat["recall"] == pytest.approx(0.5)
    assert cat["f1"] == pytest.approx(2 / 5, abs=1e-6)
    # dog: the cat called dog is an FP; the real dog is missed
    assert (dog["tp"], dog["fp"], dog["fn"]) == (0, 1, 1)
    assert dog["precision"] == 0.0 and dog["recall"] == 0.0 and dog["f1"] == 0.0
    assert point["overall"] == {"tp": 1, "fp": 3, "fn": 2, "precision": 0.25, "recall": pytest.approx(1 / 3, abs=1e-6),
                                "f1": pytest.approx(2 / 7, abs=1e-6)}  # fmt: skip
    assert point["mean_class"]["f1"] == pytest.approx(0.2)
    assert cat["category_id"] == 7 and dog["category_id"] == 9


def test_undefined_ratios_are_null() -> None:
    matched = match_all({1: truth([CAT1], [0])}, {}, 2, 0.5)
    point = operating_point(matched, NAMES, CAT_IDS, conf=0.25)
    cat, dog = point["per_class"]
    assert cat["precision"] is None and cat["recall"] == 0.0 and cat["f1"] == 0.0
    assert dog["precision"] is None and dog["recall"] is None and dog["f1"] is None


def test_confusion_matrix_with_background() -> None:
    m = confusion_matrix(TRUTHS, DEPLOY, 2, conf=0.25, match_iou=0.5)
    # [predicted, actual]; index 2 = background
    expected = np.zeros((3, 3), int)
    expected[0, 0] = 1  # cat as cat
    expected[1, 0] = 1  # cat called dog
    expected[2, 1] = 1  # dog missed
    expected[0, 2] = 2  # duplicate and false alarm predicted as cat on background
    np.testing.assert_array_equal(m, expected)
    assert m.sum(axis=0)[:2].tolist() == [2, 1]  # every non-crowd box appears exactly once


def test_confusion_ignores_detections_on_crowd_regions() -> None:
    truths = {1: truth([CAT1, [100, 0, 200, 100]], [0, 0], [False, True])}
    deploy = {1: dets([(CAT1, 0.9, 0), ([120, 20, 150, 50], 0.9, 1)])}
    m = confusion_matrix(truths, deploy, 2, conf=0.25, match_iou=0.5)
    assert m.sum() == 1 and m[0, 0] == 1


def test_f1_curve_matches_operating_point() -> None:
    matched = match_all(TRUTHS, DEPLOY, 2, 0.5)
    rows = f1_curve(matched, NAMES, points=101)
    at = {(r["class"], r["confidence"]): r for r in rows}
    for conf in (0.0, 0.25, 0.5, 0.85):
        point = operating_point(matched, NAMES, CAT_IDS, conf)
        assert at[("all", conf)]["f1"] == pytest.approx(point["overall"]["f1"], abs=1e-6)
        assert at[("cat", conf)]["recall"] == pytest.approx(point["per_class"][0]["recall"], abs=1e-6)
    assert at[("all", 1.0)]["precision"] == 1.0 and at[("all", 1.0)]["f1"] == 0.0  # nothing above 1
    assert {r["class"] for r in rows} == {"cat", "dog", "all"}


def test_a_class_keyed_like_the_aggregate_keeps_its_own_f1_curve() -> None:
    """The aggregate row is the last one by place, not whichever label reads ``all``."""
    matched = match_all(TRUTHS, DEPLOY, 2, 0.5)
    plain = [r for r in f1_curve(matched, NAMES, points=11) if r["class"] == "cat"]
    renamed = f1_curve(matched, ["all", "dog"], points=11)  # class 0 labelled like the aggregate
    assert [r for r in renamed[: len(plain)]] == [{**r, "class": "all"} for r in plain]


def test_image_scores_worst_first() -> None:
    matched = match_all(TRUTHS, DEPLOY, 2, 0.5)
    scores = image_scores(matched, conf=0.25)
    assert [s.image_id for s in scores] == [2, 3, 1]
    worst = scores[0]
    assert (worst.tp, worst.fp, worst.fn, worst.f1) == (0, 1, 2, 0.0)
    assert scores[2].f1 == pytest.approx(2 / 3)  # 1 TP, 1 FP (duplicate), 0 FN
    assert image_scores(match_all({5: truth([], [])}, {}, 2, 0.5), 0.25)[0].f1 == 1.0


def test_truth_by_image_maps_categories_to_class_indices() -> None:
    gt = {
        "images": [{"id": 4}, {"id": 5}],
        "annotations": [
            {"image_id": 4, "category_id": 9, "bbox": [1, 2, 3, 4], "iscrowd": 0},
            {"image_id": 4, "category_id": 7, "bbox": [0, 0, 10, 10], "iscrowd": 1},
        ],
    }
    truths = truth_by_image(gt, {7: 0, 9: 1})
    assert truths[4].classes.tolist() == [1, 0] and truths[4].crowd.tolist() == [False, True]
    assert truths[4].boxes[0].tolist() == [1, 2, 4, 6] and truths[4].n_objects == 1
    assert truths[5].boxes.shape == (0, 4)
