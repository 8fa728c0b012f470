"""Pascal VOC source: 1-based corners, difficult objects, split files, class order and problems."""

from __future__ import annotations

import json

import pytest

from edgeproof.config import parse_params
from edgeproof.data.canonical import load_meta
from edgeproof.data.prepare import prepare
from edgeproof.evaluation.coco import score_coco
from tests.data.builders import draw, save, tree_state, voc_xml, write_split_files, write_voc

SRC = "data/sources/VOC2012"


def voc_params(**voc):
    return parse_params({"data": {"source": "voc", "voc": {"root": SRC, **voc}}}).data


@pytest.fixture
def voc_repo(tmp_path):
    repo = tmp_path / "repo"
    root = repo / SRC
    # a: dog at 1-based corners (11, 21)-(40, 50) -> COCO [10, 20, 30, 30]
    write_voc(root, "a", draw(80, 60, [(10, 20, 30, 30)]), [("dog", (11, 21, 40, 50), 0)])
    write_voc(root, "b", draw(80, 60, [(5, 5, 20, 20)]), [("cat", (6, 6, 25, 25), 0), ("dog", (40, 30, 60, 50), 0)])
    write_voc(root, "c", draw(64, 48, [(8, 8, 16, 16)]), [("cat", (9, 9, 24, 24), 0)], suffix=".png", mode="L")
    write_voc(root, "d", draw(80, 60, [(10, 10, 30, 30)]), [("dog", (11, 11, 40, 40), 0), ("cat", (50, 20, 70, 40), 1)])
    write_voc(root, "e", draw(80, 60), [])
    write_voc(root, "f", None, [("dog", (1, 1, 10, 10), 0)])  # image missing
    (root / "Annotations" / "g.xml").write_text("<annotation><object>")  # unparseable
    write_split_files(root, ["a", "b", "c", "f", "g"], ["d", "e"])
    return repo


def test_voc_boxes_difficult_and_class_ids(voc_repo, tmp_path):
    before = tree_state(voc_repo / SRC)
    report = prepare(voc_params(), voc_repo, tmp_path / "out")
    assert tree_state(voc_repo / SRC) == before
    out = tmp_path / "out"
    meta = load_meta(out)
    assert meta.names == ["cat", "dog"] and meta.category_ids == [1, 2]  # VOC order: alphabetical
    train = json.loads((out / "annotations/train.json").read_text())
    a = next(im for im in train["images"] if im["source_file"].endswith("/a.jpg"))
    assert [x["bbox"] for x in train["annotations"] if x["image_id"] == a["id"]] == [[10.0, 20.0, 30.0, 30.0]]
    val = json.loads((out / "annotations/val.json").read_text())
    d = next(im for im in val["images"] if im["file_name"] == "d.jpg")
    d_anns = [(x["category_id"], x["iscrowd"]) for x in val["annotations"] if x["image_id"] == d["id"]]
    assert d_anns == [(2, 0), (1, 1)]  # the difficult cat is an ignore region for the mAP
    assert (out / "labels/val/d.txt").read_text().count("\n") == 1  # ... and not a training target
    assert (
        report["problems"]["missing_file"] == 1 and "JPEGImages/f.jpg" in report["problem_examples"]["missing_file"][0]
    )
    assert report["problems"]["annotation_unreadable"] == 1
    assert report["splits"]["train"]["images"] == 3 and report["splits"]["val"]["images"] == 2
    assert report["splits"]["val"]["crowd_boxes"] == 1 and report["splits"]["val"]["empty_images"] == 1
    assert sorted(p.name for p in (out / "images/train").iterdir()) == ["a.jpg", "b.jpg", "c.png"]


@pytest.mark.parametrize("mode, expected", [("train", [(2, 0), (1, 0)]), ("drop", [(2, 0)])])
def test_difficult_modes(voc_repo, tmp_path, mode, expected):
    prepare(voc_params(difficult=mode), voc_repo, tmp_path / "out")
    val = json.loads((tmp_path / "out/annotations/val.json").read_text())
    d = next(im for im in val["images"] if im["file_name"] == "d.jpg")
    assert [(x["category_id"], x["iscrowd"]) for x in val["annotations"] if x["image_id"] == d["id"]] == expected
    assert (tmp_path / "out/labels/val/d.txt").read_text().count("\n") == len(expected)


