"""Cross-check: finished results compared like with like, tolerances, skip reasons and failure messages."""

from __future__ import annotations

from typing import Any

import pytest

from edgeproof.config import parse_params
from edgeproof.evaluation import external
from edgeproof.evaluation.coco import score_coco
from edgeproof.evaluation.crosscheck import CrossCheckError, Finished, cross_check, raise_on_disagreement
from edgeproof.evaluation.independent import independent_stats
from edgeproof.evaluation.params import EvaluateParams

GT = {
    "images": [
        {"id": 1, "width": 100, "height": 100, "file_name": "a.jpg"},
        {"id": 2, "width": 100, "height": 100, "file_name": "b.jpg"},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "area": 900, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 2, "bbox": [20, 30, 30, 20], "area": 600, "iscrowd": 0},
    ],
    "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}],
}
DETS = [
    {"image_id": 1, "category_id": 1, "bbox": [12, 11, 40, 38], "score": 0.9},
    {"image_id": 1, "category_id": 1, "bbox": [58, 62, 30, 33], "score": 0.4},
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.7},
    {"image_id": 2, "category_id": 2, "bbox": [21, 29, 30, 21], "score": 0.8},
]
OURS = score_coco(GT, DETS).metrics["map50_95"]


def params(**cross: Any) -> EvaluateParams:
    return parse_params({"evaluate": {"cross_check": cross}}).evaluate


def theirs(dets: list[dict[str, Any]], own: float = 0.31) -> Finished:
    return Finished({"detections": dets, "own_map50_95": own, "own_map50": 0.6, "images_per_s": 12.5})


def independent(value: float | None = None) -> Finished:
    return Finished({"map50_95": OURS if value is None else value})


def test_identical_pipelines_pass_even_when_ultralytics_own_ap_differs_a_lot() -> None:
    report = cross_check(OURS, GT, DETS, params().cross_check, independent(), theirs(DETS, own=OURS - 0.1))
    assert report["pycocotools"] == OURS and report["ultralytics"] == pytest.approx(OURS, abs=1e-6)
    assert report["difference"] == {"independent": 0.0, "ultralytics": 0.0}
    assert report["tolerance"] == {"independent": 0.001, "ultralytics": 0.001}
    assert report["detection_agreement"]["share"] == 1.0 and report["detection_agreement"]["matched"] == 4
    own = report["ultralytics_own_ap"]
    assert own["map50_95"] == pytest.approx(OURS - 0.1) and own["difference_vs_pycocotools"] == pytest.approx(0.1)
    assert "formula" in own["note"] or "interpolat" in own["note"]
    assert report["passed"] is True and report["skipped"] == {} and "differing_images" not in report
    assert report["ultralytics_images_per_s"] == 12.5
    raise_on_disagreement(report)


def test_the_real_independent_scorer_agrees() -> None:
    done = Finished(independent_stats(GT, DETS))
    assert cross_check(OURS, GT, DETS, params().cross_check, done, Finished.skip("off"))["passed"]


def test_no_map_to_check_is_never_a_pass() -> None:
    """Without ground truth pycocotools gives no mAP: two nulls that 'agree' check nothing."""
    report = cross_check(None, GT, DETS, params().cross_check, Finished.skip("off"), Finished.skip("off"))
    assert report["pycocotools"] is None and report["passed"] is False


def _shifted(dets: list[dict[str, Any]], dx: float) -> list[dict[str, Any]]:
    return [{**d, "bbox": [d["bbox"][0] + dx, *d["bbox"][1:]]} for d in dets]


def check(ours: list[dict[str, Any]], their: list[dict[str, Any]], **cross: Any) -> dict[str, Any]:
    """Both pipelines' detections as the evaluation sees them: ours scored by pycocotools (and re-scored)."""
    m = score_coco(GT, ours).metrics["map50_95"]
    return cross_check(m, GT, ours, params(**cross).cross_check, Finished({"map50_95": m}), theirs(their))


def test_shifted_boxes_fail_naming_images_and_the_letterbox() -> None:
    report = check(_shifted(DETS, 4.0), DETS)
    assert report["passed"] is False and report["detection_agreement"]["matched"] < 4
    with pytest.raises(CrossCheckError) as err:
        raise_on_disagreement(report)
    text = str(err.value)
    assert "edgeproof's detections vs ultralytics' detections" in text
    assert "a.jpg (id 1" in text and "letterbox" in text and "+4.0" in text


def test_swapped_category_ids_fail_naming_the_ids() -> None:
    swapped = [{**d, "category_id": 3 - d["category_id"]} for d in DETS]
    report = check(DETS, swapped)
    assert report["passed"] is False and report["detection_agreement"]["matched"] == 0
    with pytest.raises(CrossCheckError, match="category ids"):
        raise_on_disagreement(report)


