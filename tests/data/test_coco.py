"""COCO source: the prepared output, the id mapping, every problem kind, and the source left untouched."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeproof.config import parse_params
from edgeproof.data.canonical import load_meta
from edgeproof.data.identity import DIGEST_KEYS, split_digests
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from edgeproof.tracking.keys import clean_keys
from edgeproof.tracking.record import scalar_metrics
from tests.data.builders import (
    append_garbage,
    clean_coco,
    coco_ann,
    coco_image,
    draw,
    save,
    stored_for_orientation_6,
    tree_state,
    truncate,
    write_coco,
)

SRC = "data/sources/coco"


def bright_box(path: Path) -> tuple[int, int, int, int]:
    """``[x, y, w, h]`` of the bright pixels of a prepared image."""
    arr = np.asarray(Image.open(path).convert("L"))
    ys, xs = np.nonzero(arr > 150)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _readable_images(img: Path, images: list, anns: list) -> None:
    """Good, PNG, grayscale and EXIF-rotated images (annotated in either frame)."""
    save(img / "good.jpg", draw(96, 72, [(10, 10, 30, 20), (40, 30, 20, 20)]))
    coco_image(images, 11, "good.jpg", 96, 72)
    coco_ann(anns, 11, 1, (10, 10, 30, 20))
    coco_ann(anns, 11, 3, (40, 30, 20, 20), iscrowd=1, area=123.0)
    save(img / "photo.png", draw(80, 60, [(5, 5, 20, 20)]), "PNG")
    coco_image(images, 12, "photo.png", 80, 60)
    coco_ann(anns, 12, 90, (5, 5, 20, 20))
    save(img / "gray.jpg", draw(64, 64, [(10, 10, 20, 20)]), mode="L")
    coco_image(images, 13, "gray.jpg", 64, 64)
    coco_ann(anns, 13, 1, (10, 10, 20, 20))
    # shown 60x90 after EXIF orientation 6; annotated in the displayed frame, as COCO tools expect
    shown = draw(60, 90, [(10, 50, 30, 20)])
    save(img / "rotated.jpg", stored_for_orientation_6(shown), orientation=6)
    coco_image(images, 14, "rotated.jpg", 60, 90)
    coco_ann(anns, 14, 3, (10, 50, 30, 20))
    # the same kind of file, but annotated on the stored 90x60 pixels: boxes must rotate with the image
    stored = draw(90, 60, [(50, 10, 30, 20)])
    save(img / "rotated_stored.jpg", stored, orientation=6)
    coco_image(images, 15, "rotated_stored.jpg", 90, 60)
    coco_ann(anns, 15, 3, (50, 10, 30, 20))


def _problem_images(repo: Path, img: Path, images: list, anns: list) -> None:
    """One image or annotation per problem kind, plus an image without boxes and a nested path."""
    truncate(save(img / "truncated.jpg", draw(96, 72, [(10, 10, 30, 20)])))
    coco_image(images, 16, "truncated.jpg", 96, 72)
    coco_ann(anns, 16, 1, (10, 10, 30, 20))
    append_garbage(save(img / "restorable.jpg", draw(96, 72, [(20, 20, 30, 20)])))  # whole, then other bytes
    coco_image(images, 17, "restorable.jpg", 96, 72)
    coco_ann(anns, 17, 1, (20, 20, 30, 20))
    save(repo / SRC / "outside.jpg", draw(96, 72))  # exists, but outside the images folder
    coco_image(images, 18, "../outside.jpg", 96, 72)
    coco_ann(anns, 18, 1, (10, 10, 30, 20))
    save(img / "empty.jpg", draw(96, 72))
    coco_image(images, 19, "empty.jpg", 96, 72)
    coco_image(images, 20, "missing.jpg", 96, 72)
    coco_ann(anns, 20, 1, (10, 10, 30, 20))
    coco_image(images, 24, "dup_a.jpg", 96, 72)  # an id listed twice: both entries dropped, with the box
    coco_ann(anns, 24, 1, (10, 10, 30, 20))
    coco_image(images, 24, "dup_id.jpg", 96, 72)
    coco_image(images, 21, "good.jpg", 96, 72)  # duplicate file
    save(img / "sub" / "dir" / "nested.jpg", draw(96, 72, [(30, 30, 20, 20)]))
    coco_image(images, 22, "sub/dir/nested.jpg", 96, 72)
    coco_ann(anns, 22, 90, (30, 30, 20, 20))
    save(img / "clip.jpg", draw(96, 72, [(80, 50, 16, 22)]))
    coco_image(images, 23, "clip.jpg", 96, 72)
    coco_ann(anns, 23, 3, (80, 50, 40, 40))  # clipped to 16x22
    coco_ann(anns, 23, 3, (200, 200, 10, 10))  # entirely outside
    coco_ann(anns, 23, 3, (10, 10, 0, 5))  # zero width
    coco_ann(anns, 23, 7, (10, 10, 5, 5))  # unknown category
    coco_ann(anns, 999, 1, (10, 10, 5, 5))  # unknown image id
    coco_ann(anns, 23, 1, (1, 2, 3))  # not a box


def build_messy(repo: Path) -> None:
    """Train: clean and problem images; val: two clean images."""
    img = repo / SRC / "images"
    images: list = []
    anns: list = []
    _readable_images(img, images, anns)
    _problem_images(repo, img, images, anns)
    write_coco(repo / SRC / "annotations/instances_train.json", images, anns)
    val_images: list = []
    val_anns: list = []
    for image_id in (501, 502):
        save(img / f"val{image_id}.jpg", draw(96, 72, [(20, 20, 40, 30)], seed=image_id))
        coco_image(val_images, image_id, f"val{image_id}.jpg", 96, 72)
        coco_ann(val_anns, image_id, 90, (20, 20, 40, 30))
    write_coco(repo / SRC / "annotations/instances_val.json", val_images, val_anns)


def coco_params(**extra):
    section = {
        "images": f"{SRC}/images",
        "annotations": f"{SRC}/annotations/instances_train.json",
        "val_annotations": f"{SRC}/annotations/instances_val.json",
        **extra.pop("coco", {}),
    }
    return parse_params({"data": {"source": "coco", "coco": section, **extra}}).data


@pytest.fixture
def messy(tmp_path):
    repo = tmp_path / "repo"
    build_messy(repo)
    before = tree_state(repo / SRC)
    out = tmp_path / "prepared"
    out.mkdir()
    report = prepare(coco_params(), repo, out)
    assert tree_state(repo / SRC) == before, "the source dataset was modified"
    return repo, out, report


def test_every_problem_is_counted_once(messy):
    _, _, report = messy
    expected = {
        "unreadable_image": 1,
        "missing_file": 1,
        "path_escape": 1,
        "duplicate_image_id": 2,
        "duplicate_file": 1,
        "unknown_category": 1,
        "unknown_image": 1,
        "box_invalid": 1,
        "box_degenerate": 1,
        "box_outside": 1,
        "box_clipped": 1,
        "size_mismatch": 1,
    }
    assert {k: v for k, v in report["problems"].items() if v} == expected
    assert report["problems_total"] == sum(expected.values())
    examples = report["problem_examples"]
    assert "data/sources/coco/images/truncated.jpg" in examples["unreadable_image"][0]
    assert "data/sources/coco/images/missing.jpg" in examples["missing_file"][0]
    assert "../outside.jpg" in examples["path_escape"][0]
    assert "rotated_stored.jpg" in examples["size_mismatch"][0]


def test_split_counts_and_id_mapping(messy):
    _, out, report = messy
    # 15 train entries - truncated, escape, missing, two sharing an id, duplicate file
    assert report["splits"]["train"]["images"] == 9
    assert report["splits"]["train"]["empty_images"] == 1
    assert report["splits"]["train"]["crowd_boxes"] == 1
    counts = {k: v for k, v in report["splits"]["val"].items() if k not in DIGEST_KEYS}
    assert counts == {
        "images": 2,
        "boxes": 2,
        "crowd_boxes": 0,
        "empty_images": 0,
        "classes": {"person": 0, "car": 0, "toothbrush": 2},
    }
    assert {k: report["splits"]["val"][k] for k in DIGEST_KEYS} == split_digests(out, "val")
    meta = load_meta(out)
    assert meta.names == ["person", "car", "toothbrush"] and meta.category_ids == [1, 3, 90]
    gt = json.loads((out / "annotations/train.json").read_text())
    assert sorted(im["id"] for im in gt["images"]) == [11, 12, 13, 14, 15, 17, 19, 22, 23]
    assert {a["category_id"] for a in gt["annotations"]} == {1, 3, 90}
    assert [c["id"] for c in gt["categories"]] == [1, 3, 90]
    val = json.loads((out / "annotations/val.json").read_text())
    assert [im["id"] for im in val["images"]] == [501, 502]


def test_prepared_files_and_labels(messy):
    repo, out, _ = messy
    files = sorted(p.name for p in (out / "images/train").iterdir())
    assert files == [
        "clip.jpg",
        "empty.jpg",
        "good.jpg",
        "gray.png",
        "photo.png",
        "restorable.png",
        "rotated.png",
        "rotated_stored.png",
        "sub__dir__nested.jpg",
    ]
    # plain good images are hard links to the source; the others are RGB copies
    assert (out / "images/train/good.jpg").samefile(repo / SRC / "images/good.jpg")
    assert (out / "images/train/photo.png").samefile(repo / SRC / "images/photo.png")
    for name in ("gray.png", "restorable.png", "rotated.png"):
        with Image.open(out / "images/train" / name) as im:
            assert im.mode == "RGB" and im.getexif().get(0x0112) in (None, 1)
    labels = sorted(p.name for p in (out / "labels/train").iterdir())
    assert labels == sorted(f"{Path(f).stem}.txt" for f in files)
    good = (out / "labels/train/good.txt").read_text().split("\n")
    assert good == ["0 0.260417 0.277778 0.312500 0.277778", ""]  # the crowd box is not a training target
    assert (out / "labels/train/empty.txt").read_text() == ""
    nested = (out / "labels/train/sub__dir__nested.txt").read_text().split()
    assert nested[0] == "2"  # category 90 is class index 2


def test_crowd_area_and_source_file_survive_into_gt(messy):
    _, out, _ = messy
    gt = json.loads((out / "annotations/train.json").read_text())
    by_image = {im["id"]: im for im in gt["images"]}
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["area"] == 123.0 and crowd[0]["category_id"] == 3
    assert by_image[22]["file_name"] == "sub__dir__nested.jpg"
    assert by_image[22]["source_file"] == "data/sources/coco/images/sub/dir/nested.jpg"
    clip = [a["bbox"] for a in gt["annotations"] if a["image_id"] == 23]
    assert clip == [[80.0, 50.0, 16.0, 22.0]]


@pytest.mark.parametrize("image_id, name", [(14, "rotated.png"), (15, "rotated_stored.png")])
def test_exif_rotated_boxes_cover_their_object(messy, image_id, name):
    _, out, _ = messy
    gt = json.loads((out / "annotations/train.json").read_text())
    im = next(i for i in gt["images"] if i["id"] == image_id)
    assert (im["width"], im["height"]) == (60, 90)  # the displayed frame
    (box,) = [a["bbox"] for a in gt["annotations"] if a["image_id"] == image_id]
    assert np.allclose(box, bright_box(out / "images/train" / name), atol=1)
    with Image.open(out / "images/train" / name) as pil:
        assert pil.size == (60, 90)


def test_grayscale_and_png_keep_their_boxes(messy):
    _, out, _ = messy
    gt = json.loads((out / "annotations/train.json").read_text())
    for image_id, name in ((13, "gray.png"), (12, "photo.png")):
        (box,) = [a["bbox"] for a in gt["annotations"] if a["image_id"] == image_id]
        assert np.allclose(box, bright_box(out / "images/train" / name), atol=1)


def test_strict_fails_naming_the_files(tmp_path):
    repo = tmp_path / "repo"
    build_messy(repo)
    out = tmp_path / "prepared"
    out.mkdir()
    with pytest.raises(DatasetError) as err:
        prepare(coco_params(strict=True), repo, out)
    message = str(err.value)
    assert "data.strict" in message and "truncated.jpg" in message and "missing.jpg" in message
    assert err.value.report is not None and err.value.report["problems"]["unreadable_image"] == 1
    assert not (out / "meta.json").exists()


def test_unusable_val_fails_even_when_not_strict(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    for image in (repo / SRC / "val").iterdir():
        image.unlink()
    params = parse_params(
        {
            "data": {
                "source": "coco",
                "coco": {
                    "images": f"{SRC}/train",
                    "annotations": paths["train"].relative_to(repo).as_posix(),
                    "val_images": f"{SRC}/val",
                    "val_annotations": paths["val"].relative_to(repo).as_posix(),
                },
            }
        }
    ).data
    with pytest.raises(DatasetError, match="empty_split") as err:
        prepare(params, repo, tmp_path)
    assert "data/sources/coco/val/000000005000.jpg" in str(err.value)


def test_a_split_emptied_by_absolute_file_names_names_them_not_the_selection(tmp_path):
    """Label Studio's older exports write upload paths (``/data/upload/1/x.jpg``): every entry is a path_escape."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    for path in paths.values():
        data = json.loads(path.read_text())
        for image in data["images"]:
            image["file_name"] = f"/data/upload/1/{image['file_name']}"
        path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="empty_split") as err:
        prepare(coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}), repo, tmp_path / "out")
    hint = "0 image(s) selected, problems that drop images or boxes (all splits, examples below): path_escape x9"
    assert err.value.report["problem_examples"]["empty_split"] == [f"train: {hint}", f"val: {hint}"]
    assert "keep_negatives" not in str(err.value)


