"""COCO fields that decide what pycocotools counts: ``area``, ``iscrowd`` and the val file's categories.

Each of these, passed through, changed the mAP silently (issue 18): the tests score the prepared
ground truth with the evaluation's own pycocotools call and show the figure the source file alone
would have given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from edgeproof.evaluation.coco import score_coco
from tests.data.builders import clean_coco
from tests.data.test_coco import SRC, coco_params


def _dataset(repo: Path, edit_val: Any = None, edit_train: Any = None) -> dict[str, Path]:
    """``clean_coco`` with 2 val images (4 boxes, all category 1) and optional edits of either file."""
    paths = clean_coco(repo / SRC, n_val=2)
    for split, edit in (("train", edit_train), ("val", edit_val)):
        data = json.loads(paths[split].read_text())
        if split == "val":
            for ann in data["annotations"]:
                ann["category_id"] = 1
        if edit is not None:
            edit(data)
        paths[split].write_text(json.dumps(data))
    return paths


def _params(**extra: Any) -> Any:
    return coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}, **extra)


def _found_only(gt: dict[str, Any], wanted: set[int]) -> list[dict[str, Any]]:
    """Perfect detections of the annotations whose (1-based) position is in ``wanted``."""
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for n, a in enumerate(gt["annotations"], 1)
        if n in wanted
    ]


def _bad_area(value: float) -> Any:
    def edit(data: dict[str, Any]) -> None:
        for ann in data["annotations"][2:]:
            ann["area"] = value

    return edit


@pytest.mark.parametrize("value", [-1.0, 1e11])
def test_bad_area_no_longer_doubles_the_map(tmp_path, value):
    repo = tmp_path / "repo"
    paths = _dataset(repo, edit_val=_bad_area(value))
    source_gt = json.loads(paths["val"].read_text())
    found = _found_only(source_gt, {1, 2})  # the model found the two boxes with a sound area
    # the defect: scored on the file as given, the two missed boxes vanish and mAP50 is 1.0
    assert score_coco(source_gt, found).metrics["map50"] == pytest.approx(1.0)

    report = prepare(_params(), repo, tmp_path / "out")
    assert report["problems"]["area_invalid"] == 2
    assert any("area" in e and "annotation id 3" in e for e in report["problem_examples"]["area_invalid"])
    gt = json.loads((tmp_path / "out/annotations/val.json").read_text())
    assert [a["area"] for a in gt["annotations"][2:]] == [a["bbox"][2] * a["bbox"][3] for a in gt["annotations"][2:]]
    assert score_coco(gt, _found_only(gt, {1, 2})).metrics["map50"] == pytest.approx(0.505, abs=0.001)


@pytest.mark.parametrize("value", [-1, 0, 1e11, "12", True, float("nan"), float("inf"), 1e-6])
def test_bad_area_fails_strict_naming_file_and_annotation(tmp_path, value):
    def edit(data: dict[str, Any]) -> None:
        data["annotations"][1]["area"] = value

    repo = tmp_path / "repo"
    _dataset(repo, edit_val=edit)
    with pytest.raises(DatasetError, match=r"area_invalid") as err:
        prepare(_params(strict=True), repo, tmp_path / "out")
    assert "instances_val.json: annotation id 2" in str(err.value)


def test_plausible_or_absent_area_is_kept(tmp_path):
    def edit(data: dict[str, Any]) -> None:
        box = data["annotations"][0]["bbox"]
        data["annotations"][0]["area"] = box[2] * box[3] * 1.04  # polygon on the box edge, rounded
        del data["annotations"][1]["area"]
        data["annotations"][3]["area"] = None  # null: unknown, as absent
        data["annotations"][2]["area"] = 3.0  # a thin diagonal outline: small but plausible

    repo = tmp_path / "repo"
    _dataset(repo, edit_val=edit)
    report = prepare(_params(strict=True), repo, tmp_path / "out")
    assert report["problems_total"] == 0
    gt = json.loads((tmp_path / "out/annotations/val.json").read_text())
    b0, b1 = gt["annotations"][0]["bbox"], gt["annotations"][1]["bbox"]
    assert gt["annotations"][0]["area"] == pytest.approx(b0[2] * b0[3] * 1.04, abs=0.001)
    assert gt["annotations"][1]["area"] == b1[2] * b1[3]
    assert gt["annotations"][2]["area"] == 3.0
    b3 = gt["annotations"][3]["bbox"]
    assert gt["annotations"][3]["area"] == b3[2] * b3[3]


def test_string_iscrowd_is_a_problem_not_a_crowd(tmp_path):
    def edit(data: dict[str, Any]) -> None:
        for ann in data["annotations"]:
            ann["iscrowd"] = "0"

    repo = tmp_path / "repo"
    _dataset(repo, edit_val=edit, edit_train=edit)
    with pytest.raises(DatasetError, match=r"iscrowd_invalid"):
        prepare(_params(strict=True), repo, tmp_path / "strict")
    out = tmp_path / "out"
    report = prepare(_params(), repo, out)
    assert report["problems"]["iscrowd_invalid"] == 16  # 6 train + 2 val images, 2 boxes each
    assert report["splits"]["val"]["crowd_boxes"] == 0 and report["splits"]["train"]["crowd_boxes"] == 0
    assert all((out / "labels/train" / f"{p.stem}.txt").read_text().strip() for p in (out / "images/train").iterdir())
    gt = json.loads((out / "annotations/val.json").read_text())
    assert {a["iscrowd"] for a in gt["annotations"]} == {0}
    assert score_coco(gt, _found_only(gt, {1, 2})).metrics["map50"] == pytest.approx(0.505, abs=0.001)


@pytest.mark.parametrize("value", [True, 2, -1, 1.0, "1", None])
def test_iscrowd_must_be_integer_0_or_1(tmp_path, value):
    def edit(data: dict[str, Any]) -> None:
        data["annotations"][3]["iscrowd"] = value

    repo = tmp_path / "repo"
    _dataset(repo, edit_val=edit)
    with pytest.raises(DatasetError, match=r"iscrowd_invalid") as err:
        prepare(_params(strict=True), repo, tmp_path / "out")
    assert "instances_val.json: annotation id 4" in str(err.value)


def test_integer_crowd_still_counts_as_crowd(tmp_path):
    def edit(data: dict[str, Any]) -> None:
        data["annotations"][3]["iscrowd"] = 1

    repo = tmp_path / "repo"
    _dataset(repo, edit_val=edit)
    report = prepare(_params(strict=True), repo, tmp_path / "out")
    assert report["splits"]["val"]["crowd_boxes"] == 1


def _relabel(data: dict[str, Any]) -> None:
    """val calls id 1 "car" and id 3 "person": the train file's names swapped."""
    data["categories"] = [{"id": 1, "name": "car"}, {"id": 3, "name": "person"}, {"id": 90, "name": "toothbrush"}]


