"""pycocotools scoring on hand-built ground truth / detections whose AP is known exactly.

COCO AP averages the interpolated precision at 101 recall points (0, 0.01, ..., 1), so e.g. a class
whose detections reach recall 0.5 at precision 1 and nothing more scores exactly 51/101.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from edgeproof.evaluation.coco import STAT_NAMES, background_images, score_coco
from edgeproof.evaluation.independent import independent_stats

CATS = [{"id": 7, "name": "cat"}, {"id": 9, "name": "dog"}]


def _metrics(gt, dets):
    return score_coco(gt, dets).metrics


def gt_set(boxes: list[tuple[int, int, list[float]]], crowd: set[int] = frozenset()) -> dict[str, Any]:
    """``boxes``: (image_id, category_id, [x, y, w, h]); indices in ``crowd`` are crowd regions."""
    image_ids = sorted({b[0] for b in boxes} | {1})
    anns = [
        {
            "id": i + 1,
            "image_id": img,
            "category_id": cat,
            "bbox": bbox,
            "area": bbox[2] * bbox[3],
            "iscrowd": int(i in crowd),
        }
        for i, (img, cat, bbox) in enumerate(boxes)
    ]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200} for i in image_ids]
    return {"images": images, "annotations": anns, "categories": CATS}


def det(image_id: int, category_id: int, bbox: list[float], score: float) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


A = [10.0, 10.0, 50.0, 50.0]  # 2500 px²: a "medium" box
B = [100.0, 100.0, 60.0, 40.0]  # 2400 px²: medium too


def by_name(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in metrics["per_class"]}


def test_perfect_detections_score_one_and_na_areas_are_null() -> None:
    gt = gt_set([(1, 7, A), (2, 9, B), (2, 7, [120.0, 10.0, 40.0, 60.0])])
    dets = [det(a["image_id"], a["category_id"], a["bbox"], 0.9) for a in gt["annotations"]]
    m = _metrics(gt, dets)
    assert m["map50_95"] == m["map50"] == m["map75"] == m["map_medium"] == 1.0
    assert m["ar1"] == m["ar10"] == m["ar100"] == 1.0
    assert m["map_small"] is None and m["map_large"] is None  # no ground truth in those area ranges
    assert m["ar_small"] is None and m["ar_large"] is None
    rows = by_name(m)
    assert rows["cat"] == {
        "category_id": 7,
        "name": "cat",
        "ap": 1.0,
        "ap50": 1.0,
        "ap75": 1.0,
        "n_gt": 2,
        "n_detections": 2,
    }
    assert rows["dog"]["ap"] == 1.0 and rows["dog"]["n_gt"] == 1


def test_background_images_are_those_without_a_box_to_find() -> None:
    """A crowd region is no box to find (the mAP ignores it): an image with only one is background too."""
    gt = gt_set([(1, 7, A), (2, 7, B), (3, 9, A)], crowd={2})
    gt["images"].append({"id": 4, "file_name": "4.jpg", "width": 200, "height": 200})
    assert background_images(gt) == 2  # image 3 (a crowd region only) and image 4 (nothing)
    assert background_images(gt_set([(1, 7, A), (2, 9, B)])) == 0


def test_one_missed_box_halves_recall() -> None:
    gt = gt_set([(1, 7, A), (2, 7, B)])
    m = _metrics(gt, [det(1, 7, A, 0.9)])
    assert m["map50_95"] == pytest.approx(51 / 101, abs=1e-6)
    assert m["ar100"] == pytest.approx(0.5, abs=1e-6)
    assert by_name(m)["dog"]["ap"] is None  # no dog in the ground truth: not applicable, not 0


def test_wrong_class_is_a_miss_and_a_false_positive() -> None:
    gt = gt_set([(1, 7, A), (2, 9, B)])
    # the cat is boxed perfectly but called a dog, with a higher score than the real dog
    m = _metrics(gt, [det(1, 9, A, 0.9), det(2, 9, B, 0.8)])
    rows = by_name(m)
    assert rows["cat"]["ap"] == 0.0
    assert rows["dog"]["ap"] == pytest.approx(0.5, abs=1e-6)  # precision 1/2 at every recall
    assert m["map50_95"] == pytest.approx(0.25, abs=1e-6)


def test_duplicate_detection() -> None:
    gt = gt_set([(1, 7, A), (2, 7, B)])
    # TP, duplicate (FP), TP: precision 1 up to recall 0.5, then 2/3 up to recall 1
    dets = [det(1, 7, A, 0.9), det(1, 7, [11.0, 10.0, 50.0, 50.0], 0.8), det(2, 7, B, 0.7)]
    assert _metrics(gt, dets)["map50_95"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-6)
    # a duplicate ranked below every true positive costs nothing in AP
    assert _metrics(gt, [det(1, 7, A, 0.9), det(2, 7, B, 0.8), det(1, 7, A, 0.1)])["map50_95"] == 1.0


def test_crowd_region_absorbs_detections() -> None:
    region = [100.0, 100.0, 90.0, 90.0]
    inside = [110.0, 110.0, 30.0, 30.0]  # IoU with the region ~0.11, but it lies entirely inside it
    dets = [det(1, 7, inside, 0.95), det(1, 7, A, 0.9)]
    crowd = _metrics(gt_set([(1, 7, A), (1, 7, region)], crowd={1}), dets)
    assert crowd["map50_95"] == 1.0  # the detection on the crowd region is ignored
    assert by_name(crowd)["cat"]["n_gt"] == 1  # crowd regions are not objects to find
    plain = _metrics(gt_set([(1, 7, A), (1, 7, region)]), dets)
    # the same region as an ordinary box: an FP ranked first, then a TP; half the boxes found
    assert plain["map50_95"] == pytest.approx(0.5 * 51 / 101, abs=1e-6)


def test_zero_detections_score_zero_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    gt = gt_set([(1, 7, A), (2, 9, B)])
    with caplog.at_level(logging.WARNING):
        score = score_coco(gt, [])
    m = score.metrics
    assert m["map50_95"] == m["map50"] == m["ar100"] == 0.0
    assert m["map_small"] is None
    assert all(row["ap"] == 0.0 and row["n_detections"] == 0 for row in m["per_class"])
    assert "no detections" in caplog.text
    assert set(score.pr_curves) == {"cat", "dog"} and all((c == 0).all() for c in score.pr_curves.values())


def test_pr_curve_is_the_curve_behind_ap50() -> None:
    gt = gt_set([(1, 7, A), (2, 7, B)])
    score = score_coco(gt, [det(1, 7, A, 0.9)])
    curve = score.pr_curves["cat"]
    assert len(curve) == len(score.recall_points) == 101
    assert curve.mean() == pytest.approx(score.metrics["map50"], abs=1e-6)
    assert "dog" not in score.pr_curves  # no ground truth: no curve


def test_classes_sharing_a_name_keep_a_pr_curve_each() -> None:
    """Curves are keyed like every per-class figure (``class_keys``): neither a second ``car`` nor a
    class literally named ``car#3`` takes another class's curve."""
    cats = [{"id": 3, "name": "car"}, {"id": 5, "name": "car"}, {"id": 7, "name": "car#3"}]
    gt = {**gt_set([(1, 3, A), (2, 5, B), (3, 7, A)]), "categories": cats}
    score = score_coco(gt, [det(1, 3, A, 0.9), det(3, 7, A, 0.9)])
    assert set(score.pr_curves) == {"car#3#3", "car#5", "car#3"}
    assert score.pr_curves["car#3#3"].mean() == score.pr_curves["car#3"].mean() == pytest.approx(1.0)
    assert score.pr_curves["car#5"].mean() == 0.0
    assert [row["name"] for row in score.metrics["per_class"]] == ["car", "car", "car#3"]  # the names as they are