def test_a_split_the_selection_empties_points_at_the_selection(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["val"].read_text())
    paths["val"].write_text(json.dumps({**data, "annotations": []}))  # val: negatives only, then dropped
    section = {"images": f"{SRC}/train", "val_images": f"{SRC}/val", "val_keep_negatives": False}
    with pytest.raises(DatasetError, match="empty_split") as err:
        prepare(coco_params(coco=section), repo, tmp_path / "out")
    examples = err.value.report["problem_examples"]["empty_split"]
    assert examples == ["val: 0 image(s) selected, check data.coco's classes, val_keep_negatives and max_val_images"]
    assert err.value.report["selection"]["val_negatives_dropped"] == 3


def test_clean_dataset_passes_strict(tmp_path):
    repo = tmp_path / "repo"
    clean_coco(repo / SRC)
    params = coco_params(
        strict=True,
        coco={
            "images": f"{SRC}/train",
            "val_images": f"{SRC}/val",
        },
    )
    report = prepare(params, repo, tmp_path)
    assert report["problems_total"] == 0 and report["splits"]["train"]["images"] == 6


def test_malformed_json_names_the_file(tmp_path):
    repo = tmp_path / "repo"
    build_messy(repo)
    (repo / SRC / "annotations/instances_train.json").write_text('{"images": [{"id": 1,')
    with pytest.raises(ValueError, match=r"instances_train\.json: not valid JSON"):
        prepare(coco_params(), repo, tmp_path)