def test_classes_subset_in_the_given_order(voc_repo, tmp_path):
    report = prepare(voc_params(classes=["dog"], keep_negatives=False), voc_repo, tmp_path / "out")
    meta = load_meta(tmp_path / "out")
    assert meta.names == ["dog"] and meta.category_ids == [1]
    assert report["splits"]["train"]["images"] == 2  # c has only a cat: a negative, dropped
    assert report["selection"]["train_negatives_dropped"] == 1  # c
    assert report["selection"]["val_negatives_dropped"] == 0  # e stays: val keeps its background images
    assert report["splits"]["val"]["empty_images"] == 1


def test_unknown_class_name_is_a_params_error(voc_repo, tmp_path):
    with pytest.raises(ValueError, match=r"data\.voc\.classes.*'dgo' \(did you mean 'dog'\?\)"):
        prepare(voc_params(classes=["dgo"]), voc_repo, tmp_path / "out")


def test_without_split_files_val_is_a_seeded_split(voc_repo, tmp_path):
    for f in (voc_repo / SRC / "ImageSets/Main").iterdir():
        f.unlink()
    for stem in ("f", "g"):  # leave five usable images
        (voc_repo / SRC / "Annotations" / f"{stem}.xml").unlink()
    params = parse_params({"data": {"source": "voc", "val_fraction": 0.4, "voc": {"root": SRC}}}).data
    first = prepare(params, voc_repo, tmp_path / "one")
    again = prepare(params, voc_repo, tmp_path / "two")
    assert first["splits"]["val"]["images"] == 2 and first["splits"]["train"]["images"] == 3
    val_one = sorted(p.name for p in (tmp_path / "one/images/val").iterdir())
    assert val_one == sorted(p.name for p in (tmp_path / "two/images/val").iterdir())
    assert first == again