def test_ground_truth_is_not_modified() -> None:
    gt = gt_set([(1, 7, A)], crowd=set())
    before = repr(gt)
    _metrics(gt, [det(1, 7, A, 0.9)])
    independent_stats(gt, [det(1, 7, A, 0.9)])
    assert repr(gt) == before


CASES = {
    "perfect": (gt_set([(1, 7, A), (2, 9, B)]), [det(1, 7, A, 0.9), det(2, 9, B, 0.9)]),
    "missed": (gt_set([(1, 7, A), (2, 7, B)]), [det(1, 7, A, 0.9)]),
    "wrong_class": (gt_set([(1, 7, A), (2, 9, B)]), [det(1, 9, A, 0.9), det(2, 9, B, 0.8)]),
    "duplicate": (gt_set([(1, 7, A), (2, 7, B)]), [det(1, 7, A, 0.9), det(1, 7, A, 0.8), det(2, 7, B, 0.7)]),
    "crowd": (gt_set([(1, 7, A), (1, 7, [100, 100, 90, 90])], crowd={1}), [det(1, 7, [110, 110, 30, 30], 0.95)]),
    "loose": (gt_set([(1, 7, A)]), [det(1, 7, [14.0, 12.0, 50.0, 47.0], 0.6), det(1, 7, [30, 30, 50, 50], 0.5)]),
    "empty": (gt_set([(1, 7, A)]), []),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_independent_implementation_agrees_on_every_stat(case: str) -> None:
    gt, dets = CASES[case]
    ours = _metrics(gt, dets)
    theirs = independent_stats(gt, dets)
    for name in STAT_NAMES:
        if ours[name] is None:
            assert theirs[name] is None, name
        else:
            assert theirs[name] == pytest.approx(ours[name], abs=1e-6), name
