"""YOLO source: data.yaml resolution, label rows (boxes and polygons), EXIF frames and problems."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from edgeproof.config import parse_params
from edgeproof.data.canonical import load_meta
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from edgeproof.data.yolo import label_path
from tests.data.builders import draw, save, stored_for_orientation_6, tree_state, write_yolo_image, yolo_line
from tests.data.test_coco import bright_box

SRC = "data/sources/shapes"


def yolo_params(**extra):
    return parse_params({"data": {"source": "yolo", "yolo": {"data_yaml": f"{SRC}/data.yaml"}, **extra}}).data


@pytest.fixture
def yolo_repo(tmp_path):
    repo = tmp_path / "repo"
    root = repo / SRC
    (root).mkdir(parents=True)
    (root / "data.yaml").write_text(
        yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val", "names": {0: "ring", 1: "box"}})
    )
    write_yolo_image(root, "train", "a", draw(80, 60, [(10, 10, 20, 20)]), [yolo_line(1, (10, 10, 20, 20), 80, 60)])
    polygon = "0 0.5 0.5 0.75 0.5 0.75 0.9 0.5 0.9"  # a box from (40, 30) to (60, 54) in 80x60
    write_yolo_image(root, "train", "b", draw(80, 60, [(40, 30, 20, 24)]), [polygon], fmt="PNG")
    write_yolo_image(root, "train", "c", draw(80, 60), None)  # no label file: a background image
    bad_rows = [
        "5 0.5 0.5 0.1 0.1",
        "0 0.5 nope 0.1 0.1",
        "0 0.5 0.5 0.0 0.1",
        "1 0.5 0.5 0.2 0.2",
        "1 0.5 0.5 0.2 0.2",
    ]
    write_yolo_image(root, "train", "d", draw(80, 60, [(32, 24, 16, 12)]), bad_rows)
    shown = draw(60, 90, [(10, 50, 30, 20)])
    write_yolo_image(
        root, "val", "r", stored_for_orientation_6(shown), [yolo_line(0, (10, 50, 30, 20), 60, 90)], orientation=6
    )
    write_yolo_image(root, "val", "v", draw(80, 60, [(0, 0, 30, 30)]), [yolo_line(0, (-5, -5, 35, 35), 80, 60)])
    return repo


def test_yolo_dataset(yolo_repo, tmp_path):
    before = tree_state(yolo_repo / SRC)
    report = prepare(yolo_params(), yolo_repo, tmp_path / "out")
    assert tree_state(yolo_repo / SRC) == before
    assert not list((yolo_repo / SRC).rglob("*.cache"))
    out = tmp_path / "out"
    meta = load_meta(out)
    assert meta.names == ["ring", "box"] and meta.category_ids == [1, 2]  # class index + 1
    train = json.loads((out / "annotations/train.json").read_text())
    by_file = {im["file_name"]: im["id"] for im in train["images"]}
    boxes = {
        f: [(a["category_id"], a["bbox"]) for a in train["annotations"] if a["image_id"] == i]
        for f, i in by_file.items()
    }
    assert boxes["a.jpg"] == [(2, [10.0, 10.0, 20.0, 20.0])]
    assert boxes["b.png"] == [(1, [40.0, 30.0, 20.0, 24.0])]  # polygon -> its box
    assert boxes["c.jpg"] == []
    assert boxes["d.jpg"] == [(2, [32.0, 24.0, 16.0, 12.0])]  # duplicate row dropped
    assert (
        report["problems"]["unknown_category"] == 1
        and "labels/train/d.txt:1" in report["problem_examples"]["unknown_category"][0]
    )
    assert report["problems"]["box_invalid"] == 1 and report["problems"]["box_degenerate"] == 1
    assert report["problem_examples"]["duplicate_label_row"] == [
        f"{SRC}/labels/train/d.txt:5: '1 0.5 0.5 0.2 0.2' repeats an earlier row"
    ]
    assert report["problems"]["box_clipped"] == 1  # v's box starts 5 px outside
    assert report["selection"]["images_without_label_file"] == 1
    val = json.loads((out / "annotations/val.json").read_text())
    r = next(im for im in val["images"] if im["file_name"] == "r.png")
    assert (r["width"], r["height"]) == (60, 90)
    (r_box,) = [a["bbox"] for a in val["annotations"] if a["image_id"] == r["id"]]
    assert np.allclose(r_box, [10, 50, 30, 20], atol=0.01)
    assert np.allclose(r_box, bright_box(out / "images/val/r.png"), atol=1)


def test_txt_lists_without_val_and_path_escape(yolo_repo, tmp_path):
    root = yolo_repo / SRC
    save(yolo_repo / "data/sources/secret.jpg", draw(40, 40))
    lines = ["./images/train/a.jpg", "images/train/b.png", "./images/train/a.jpg", "../secret.jpg", "images/val/v.jpg"]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "train.txt", "names": ["ring", "box"]}))
    report = prepare(yolo_params(), yolo_repo, tmp_path / "out")
    assert report["problems"]["duplicate_file"] == 1 and report["problems"]["path_escape"] == 1
    assert report["splits"]["train"]["images"] + report["splits"]["val"]["images"] == 3
    assert report["splits"]["val"]["images"] == 1  # round(3 x 0.2) = 1


def test_names_must_be_contiguous(yolo_repo, tmp_path):
    (yolo_repo / SRC / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": {0: "a", 2: "b"}}))
    with pytest.raises(ValueError, match=r"data.yaml: names must be indexed 0..n-1"):
        prepare(yolo_params(), yolo_repo, tmp_path / "out")


def test_label_path_follows_ultralytics(tmp_path):
    assert label_path(tmp_path / "ds/images/train/x.y.jpg") == tmp_path / "ds/labels/train/x.y.txt"
    assert label_path(tmp_path / "images/a/images/b.png") == tmp_path / "images/a/labels/b.txt"


def test_a_split_without_any_label_file_is_a_problem_naming_the_folder(yolo_repo, tmp_path):
    """Labels named img_1.txt for IMG_1.jpg (a case-insensitive export): no image finds its labels."""
    root = yolo_repo / SRC
    for label in (root / "labels/val").iterdir():
        label.rename(label.with_name(label.name.upper()))
    with pytest.raises(DatasetError, match="empty_split") as err:  # val is left without a box to score
        prepare(yolo_params(), yolo_repo, tmp_path / "out")
    report = err.value.report
    assert report is not None and report["problems"]["labels_not_found"] == 1  # val only: train has its labels
    (example,) = report["problem_examples"]["labels_not_found"]
    assert example.startswith("val: none of its 2 images") and f"{SRC}/labels/val" in example
    (empty,) = report["problem_examples"]["empty_split"]
    assert empty.startswith("val: 2 image(s) but no box to train on or score; problems that drop boxes")
    assert "labels_not_found x1" in empty
    assert not (tmp_path / "out" / "meta.json").exists()


def test_pixel_coordinates_taken_for_fractions_leave_no_box_and_fail(yolo_repo, tmp_path):
    """Every row in pixels (cx 20 in an 80 px image): each box lands outside its image, none is left."""
    root = yolo_repo / SRC
    for label in (root / "labels").rglob("*.txt"):
        label.write_text("0 20 20 10 10\n")
    with pytest.raises(DatasetError, match="empty_split") as err:
        prepare(yolo_params(), yolo_repo, tmp_path / "out")
    text = str(err.value)
    assert "train: 4 image(s) but no box to train on or score; problems that drop boxes" in text
    assert "box_outside x5" in text  # the one row of each of the five label files
    assert "val: 2 image(s) but no box" in text
    assert err.value.report is not None and err.value.report["splits"]["val"]["boxes"] == 0


def test_a_name_given_to_two_classes_is_a_problem(yolo_repo, tmp_path):
    data = {"path": ".", "train": "images/train", "val": "images/val", "names": ["ring", "ring"]}
    (yolo_repo / SRC / "data.yaml").write_text(yaml.safe_dump(data))
    report = prepare(yolo_params(), yolo_repo, tmp_path / "out")
    assert report["problem_examples"]["duplicate_category_name"] == [f"{SRC}/data.yaml: 'ring' names categories [1, 2]"]


def test_names_differing_only_in_case_are_a_problem(yolo_repo, tmp_path):
    data = {"path": ".", "train": "images/train", "val": "images/val", "names": ["ring", "RING"]}
    (yolo_repo / SRC / "data.yaml").write_text(yaml.safe_dump(data))
    report = prepare(yolo_params(), yolo_repo, tmp_path / "out")
    assert report["problem_examples"]["duplicate_category_name"] == [
        f"{SRC}/data.yaml: 'ring', 'RING' differ only in case or spacing: kept as separate classes"
    ]


def test_val_naming_the_train_folder_says_so_in_the_empty_split(yolo_repo, tmp_path):
    data = {"path": ".", "train": "images/train", "val": "images/train", "names": {0: "ring", 1: "box"}}
    (yolo_repo / SRC / "data.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(DatasetError, match="split_overlap") as err:
        prepare(yolo_params(), yolo_repo, tmp_path / "out")
    assert err.value.report is not None
    assert err.value.report["problem_examples"]["empty_split"] == [
        "train: 0 image(s) selected, all 4 were val images too (split_overlap): do train and val name the same images?"
    ]


def test_a_name_differing_only_in_case_that_classes_leaves_out_is_reported_dropped(yolo_repo, tmp_path):
    """Diff review finding 5: ``classes: [ring]`` drops the boxes of ``RING``, yet the problem said the two were
    "kept as separate classes" (the check ran before the class filter)."""
    data = {"path": ".", "train": "images/train", "val": "images/val", "names": ["ring", "RING"]}
    (yolo_repo / SRC / "data.yaml").write_text(yaml.safe_dump(data))
    params = parse_params({"data": {"source": "yolo", "yolo": {"data_yaml": f"{SRC}/data.yaml", "classes": ["ring"]}}})
    report = prepare(params.data, yolo_repo, tmp_path / "out")
    assert report["problem_examples"]["duplicate_category_name"] == [
        f"{SRC}/data.yaml: 'ring', 'RING' differ only in case or spacing: the 2 box(es) named 'RING' dropped "
        "(not in classes)"
    ]
    assert report["selection"]["boxes_other_classes"] == 2


def test_an_image_in_both_splits_reports_its_label_rows_once(yolo_repo, tmp_path):
    """d.txt's four bad rows were counted twice when val listed d.jpg too (one report per listing)."""
    root = yolo_repo / SRC
    (root / "val.txt").write_text("images/val/r.png\nimages/val/v.jpg\nimages/train/d.jpg\n")
    data = {"path": ".", "train": "images/train", "val": "val.txt", "names": {0: "ring", 1: "box"}}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    report = prepare(yolo_params(), yolo_repo, tmp_path / "out")
    assert report["problems"]["split_overlap"] >= 1
    assert report["problems"]["box_invalid"] == 1 and report["problems"]["unknown_category"] == 1
    assert report["problems"]["box_degenerate"] == 1 and report["problems"]["duplicate_label_row"] == 1