def test_a_single_split_file_is_an_error(voc_repo, tmp_path):
    (voc_repo / SRC / "ImageSets/Main/val.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"val\.txt"):
        prepare(voc_params(), voc_repo, tmp_path / "out")


def test_ids_listed_without_an_annotation_file_are_missing_files(voc_repo, tmp_path):
    write_split_files(voc_repo / SRC, ["a", "b", "c", "f", "g", "x1"], ["d", "e", "x2"])
    report = prepare(voc_params(), voc_repo, tmp_path / "out")
    assert report["problems"]["missing_file"] == 3  # f's image, x1's and x2's annotation files
    examples = report["problem_examples"]["missing_file"]
    assert f"{SRC}/Annotations/x1.xml: listed in ImageSets/Main/train" in " ".join(examples)
    assert f"{SRC}/Annotations/x2.xml: listed in ImageSets/Main/val" in " ".join(examples)
    assert report["splits"]["train"]["images"] == 3 and report["splits"]["val"]["images"] == 2


def test_every_ultralytics_format_is_read_and_of_two_files_for_one_id_the_xml_chooses(voc_repo, tmp_path):
    """VOC had its own shorter suffix list (no .avif, .jp2, ...) and took the first file of an id in name order
    (x.jpg over the x.png its XML names) without a word. The suffixes are now ultralytics' (data/image_formats.py);
    of several files for one id the XML's <filename> chooses, and where it names none of them the annotation
    is an ambiguous_image problem naming them all, never a silent pick."""
    root = voc_repo / SRC
    dog = [("dog", (11, 21, 40, 50), 0)]
    write_voc(root, "h", draw(64, 48, [(10, 20, 30, 20)]), dog, suffix=".png")  # its XML says h.png ...
    save(root / "JPEGImages" / "h.jpg", draw(80, 60, seed=1), "JPEG")  # ... not h.jpg, first in name order
    write_voc(root, "i", draw(80, 60, [(10, 20, 30, 30)]), dog)
    save(root / "JPEGImages" / "i.avif", draw(80, 60, seed=2), "AVIF")
    (root / "Annotations" / "i.xml").write_text(voc_xml("i.jpeg", (80, 60), dog))  # names neither file
    save(root / "JPEGImages" / "k.avif", draw(80, 60, [(10, 20, 30, 30)]), "AVIF")  # k's one image: an .avif
    (root / "Annotations" / "k.xml").write_text(voc_xml("k.jpg", (80, 60), dog))
    write_split_files(root, ["a", "b", "c", "f", "g", "h", "i"], ["d", "e", "k"])
    report = prepare(voc_params(), voc_repo, tmp_path / "out")
    train = json.loads((tmp_path / "out/annotations/train.json").read_text())
    h = next(im for im in train["images"] if im["source_file"].split("/")[-1].startswith("h."))
    assert h["source_file"].endswith("JPEGImages/h.png") and (h["width"], h["height"]) == (64, 48)
    assert not any(im["source_file"].split("/")[-1].startswith("i.") for im in train["images"])
    assert report["problems"]["ambiguous_image"] == 1
    assert report["problem_examples"]["ambiguous_image"] == [
        f"{SRC}/Annotations/i.xml: JPEGImages/i.avif and JPEGImages/i.jpg share its id; "
        "its <filename> 'i.jpeg' names none of them"
    ]
    val = json.loads((tmp_path / "out/annotations/val.json").read_text())
    assert any(im["source_file"].endswith("JPEGImages/k.avif") for im in val["images"])
    assert report["problems"]["missing_file"] == 1  # f's image, as before: k's .avif is found


@pytest.mark.parametrize("flag", ["True", "TRUE", "true", "1"])
def test_difficult_accepts_true_in_any_case(voc_repo, tmp_path, flag):
    root = voc_repo / SRC
    write_voc(
        root, "d", draw(80, 60, [(10, 10, 30, 30)]), [("dog", (11, 11, 40, 40), 0), ("cat", (50, 20, 70, 40), flag)]
    )
    prepare(voc_params(), voc_repo, tmp_path / "out")
    val = json.loads((tmp_path / "out/annotations/val.json").read_text())
    d = next(im for im in val["images"] if im["file_name"] == "d.jpg")
    assert [(x["category_id"], x["iscrowd"]) for x in val["annotations"] if x["image_id"] == d["id"]] == [
        (2, 0),
        (1, 1),
    ]


def _dog_typed_twice(voc_repo) -> None:
    """``Dog`` on one box of a (the others say ``dog``): one class typed two ways."""
    root = voc_repo / SRC
    write_voc(root, "a", draw(80, 60, [(10, 20, 30, 30)]), [("Dog", (11, 21, 40, 50), 0)])


def test_class_names_differing_only_in_case_are_a_problem(voc_repo, tmp_path):
    _dog_typed_twice(voc_repo)
    report = prepare(voc_params(), voc_repo, tmp_path / "out")
    assert report["classes"] == ["Dog", "cat", "dog"]  # still apart, but no longer silently
    assert report["problem_examples"]["duplicate_category_name"] == [
        f"{SRC}/Annotations: 'Dog', 'dog' differ only in case or spacing: kept as separate classes"
    ]


def test_a_case_variant_left_out_by_classes_says_its_boxes_are_dropped(voc_repo, tmp_path):
    _dog_typed_twice(voc_repo)
    report = prepare(voc_params(classes=["cat", "dog"]), voc_repo, tmp_path / "out")
    assert report["selection"]["boxes_other_classes"] == 1
    assert report["problem_examples"]["duplicate_category_name"] == [
        f"{SRC}/Annotations: 'dog', 'Dog' differ only in case or spacing: "
        "the 1 box(es) named 'Dog' dropped (not in classes)"
    ]


def test_difficult_objects_are_scored_by_cocos_crowd_rule_not_vocs(voc_repo, tmp_path):
    """What docs/data.md states: a small detection inside a difficult dog, scored above the detection of the
    other dog, is absorbed by the crowd region (overlap / the detection's own area = 1), so AP50 is 1.0;
    VOC's devkit counts it as a false positive (IoU with the difficult dog under 0.5): AP50 0.5."""
    arr = draw(80, 60, [(10, 10, 30, 30), (49, 19, 21, 21)])
    write_voc(voc_repo / SRC, "d", arr, [("dog", (11, 11, 40, 40), 0), ("dog", (50, 20, 70, 40), 1)])
    prepare(voc_params(), voc_repo, tmp_path / "out")
    val = json.loads((tmp_path / "out/annotations/val.json").read_text())
    d = next(im["id"] for im in val["images"] if im["file_name"] == "d.jpg")
    gt = {**val, "images": [im for im in val["images"] if im["id"] == d]}
    gt["annotations"] = [a for a in val["annotations"] if a["image_id"] == d]
    dog, difficult = (next(a for a in gt["annotations"] if a["iscrowd"] == k) for k in (0, 1))
    assert difficult["bbox"] == [49.0, 19.0, 21.0, 21.0] and difficult["category_id"] == dog["category_id"]
    inside = [52.0, 22.0, 8.0, 8.0]  # IoU with the difficult dog 64 / 441
    dets = [
        {"image_id": d, "category_id": dog["category_id"], "bbox": inside, "score": 0.95},
        {"image_id": d, "category_id": dog["category_id"], "bbox": dog["bbox"], "score": 0.9},
    ]
    assert score_coco(gt, dets).metrics["map50"] == 1.0
    dets[0]["bbox"] = [5.0, 45.0, 8.0, 8.0]  # VOC's outcome for comparison: that detection a false positive
    assert score_coco(gt, dets).metrics["map50"] == pytest.approx(0.5, abs=0.01)
