"""A class without a single box is a problem, whatever the source (``category_without_boxes``), and a
val split that is a seeded share of train says so in ``selection.val_from``."""

from __future__ import annotations

import json

import pytest
import yaml

from edgeproof.config import parse_params
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from tests.data.builders import (
    coco_ann,
    coco_image,
    draw,
    save,
    write_coco,
    write_split_files,
    write_voc,
    write_yolo_image,
    yolo_line,
)

SRC = "data/sources/ds"
BOXES = [(8, 10, 30, 24), (50, 30, 20, 20)]


def _coco(repo, categories, val: bool = True) -> dict:
    """Roboflow's COCO export: category 0 a placeholder no box uses, the real classes 1 and 2, in
    ``train/`` and ``valid/``, each folder with its own ``_annotations.coco.json``."""
    for split, n in (("train", 4), ("valid", 2)):
        images, anns = [], []
        for i in range(n):
            name = f"{split}{i}.jpg"
            save(repo / SRC / split / name, draw(96, 72, BOXES, seed=(split == "valid") * 100 + i))
            coco_image(images, i + 1, name, 96, 72)
            for k, box in enumerate(BOXES):
                coco_ann(anns, i + 1, k + 1, box)
        write_coco(repo / SRC / split / "_annotations.coco.json", images, anns, categories)
    section = {"images": f"{SRC}/train", "annotations": f"{SRC}/train/_annotations.coco.json"}
    if val:
        section |= {"val_images": f"{SRC}/valid", "val_annotations": f"{SRC}/valid/_annotations.coco.json"}
    return section


ROBOFLOW_CATEGORIES = [
    {"id": 0, "name": "shapes-xyz", "supercategory": "none"},
    {"id": 1, "name": "ring", "supercategory": "shapes-xyz"},
    {"id": 2, "name": "box", "supercategory": "shapes-xyz"},
]


def _prepare(repo, out, source: str, section: dict, strict: bool = False):
    params = parse_params({"data": {"source": source, "strict": strict, source: section}}).data
    return prepare(params, repo, out)


def test_a_coco_category_without_a_box_fails_strict_and_classes_leaves_it_out(tmp_path):
    repo = tmp_path / "repo"
    section = _coco(repo, ROBOFLOW_CATEGORIES)
    with pytest.raises(DatasetError, match="category_without_boxes") as err:
        _prepare(repo, tmp_path / "strict", "coco", section, strict=True)
    report = err.value.report
    assert report["problems"]["category_without_boxes"] == report["problems_total"] == 1
    example = (
        f"{SRC}/train/_annotations.coco.json: category id 0 'shapes-xyz': no box in the train or val images; "
        'to leave it out, list the classes with boxes in data.coco.classes: ["ring", "box"]'
    )
    assert report["problem_examples"]["category_without_boxes"] == [example]
    assert example in str(err.value)  # the strict failure's message names the file too
    report = _prepare(repo, tmp_path / "out", "coco", {**section, "classes": ["ring", "box"]}, strict=True)
    assert report["classes"] == ["ring", "box"] and report["problems_total"] == 0
    meta = json.loads((tmp_path / "out" / "annotations" / "train.json").read_text())
    assert [c["name"] for c in meta["categories"]] == ["ring", "box"]


def test_a_yolo_name_without_a_box_is_a_problem_naming_its_index(tmp_path):
    repo = tmp_path / "repo"
    root = repo / SRC
    for split, stems in (("train", "ab"), ("val", "v")):
        for stem in stems:
            lines = [yolo_line(k, box, 96, 72) for k, box in enumerate(BOXES)]  # classes 0 and 1; never 2
            write_yolo_image(root, split, stem, draw(96, 72, BOXES, seed=ord(stem)), lines)
    names = {"train": "images/train", "val": "images/val", "names": ["ring", "box", "unused"]}
    (root / "data.yaml").write_text(yaml.safe_dump(names))
    report = _prepare(repo, tmp_path / "out", "yolo", {"data_yaml": f"{SRC}/data.yaml"})
    assert report["problem_examples"]["category_without_boxes"] == [
        f"{SRC}/data.yaml: class 2 'unused': no box in the train or val images; to leave it out, "
        'list the classes with boxes in data.yolo.classes: ["ring", "box"]'
    ]


VOC_ANN = f"{SRC}/Annotations"
TO_LEAVE_OUT = 'to leave it out, list the classes with boxes in data.voc.classes: ["dog"]'


def test_a_voc_class_with_only_difficult_objects_names_the_file_that_holds_them(tmp_path):
    """VOC's classes are the union of its object names: a class without boxes was named the Annotations
    folder, where no class is defined, so nobody could tell which file to look at. It is the file whose
    objects named it, all difficult: ``difficult: ignore`` makes them crowd regions, never trained on,
    ``drop`` drops them; with ``data.voc.classes`` set, that key defines the class."""
    repo = tmp_path / "repo"
    root = repo / SRC
    write_voc(root, "a", draw(80, 60, BOXES[:1]), [("dog", (9, 11, 38, 34), 0), ("cat", (51, 31, 70, 50), 1)])
    write_voc(root, "b", draw(80, 60, BOXES[:1], seed=1), [("dog", (9, 11, 38, 34), 0)])
    write_split_files(root, ["a"], ["b"])
    ignored = "1 difficult object(s): crowd region(s), never trained on (data.voc.difficult: ignore)"
    report = _prepare(repo, tmp_path / "out", "voc", {"root": SRC})
    assert report["problem_examples"]["category_without_boxes"] == [
        f"{VOC_ANN}/a.xml: class 'cat': no box in the train or val images: in it, {ignored}; {TO_LEAVE_OUT}"
    ]
    report = _prepare(repo, tmp_path / "drop", "voc", {"root": SRC, "difficult": "drop"})
    assert report["problem_examples"]["category_without_boxes"] == [
        f"{VOC_ANN}/a.xml: class 'cat': no box in the train or val images: in it, 1 difficult object(s) "
        f"dropped (data.voc.difficult: drop); {TO_LEAVE_OUT}"
    ]
    report = _prepare(repo, tmp_path / "listed", "voc", {"root": SRC, "classes": ["dog", "cat"]})
    assert report["problem_examples"]["category_without_boxes"] == [
        f"params.yaml: data.voc.classes: class 'cat': no box in the train or val images: in {VOC_ANN}/a.xml, "
        f"{ignored}; {TO_LEAVE_OUT}"
    ]
    report = _prepare(repo, tmp_path / "train", "voc", {"root": SRC, "difficult": "train"}, strict=True)
    assert report["problems_total"] == 0