def test_a_row_with_a_confidence_column_says_what_a_label_row_is(yolo_repo, tmp_path):
    labels = yolo_repo / SRC / "labels/train/a.txt"
    labels.write_text(labels.read_text().strip() + " 0.87\n")  # class cx cy w h conf: a predictions file
    report = prepare(yolo_params(), yolo_repo, tmp_path / "out")
    (a_row,) = [e for e in report["problem_examples"]["box_invalid"] if "a.txt" in e]
    assert "6 values: a row is `class cx cy w h` (5 values)" in a_row and "a confidence" in a_row


def test_a_clipped_or_outside_box_names_its_label_file_and_line(yolo_repo, tmp_path):
    """contact11 finding 10: the row ``0 1.2 0.5 0.2 0.2`` was reported as the image and a pixel box, so the
    row to fix had to be found by turning pixels back into fractions."""
    labels = yolo_repo / SRC / "labels/train/a.txt"
    labels.write_text(labels.read_text().strip() + "\n\n1 1.2 0.5 0.2 0.2\n")  # line 3: wholly right of the image
    report = prepare(yolo_params(), yolo_repo, tmp_path / "out")
    assert report["problem_examples"]["box_outside"] == [
        f"{SRC}/labels/train/a.txt:3: [88.0, 24.0, 16.0, 12.0] px in 80x60 (image {SRC}/images/train/a.jpg)"
    ]
    (clipped,) = report["problem_examples"]["box_clipped"]  # v's box starts 5 px outside
    assert clipped.startswith(f"{SRC}/labels/val/v.txt:1: [-5.0, -5.0, 35.0, 35.0] px in 80x60 (image ")