def test_val_categories_relabelled_fail_strict(tmp_path):
    repo = tmp_path / "repo"
    _dataset(repo, edit_val=_relabel)
    with pytest.raises(DatasetError, match=r"category_mismatch") as err:
        prepare(_params(strict=True), repo, tmp_path / "out")
    assert "instances_val.json: category id 1 is 'car', train has id 1 as 'person'" in str(err.value)


def test_val_categories_relabelled_are_matched_by_name(tmp_path):
    repo = tmp_path / "repo"
    _dataset(repo, edit_val=_relabel)
    out = tmp_path / "out"
    report = prepare(_params(), repo, out)
    assert report["problems"]["category_mismatch"] == 2
    gt = json.loads((out / "annotations/val.json").read_text())
    # every val box was id 1, which val calls "car": train's "car" is id 3
    assert {a["category_id"] for a in gt["annotations"]} == {3}
    assert report["splits"]["val"]["classes"]["car"] == 4 and report["splits"]["val"]["classes"]["person"] == 0


def test_val_category_unknown_to_train_is_dropped(tmp_path):
    def edit(data: dict[str, Any]) -> None:
        data["categories"] = [{"id": 1, "name": "bicycle"}]

    repo = tmp_path / "repo"
    _dataset(repo, edit_val=edit)
    with pytest.raises(DatasetError, match="empty_split") as err:  # every val box dropped: nothing to score
        prepare(_params(), repo, tmp_path / "out")
    report = err.value.report
    assert report is not None
    assert report["problems"]["category_mismatch"] == 1 and report["problems"]["unknown_category"] == 4


def test_val_with_a_subset_of_train_categories_is_fine(tmp_path):
    def edit(data: dict[str, Any]) -> None:
        data["categories"] = [{"id": 1, "name": "person"}]

    repo = tmp_path / "repo"
    _dataset(repo, edit_val=edit)
    assert prepare(_params(strict=True), repo, tmp_path / "out")["problems_total"] == 0