def test_a_voc_class_whose_boxes_are_lost_after_loading_names_each_file_and_why(tmp_path):
    """Objects with usable boxes make a VOC class, yet the class can end without one: its box falls
    outside its image (c), its image is missing (d), or its image is a val image's copy, taken out of
    train (e); each file naming it says which."""
    repo = tmp_path / "repo"
    root = repo / SRC
    write_voc(root, "a", draw(80, 60, BOXES[:1]), [("dog", (9, 11, 38, 34), 0)])
    write_voc(root, "b", draw(80, 60, BOXES[:1], seed=1), [("dog", (9, 11, 38, 34), 0)])
    write_voc(root, "c", draw(80, 60, seed=2), [("dog", (9, 11, 38, 34), 0), ("cat", (200, 200, 220, 220), 0)])
    write_voc(root, "d", None, [("cat", (51, 31, 70, 50), 0)])
    write_voc(root, "e", draw(80, 60, BOXES[:1], seed=1), [("cat", (51, 31, 70, 50), 0)])  # b's bytes
    write_split_files(root, ["a", "c", "d", "e"], ["b"])
    report = _prepare(repo, tmp_path / "out", "voc", {"root": SRC})
    assert report["problems"]["box_outside"] == report["problems"]["missing_file"] == 1
    assert report["problem_examples"]["split_overlap"] == [
        f"{SRC}/JPEGImages/e.jpg: the same bytes as val {SRC}/JPEGImages/b.jpg"
    ]
    assert report["problem_examples"]["category_without_boxes"] == [
        f"{VOC_ANN}/c.xml: class 'cat': no box in the train or val images: "
        "in it, 1 box(es) dropped on its image (box_outside or box_degenerate); "
        f"in {VOC_ANN}/d.xml, 1 box(es) on its image d.jpg, which was dropped (see that file's problem); "
        f"in {VOC_ANN}/e.xml, 1 box(es) on an image taken out of train as a copy of a val image (split_overlap); "
        + TO_LEAVE_OUT
    ]


def test_a_voc_class_only_on_images_the_caps_left_out_says_so(tmp_path):
    repo = tmp_path / "repo"
    root = repo / SRC
    write_voc(root, "a", draw(80, 60, BOXES[:1]), [("dog", (9, 11, 38, 34), 0)])
    write_voc(root, "b", draw(80, 60, BOXES[:1], seed=1), [("dog", (9, 11, 38, 34), 0)])
    write_voc(root, "c", draw(80, 60, BOXES[:1], seed=2), [("cat", (9, 11, 38, 34), 0)])
    write_split_files(root, ["a", "c"], ["b"])
    report = _prepare(repo, tmp_path / "out", "voc", {"root": SRC, "max_train_images": 1})
    assert report["selection"]["train_capped_out"] == 1
    assert report["problem_examples"]["category_without_boxes"] == [
        f"{VOC_ANN}/c.xml: class 'cat': no box in the train or val images: in it, 1 box(es) on an image the caps "
        f"left out (data.voc.max_train_images / max_val_images); {TO_LEAVE_OUT}"
    ]


def test_a_class_with_boxes_in_one_split_only_is_no_problem(tmp_path):
    repo = tmp_path / "repo"
    section = _coco(repo, ROBOFLOW_CATEGORIES[1:])
    path = repo / SRC / "valid" / "_annotations.coco.json"
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] == 1]  # 'box' only in train
    path.write_text(json.dumps(data))
    report = _prepare(repo, tmp_path / "out", "coco", section, strict=True)
    assert report["splits"]["val"]["classes"] == {"ring": 2, "box": 0} and report["problems_total"] == 0


def test_an_empty_split_is_not_reported_again_as_every_class_without_boxes(tmp_path):
    repo = tmp_path / "repo"
    section = _coco(repo, ROBOFLOW_CATEGORIES[1:])
    for split in ("train", "valid"):
        path = repo / SRC / split / "_annotations.coco.json"
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, "annotations": []}))
    with pytest.raises(DatasetError, match="empty_split") as err:
        _prepare(repo, tmp_path / "out", "coco", section)
    assert err.value.report["problems"]["category_without_boxes"] == 0


def test_val_from_says_whether_val_is_the_sources_own_or_a_seeded_split(tmp_path):
    repo = tmp_path / "repo"
    section = _coco(repo, ROBOFLOW_CATEGORIES[1:], val=False)
    report = _prepare(repo, tmp_path / "seeded", "coco", section)
    assert report["selection"]["val_from"] == (
        "seeded split of train (no data.coco.val_annotations; data.val_fraction 0.2, seed 0)"
    )
    report = _prepare(repo, tmp_path / "own", "coco", _coco(repo, ROBOFLOW_CATEGORIES[1:]))
    assert report["selection"]["val_from"] == "the source's val split"
