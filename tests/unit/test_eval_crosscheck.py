"""Cross-check: the three mAP50-95 numbers, tolerances, skip reasons and failure messages."""

from __future__ import annotations

from typing import Any

import pytest

from edgeproof.config import parse_params
from edgeproof.evaluation import crosscheck
from edgeproof.evaluation.coco import coco_evaluate
from edgeproof.evaluation.crosscheck import CrossCheckError, cross_check, raise_on_disagreement, ultralytics_scorer
from edgeproof.evaluation.params import EvaluateParams

GT = {
    "images": [{"id": 1, "width": 100, "height": 100, "file_name": "a.jpg"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "area": 900, "iscrowd": 0},
    ],
    "categories": [{"id": 1, "name": "thing"}],
}
DETS = [
    {"image_id": 1, "category_id": 1, "bbox": [12, 11, 40, 38], "score": 0.9},
    {"image_id": 1, "category_id": 1, "bbox": [58, 62, 30, 33], "score": 0.4},
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.7},
]


def params(**cross: Any) -> EvaluateParams:
    return parse_params({"evaluate": {"cross_check": cross}}).evaluate


def test_three_numbers_side_by_side_and_passing() -> None:
    ours = coco_evaluate(GT, DETS)["map50_95"]
    report = cross_check(ours, GT, DETS, params(), lambda: {"map50_95": ours - 0.015, "map50": 0.5})
    assert report["pycocotools"] == ours
    assert report["independent"] == pytest.approx(ours, abs=1e-6)
    assert report["ultralytics"] == pytest.approx(ours - 0.015, abs=1e-6)
    assert report["difference"]["ultralytics"] == pytest.approx(0.015, abs=1e-6)
    assert report["tolerance"] == {"independent": 0.001, "ultralytics": 0.02}
    assert report["passed"] is True and report["skipped"] == {}
    raise_on_disagreement(report)


def test_ultralytics_disagreement_fails_with_both_numbers() -> None:
    report = cross_check(0.5, GT, DETS, params(independent=False), lambda: {"map50_95": 0.45})
    assert report["passed"] is False
    with pytest.raises(CrossCheckError, match=r"pycocotools 0\.5000 vs ultralytics 0\.4500"):
        raise_on_disagreement(report)
    # a wider tolerance from params lets the same numbers pass
    assert cross_check(
        0.5, GT, DETS, params(independent=False, ultralytics_tolerance=0.06), lambda: {"map50_95": 0.45}
    )["passed"]


def test_independent_disagreement_is_caught() -> None:
    # pretend pycocotools said something else than what the detections really score
    wrong = coco_evaluate(GT, DETS)["map50_95"] + 0.002
    report = cross_check(wrong, GT, DETS, params(), "off in this test")
    assert report["passed"] is False
    with pytest.raises(CrossCheckError, match="independent"):
        raise_on_disagreement(report)


def test_skips_are_null_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    report = cross_check(0.5, GT, DETS, params(independent=False), "ultralytics is not installed")
    assert report["independent"] is None and report["ultralytics"] is None
    assert report["skipped"]["independent"].startswith("disabled")
    assert report["skipped"]["ultralytics"] == "ultralytics is not installed"
    assert report["passed"] is True
    monkeypatch.setattr(crosscheck, "independent_available", lambda: False)
    auto = cross_check(0.5, GT, DETS, params(), "x")
    assert auto["independent"] is None and "faster-coco-eval" in auto["skipped"]["independent"]
    with pytest.raises(RuntimeError, match="faster-coco-eval"):
        cross_check(0.5, GT, DETS, params(independent=True), "x")


def test_ultralytics_scorer_modes(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    assert "disabled" in ultralytics_scorer(tmp_path, tmp_path, params(ultralytics=False), 64)
    monkeypatch.setattr(crosscheck.importlib.util, "find_spec", lambda name: None)
    assert "not installed" in ultralytics_scorer(tmp_path, tmp_path, params(ultralytics="auto"), 64)
    with pytest.raises(RuntimeError, match="ultralytics is true"):
        ultralytics_scorer(tmp_path, tmp_path, params(ultralytics=True), 64)
    monkeypatch.setattr(crosscheck.importlib.util, "find_spec", lambda name: object())
    assert callable(ultralytics_scorer(tmp_path, tmp_path, params(ultralytics="auto"), 64))


def test_a_broken_ultralytics_install_is_skipped_in_auto_mode() -> None:
    def broken() -> dict[str, float]:
        raise ModuleNotFoundError("No module named 'torch'")

    report = cross_check(0.5, GT, DETS, params(independent=False), broken)
    assert report["ultralytics"] is None and "No module named 'torch'" in report["skipped"]["ultralytics"]
    with pytest.raises(RuntimeError, match="cannot be imported"):
        cross_check(0.5, GT, DETS, params(independent=False, ultralytics=True), broken)