def test_missing_annotation_file_names_the_key(tmp_path):
    (tmp_path / SRC / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"data\.coco\.annotations"):
        prepare(coco_params(), tmp_path, tmp_path / "out")


def test_malformed_entries_are_reported_not_fatal(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    data["images"].append({"id": "seven", "file_name": "x.jpg"})
    data["images"].append(["not", "a", "dict"])
    data["annotations"] += [{"id": 2**70, "image_id": 1000, "category_id": 1, "bbox": [1, 2, "x", 4]}, "junk"]
    data["annotations"].append({"image_id": 2**70, "category_id": 1, "bbox": [1, 2, 3, 4]})
    data["annotations"].append({"image_id": 1000, "category_id": 1, "bbox": [1, 2, float("nan"), 4]})
    paths["train"].write_text(json.dumps(data))
    params = coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"})
    report = prepare(params, repo, tmp_path / "out")
    # two image entries, the "junk" annotation and the out-of-range image_id: not the box's fault
    assert report["problems"]["annotation_unreadable"] == 4
    assert report["problems"]["box_invalid"] == 2  # the "x" and the NaN in a bbox
    assert report["splits"]["train"]["images"] == 6


def test_an_id_that_is_no_integer_names_its_field_and_is_not_blamed_on_the_box(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    data["annotations"][0]["category_id"] = "3"  # as some exporters write it
    data["annotations"][1]["image_id"] = 1000.5
    del data["annotations"][2]["category_id"]
    paths["train"].write_text(json.dumps(data))
    report = prepare(coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}), repo, tmp_path / "out")
    label = f"{SRC}/annotations/instances_train.json"
    assert report["problems"]["box_invalid"] == 0
    assert report["problem_examples"]["annotation_unreadable"] == [
        f"{label}: annotation id 1: category_id '3' is not an integer; dropped",
        f"{label}: annotation id 2: image_id 1000.5 is not an integer; dropped",
        f"{label}: annotation id 3: no 'category_id'; dropped",
    ]