def test_scaled_boxes_name_the_scale() -> None:
    scaled = [{**d, "bbox": [v * 1.1 for v in d["bbox"]]} for d in DETS]
    report = check(DETS, scaled)
    assert not report["passed"] and "scale" in report["differing_images"]["likely_cause"]


def test_boxes_a_fraction_apart_with_the_same_scores_are_not_blamed_on_the_pixels() -> None:
    """Findings review, 4: on a non-square model both pipelines' scores were identical and x differed by ~0.1 px
    (ultralytics maps boxes back with one gain), yet the cause read 'the pixels fed to the model differ'."""
    from edgeproof.evaluation.agreement import likely_cause

    nudged = [{**d, "bbox": [d["bbox"][0] + 0.2, d["bbox"][1], d["bbox"][2] * 1.004, d["bbox"][3]]} for d in DETS]
    cause = likely_cause(DETS, nudged)
    assert cause.startswith("same scores (median difference 0.0000), boxes slightly apart (median corner difference")
    assert "widths 0.9960x ultralytics'" in cause and "non-square input" in cause
    rescored = [{**d, "score": d["score"] - 0.05} for d in nudged]
    assert likely_cause(DETS, rescored).startswith("same boxes, different scores (median difference 0.0500)")


def test_tolerance_comes_from_params() -> None:
    shifted = _shifted(DETS, 1.0)
    diff = abs(score_coco(GT, shifted).metrics["map50_95"] - OURS)
    assert diff > 0.001
    assert not check(DETS, shifted)["passed"]
    assert check(DETS, shifted, ultralytics_tolerance=diff + 0.01)["passed"]


def test_independent_disagreement_is_caught() -> None:
    report = cross_check(OURS, GT, DETS, params().cross_check, independent(OURS + 0.002), Finished.skip("off"))
    assert report["passed"] is False
    with pytest.raises(CrossCheckError, match="faster-coco-eval"):
        raise_on_disagreement(report)


def test_skips_are_null_with_a_reason() -> None:
    report = cross_check(0.5, GT, DETS, params().cross_check, Finished.skip("disabled"), Finished.skip("no ul"))
    assert report["independent"] is None and report["ultralytics"] is None
    assert report["detection_agreement"] is None and report["ultralytics_own_ap"] is None
    assert report["skipped"] == {"independent": "disabled", "ultralytics": "no ul"}
    assert report["passed"] is True


def test_skip_decisions(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    assert "disabled" in external.run_ultralytics(tmp_path, tmp_path, params(ultralytics=False), 64, None).skipped
    monkeypatch.setattr(external.importlib.util, "find_spec", lambda name: None)
    assert "not installed" in external.run_ultralytics(tmp_path, tmp_path, params(ultralytics="auto"), 64, None).skipped
    with pytest.raises(RuntimeError, match="ultralytics is true"):
        external.run_ultralytics(tmp_path, tmp_path, params(ultralytics=True), 64, None)
    monkeypatch.setattr(external, "independent_available", lambda: False)
    assert "faster-coco-eval" in external.independent_skip(params())
    with pytest.raises(RuntimeError, match="faster-coco-eval"):
        external.independent_skip(params(independent=True))
    assert external.independent_skip(params(independent=False)).startswith("disabled")


def test_the_validator_is_handed_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # the evaluation package does not reach up into training for ultralytics: the caller gives it
    monkeypatch.setattr(external.importlib.util, "find_spec", lambda name: object())  # "installed"
    assert "no ultralytics validator" in external.run_ultralytics(tmp_path, tmp_path, params(), 64, None).skipped
    with pytest.raises(RuntimeError, match="no ultralytics validator"):
        external.run_ultralytics(tmp_path, tmp_path, params(ultralytics=True), 64, None)
    seen: dict[str, Any] = {}

    def validator(model: Any, data_root: Any, **kw: Any) -> dict[str, Any]:
        seen.update(kw, model=model)
        return {"detections": []}

    got = external.run_ultralytics(tmp_path / "m.onnx", tmp_path, params(ultralytics=True), 64, validator)
    assert got.value == {"detections": []} and seen["model"] == tmp_path / "m.onnx"
    assert seen["imgsz"] == 64 and seen["conf"] == params().conf and seen["max_det"] == params().max_det


def test_single_label_map_detections_are_not_compared_with_ultralytics_multi_label(tmp_path: Any) -> None:
    single = parse_params({"evaluate": {"multi_label": False}}).evaluate
    assert "multi_label is false" in external.run_ultralytics(tmp_path, tmp_path, single, 64, None).skipped
    required = parse_params({"evaluate": {"multi_label": False, "cross_check": {"ultralytics": True}}}).evaluate
    with pytest.raises(RuntimeError, match="multi_label is false"):
        external.ultralytics_skip(required)
