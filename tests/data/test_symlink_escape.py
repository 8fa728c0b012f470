"""Defect 7: a symlink inside a dataset must not pull in files from outside it (paths are resolved first).

``images/train/sub -> /elsewhere`` with ``file_name: sub/x.jpg`` used to be placed with 0 problems.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeproof.config import parse_params
from edgeproof.data.prepare import prepare
from tests.data.builders import (
    clean_coco,
    coco_ann,
    coco_image,
    draw,
    save,
    tree_state,
    voc_xml,
    write_coco,
    write_voc,
    write_yolo_image,
    yolo_line,
)

SRC = "data/sources/ds"


@pytest.fixture
def outside(tmp_path):
    """A folder outside the dataset with an image and a label/annotation in it."""
    folder = tmp_path / "outside"
    save(folder / "secret.jpg", draw(64, 48, [(5, 5, 20, 20)], seed=9))
    (folder / "secret.txt").write_text(yolo_line(0, (5, 5, 20, 20), 64, 48) + "\n")
    (folder / "secret.xml").write_text(voc_xml("a.jpg", (64, 48), [("dog", (6, 6, 25, 25), 0)]))
    return folder


def _report(repo: Path, params, tmp_path) -> dict:
    report = prepare(params, repo, tmp_path / "prepared")
    placed = [p.name for p in (tmp_path / "prepared" / "images").rglob("*") if p.is_file()]
    return {"report": report, "placed": placed}


def test_coco_symlinked_subfolder_is_an_escape(tmp_path, outside):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC, n_train=4, n_val=2)
    (repo / SRC / "train" / "sub").symlink_to(outside)
    gt = json.loads(paths["train"].read_text())
    coco_image(gt["images"], 77, "sub/secret.jpg", 64, 48)
    coco_ann(gt["annotations"], 77, 1, (5, 5, 20, 20))
    write_coco(paths["train"], gt["images"], gt["annotations"])
    before = tree_state(outside)
    section = {"images": f"{SRC}/train", "annotations": f"{SRC}/annotations/instances_train.json"}
    params = parse_params({"data": {"source": "coco", "coco": section}}).data
    out = _report(repo, params, tmp_path)
    assert out["report"]["problems"]["path_escape"] == 1
    assert "sub/secret.jpg" in out["report"]["problem_examples"]["path_escape"][0]
    assert not [n for n in out["placed"] if "secret" in n]
    assert tree_state(outside) == before


def test_yolo_symlinked_image_and_label_are_escapes(tmp_path, outside):
    repo = tmp_path / "repo"
    root = repo / SRC
    for i in range(3):
        write_yolo_image(
            root, "train", f"t{i}", draw(64, 48, [(5, 5, 20, 20)], seed=i), [yolo_line(0, (5, 5, 20, 20), 64, 48)]
        )
    for i in range(2):
        write_yolo_image(
            root, "val", f"v{i}", draw(64, 48, [(5, 5, 20, 20)], seed=10 + i), [yolo_line(0, (5, 5, 20, 20), 64, 48)]
        )
    (root / "images" / "train" / "linked.jpg").symlink_to(outside / "secret.jpg")
    (root / "labels" / "train" / "linked.txt").symlink_to(outside / "secret.txt")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a]\n")
    params = parse_params({"data": {"source": "yolo", "yolo": {"data_yaml": f"{SRC}/data.yaml"}}}).data
    out = _report(repo, params, tmp_path)
    assert out["report"]["problems"]["path_escape"] == 2  # the label is not read, the image not placed
    assert not [n for n in out["placed"] if "linked" in n]


def test_voc_symlinked_annotation_and_image_are_escapes(tmp_path, outside):
    repo = tmp_path / "repo"
    root = repo / SRC
    for i in range(4):
        write_voc(root, f"im{i}", draw(64, 48, [(5, 5, 20, 20)], seed=i), [("dog", (6, 6, 25, 25), 0)])
    (root / "JPEGImages" / "x.jpg").symlink_to(outside / "secret.jpg")
    (root / "Annotations" / "x.xml").write_text(voc_xml("x.jpg", (64, 48), [("dog", (6, 6, 25, 25), 0)]))
    (root / "Annotations" / "y.xml").symlink_to(outside / "secret.xml")
    params = parse_params({"data": {"source": "voc", "voc": {"root": SRC}}}).data
    out = _report(repo, params, tmp_path)
    assert out["report"]["problems"]["path_escape"] == 2
    assert not [n for n in out["placed"] if n.startswith(("x.", "y."))]


def test_a_symlink_that_stays_inside_is_fine(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC, n_train=4, n_val=2)
    (repo / SRC / "train" / "again").symlink_to(repo / SRC / "train")
    gt = json.loads(paths["train"].read_text())
    first = gt["images"][0]["file_name"]
    coco_image(gt["images"], 78, f"again/{first}", 96, 72)
    write_coco(paths["train"], gt["images"], gt["annotations"])
    section = {"images": f"{SRC}/train", "annotations": f"{SRC}/annotations/instances_train.json"}
    params = parse_params({"data": {"source": "coco", "coco": section}}).data
    out = _report(repo, params, tmp_path)
    assert out["report"]["problems"]["path_escape"] == 0