def test_a_segmentation_only_annotation_is_named_by_its_id(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    data["annotations"].append({"id": 900, "image_id": 1000, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9]]})
    data["annotations"].append({"image_id": 1000, "category_id": 1})
    paths["train"].write_text(json.dumps(data))
    report = prepare(coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}), repo, tmp_path / "out")
    label = f"{SRC}/annotations/instances_train.json"
    assert report["problem_examples"]["box_invalid"] == [
        f"{label}: annotation id 900: no 'bbox' (segmentation-only annotations are not used)",
        f"{label}: annotation #13 (no id): no 'bbox' (segmentation-only annotations are not used)",
    ]


def test_an_image_id_listed_twice_loses_both_images_and_their_boxes(tmp_path):
    """A merged file reusing an id: which image a box under that id belongs to cannot be told, so no
    box may land on the wrong image; both entries are dropped and each is named."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    for name in ("a.jpg", "b.jpg"):
        save(repo / SRC / "train" / name, draw(96, 72, [(10, 10, 30, 20)]))
        coco_image(data["images"], 7, name, 96, 72)
    coco_ann(data["annotations"], 7, 1, (10, 10, 30, 20))  # a.jpg's box
    coco_ann(data["annotations"], 7, 3, (50, 30, 40, 40))  # b.jpg's box
    paths["train"].write_text(json.dumps(data))
    params = coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"})
    report = prepare(params, repo, tmp_path / "out")
    assert report["problems"]["duplicate_image_id"] == 2 and report["problems"]["unknown_image"] == 0
    examples = report["problem_examples"]["duplicate_image_id"]
    assert any("a.jpg" in e for e in examples) and any("b.jpg" in e for e in examples)
    assert all("image id 7" in e and "2 box(es)" in e for e in examples)
    gt = json.loads((tmp_path / "out/annotations/train.json").read_text())
    assert 7 not in {im["id"] for im in gt["images"]} and 7 not in {a["image_id"] for a in gt["annotations"]}
    assert report["splits"]["train"]["images"] == 6 and report["splits"]["train"]["boxes"] == 12


def test_a_file_listed_again_under_another_id_names_the_boxes_it_loses(tmp_path):
    """``./x.jpg`` after ``x.jpg`` with another id and two boxes: the later entry is dropped, and so are its
    boxes, which the problem must say (as duplicate_image_id does), not only "later entries dropped"."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    first = data["images"][0]
    coco_image(data["images"], 77, f"./{first['file_name']}", 96, 72)
    coco_ann(data["annotations"], 77, 1, (10, 10, 30, 20), area=600.0)
    coco_ann(data["annotations"], 77, 3, (50, 30, 40, 40), area=1600.0)
    paths["train"].write_text(json.dumps(data))
    params = coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"})
    report = prepare(params, repo, tmp_path / "out")
    assert report["problem_examples"]["duplicate_file"] == [
        f"{SRC}/annotations/instances_train.json: image id 77: ./{first['file_name']} "
        f"(first listed as image id {first['id']}): dropped with its 2 box(es)"
    ]
    assert report["splits"]["train"]["boxes"] == 12  # the first entry's two boxes per image, nothing merged


