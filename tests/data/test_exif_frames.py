"""EXIF-rotated images whose declared size cannot tell which frame their boxes were drawn on
(orientations 2-4, square images): each is an ``orientation_ambiguous`` problem, and their boxes
follow the frame the dataset's telling images (orientations 5-8, non-square) show."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeproof.config import parse_params
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from tests.data.builders import coco_ann, coco_image, draw, save, write_coco

SRC = "data/sources/coco"
STORED_BOX = (10, 8, 30, 20)  # on the stored 96x72 pixels


def _bright_box(path: Path) -> list[int]:
    arr = np.asarray(Image.open(path).convert("L"))
    ys, xs = np.nonzero(arr > 150)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def _dataset(repo: Path, orientations: dict[str, int], square: tuple[str, ...] = ()) -> None:
    """Images stored 96x72 (72x72 when ``square``), each box drawn and annotated on the stored pixels,
    with the stored size declared."""
    images: list = []
    anns: list = []
    for n, (name, orientation) in enumerate(orientations.items(), 1):
        size = (72, 72) if name in square else (96, 72)
        save(repo / SRC / "images" / name, draw(*size, [STORED_BOX], seed=n), orientation=orientation)
        coco_image(images, n, name, *size)
        coco_ann(anns, n, 1, STORED_BOX)
    write_coco(repo / SRC / "ann.json", images, anns, [{"id": 1, "name": "person"}])  # every class has a box


def _prepare(repo: Path, out: Path, strict: bool = False) -> dict:
    section = {"images": f"{SRC}/images", "annotations": f"{SRC}/ann.json"}
    params = parse_params({"data": {"source": "coco", "val_fraction": 0.5, "strict": strict, "coco": section}}).data
    return prepare(params, repo, out)


def _boxes_and_pixels(out: Path) -> list[tuple[str, list[int], list[int]]]:
    found = []
    for split in ("train", "val"):
        gt = json.loads((out / f"annotations/{split}.json").read_text())
        for im in gt["images"]:
            (box,) = [a["bbox"] for a in gt["annotations"] if a["image_id"] == im["id"]]
            pixels = _bright_box(out / "images" / split / im["file_name"])
            found.append((Path(im["file_name"]).stem, [round(v) for v in box], pixels))
    return found


def test_a_dataset_annotated_on_the_stored_frame_turns_the_ambiguous_boxes_too(tmp_path):
    repo = tmp_path / "repo"
    orientations = {"o2.jpg": 2, "o3.jpg": 3, "o4.jpg": 4, "o6.jpg": 6, "o1.jpg": 1, "o8.jpg": 8}
    _dataset(repo, orientations)  # o6/o8 declare 96x72: their stored frame, shown 72x96
    report = _prepare(repo, tmp_path / "out")
    assert report["problems"]["orientation_ambiguous"] == 3
    examples = report["problem_examples"]["orientation_ambiguous"]
    assert sorted(e.split(":")[0].rsplit("/", 1)[1] for e in examples) == ["o2.jpg", "o3.jpg", "o4.jpg"]
    assert all("stored pixels" in e and "2 image(s)" in e for e in examples)
    for name, box, pixels in _boxes_and_pixels(tmp_path / "out"):
        assert box == pytest.approx(pixels, abs=1), name  # every box lies on its object


def test_without_a_telling_image_the_displayed_frame_is_used_and_each_image_is_named(tmp_path):
    repo = tmp_path / "repo"
    _dataset(repo, {"o1.jpg": 1, "o3.jpg": 3, "sq6.jpg": 6, "o1b.jpg": 1}, square=("sq6.jpg",))
    report = _prepare(repo, tmp_path / "out")
    assert report["problems_total"] == report["problems"]["orientation_ambiguous"] == 2
    examples = sorted(report["problem_examples"]["orientation_ambiguous"])
    assert "o3.jpg: EXIF orientation 3, declared 96x72 fits both" in examples[0]
    assert "sq6.jpg: EXIF orientation 6, declared 72x72 fits both" in examples[1]
    assert all("displayed image" in e and "no image tells" in e for e in examples)
    boxes = {name: box for name, box, _ in _boxes_and_pixels(tmp_path / "out")}
    assert boxes["o3"] == boxes["sq6"] == list(STORED_BOX)  # taken as drawn on the displayed image
    with pytest.raises(DatasetError, match="orientation_ambiguous"):
        _prepare(repo, tmp_path / "strict", strict=True)