def test_a_clipped_box_keeps_the_share_of_its_area_inside_the_image(tmp_path):
    """COCO's area picks pycocotools' small/medium/large range: a box cut to a fifth of its size by
    the image border must not stay in the range of the whole object."""
    from pycocotools.cocoeval import COCOeval

    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    image_id = data["images"][0]["id"]  # 96x72
    coco_ann(data["annotations"], image_id, 1, (80, 50, 40, 40), area=1280.0)  # medium, clipped to 16x22
    paths["train"].write_text(json.dumps(data))
    report = prepare(coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}), repo, tmp_path / "out")
    assert report["problems"]["box_clipped"] == 1
    gt = json.loads((tmp_path / "out/annotations/train.json").read_text())
    (clipped,) = [a for a in gt["annotations"] if a["bbox"] == [80.0, 50.0, 16.0, 22.0]]
    assert clipped["area"] == pytest.approx(1280.0 * (16 * 22) / (40 * 40), abs=1e-3)
    ranges = COCOeval(iouType="bbox").params
    small = ranges.areaRng[ranges.areaRngLbl.index("small")]
    assert small[0] <= clipped["area"] < small[1]  # scored as the small object it now is
    unclipped = [a["area"] for a in gt["annotations"] if a["image_id"] == image_id and a is not clipped]
    assert unclipped == [pytest.approx(30 * 24 * 0.8, abs=1e-3), pytest.approx(28 * 30 * 0.8, abs=1e-3)]


def _count_per_class(tmp_path, cats: list, counts: dict[int, int]) -> dict:
    """Prepare a COCO source whose category ``id`` has ``counts[id]`` boxes (one image each); the report."""
    repo = tmp_path / "repo"
    images: list = []
    anns: list = []
    for i in range(1, sum(counts.values()) + 1):
        save(repo / SRC / "images" / f"im{i}.jpg", draw(96, 72, seed=i))
        coco_image(images, i, f"im{i}.jpg", 96, 72)
    image = iter(range(1, sum(counts.values()) + 1))
    for cat, n in counts.items():
        for _ in range(n):
            coco_ann(anns, next(image), cat, (10, 10, 20, 20))
    write_coco(repo / SRC / "ann.json", images, anns, categories=cats)
    params = coco_params(coco={"images": f"{SRC}/images", "annotations": f"{SRC}/ann.json", "val_annotations": None})
    return prepare(params, repo, tmp_path / "out")


def test_per_class_counts_keep_every_class_apart(tmp_path):
    """Class names that clean to the same MLflow key (non-ASCII, or shared by two categories) keep
    their own per-class counts."""
    cats = [{"id": 1, "name": "猫"}, {"id": 2, "name": "狗"}, {"id": 3, "name": "car"}, {"id": 4, "name": "car"}]
    report = _count_per_class(tmp_path, cats, {1: 1, 2: 2, 3: 3, 4: 4})
    per_class = Counter()
    for split in report["splits"].values():
        assert len(split["classes"]) == 4
        per_class.update(split["classes"])
    assert sorted(per_class.values()) == [1, 2, 3, 4]
    assert set(per_class) == {"猫", "狗", "car#3", "car#4"}
    logged = scalar_metrics({"data": report})  # as MLflow gets them: keys cleaned, still distinct
    assert len({k for k in clean_keys(logged) if k.startswith("data.splits.train.classes.")}) == 4


def test_a_class_named_like_a_told_apart_key_keeps_its_own_count(tmp_path):
    """A class literally named ``car#3`` must not take (or merge with) the key that tells apart the
    ``car`` whose id is 3: each of the three categories keeps its own count."""
    cats = [{"id": 3, "name": "car"}, {"id": 5, "name": "car"}, {"id": 7, "name": "car#3"}]
    report = _count_per_class(tmp_path, cats, {3: 1, 5: 2, 7: 4})
    per_class = Counter()
    for split in report["splits"].values():
        assert len(split["classes"]) == 3
        per_class.update(split["classes"])
    assert per_class["car#3"] == 4  # the class of that name keeps its plain name
    assert sorted(per_class.values()) == [1, 2, 4]
    assert sum(per_class.values()) == report["splits"]["train"]["boxes"] + report["splits"]["val"]["boxes"]


def test_two_categories_sharing_a_name_are_a_problem_and_both_kept(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    data["categories"].append({"id": 7, "name": "car"})  # 3 is "car" too
    coco_ann(data["annotations"], data["images"][0]["id"], 7, (10, 10, 20, 20))
    paths["train"].write_text(json.dumps(data))
    section = {"images": f"{SRC}/train", "val_images": f"{SRC}/val"}
    with pytest.raises(
        DatasetError, match=r"duplicate_category_name.*instances_train.json: 'car' names categories \[3, 7\]"
    ):
        prepare(coco_params(strict=True, coco=section), repo, tmp_path / "strict")
    report = prepare(coco_params(coco=section), repo, tmp_path / "out")
    assert report["problems"]["duplicate_category_name"] == 1 and report["category_ids"] == [1, 3, 7, 90]
    assert report["splits"]["train"]["classes"]["car#7"] == 1


def _with_a_car_typed_twice(tmp_path):
    """A clean dataset's repo with a category ``Car `` (one box) beside ``car``."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["train"].read_text())
    data["categories"].append({"id": 7, "name": "Car "})
    coco_ann(data["annotations"], data["images"][0]["id"], 7, (10, 10, 20, 20), area=400.0)
    paths["train"].write_text(json.dumps(data))
    return repo


def test_category_names_differing_only_in_case_or_spacing_fail_strict(tmp_path):
    """A clean dataset (strict passes) with a category ``Car `` beside ``car``: one class typed two ways."""
    repo = _with_a_car_typed_twice(tmp_path)
    section = {"images": f"{SRC}/train", "val_images": f"{SRC}/val"}
    with pytest.raises(DatasetError, match="duplicate_category_name") as err:
        prepare(coco_params(strict=True, coco=section), repo, tmp_path / "strict")
    assert err.value.report is not None and err.value.report["problems_total"] == 1
    assert err.value.report["problem_examples"]["duplicate_category_name"] == [
        f"{SRC}/annotations/instances_train.json: 'car', 'Car ' differ only in case or spacing: "
        "kept as separate classes"
    ]


def test_a_size_given_as_whole_floats_is_read_and_other_values_are_problems(tmp_path):
    """``1280.0`` is a size (some exporters write floats); ``"wide"`` or ``95.5`` is reported, not ignored."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)  # 96x72 images
    data = json.loads(paths["train"].read_text())
    first, second = data["images"][0], data["images"][1]
    first["width"], first["height"] = 192.0, 144.0  # twice the file's size: a size mismatch
    second["width"], second["height"] = "wide", 95.5
    paths["train"].write_text(json.dumps(data))
    report = prepare(coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}), repo, tmp_path / "out")
    assert report["problem_examples"]["size_mismatch"] == [
        f"{SRC}/train/{first['file_name']}: annotated as 192x144, image is 96x72; boxes kept as annotated "
        "(if the image was resized after annotation they are 2x its size: fix the annotations)"
    ]  # never rescaled on a guess: the message says what was done
    label = f"{SRC}/annotations/instances_train.json: image id {second['id']}"
    assert report["problem_examples"]["annotation_unreadable"] == [
        f"{label}: width 'wide' is not a positive whole number; taken as not declared",
        f"{label}: height 95.5 is not a positive whole number; taken as not declared",
    ]


def test_a_name_differing_only_in_case_that_classes_leaves_out_is_reported_dropped(tmp_path):
    """Diff review finding 5: with ``classes: [car, person]`` the box of ``Car `` (beside ``car``) is dropped, yet the
    problem said the two were "kept as separate classes" (the check ran before the class filter)."""
    repo = _with_a_car_typed_twice(tmp_path)
    section = {"images": f"{SRC}/train", "val_images": f"{SRC}/val", "classes": ["car", "person"]}
    report = prepare(coco_params(coco=section), repo, tmp_path / "out")
    assert report["problem_examples"]["duplicate_category_name"] == [
        f"{SRC}/annotations/instances_train.json: 'car', 'Car ' differ only in case or spacing: "
        "the 1 box(es) named 'Car ' dropped (not in classes)"
    ]
    assert "Car " not in report["splits"]["train"]["classes"]


def test_a_name_in_another_unicode_normalisation_is_named_as_such(tmp_path):
    """contact11 #9: an NFC ``file_name`` ('café', as JSON tools write it) for a file stored NFD (a zip made on
    macOS): a missing_file whose example looked exactly like the file on disk."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    data = json.loads(paths["val"].read_text())
    first = data["images"][0]
    nfc = unicodedata.normalize("NFC", f"café {first['file_name']}")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    (repo / SRC / "val" / first["file_name"]).rename(repo / SRC / "val" / nfd)
    first["file_name"] = nfc
    paths["val"].write_text(json.dumps(data, ensure_ascii=False))
    report = prepare(coco_params(coco={"images": f"{SRC}/train", "val_images": f"{SRC}/val"}), repo, tmp_path / "out")
    assert report["problems"]["missing_file"] == 1
    assert report["problem_examples"]["missing_file"] == [
        f"{SRC}/val/{nfc}: not found, but {SRC}/val/{nfd} is the same name in another Unicode normalisation "
        f"(on disk NFD: {nfd!a}; listed: {nfc!a}); rename the file or the entry"
    ]
