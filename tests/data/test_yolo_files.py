"""Which files a YOLO source reads, as ultralytics reads them (contact11 findings 3 and 4): every image
format ultralytics lists, a link whose target is gone reported missing, and a label file no listed image
reads (a name differing in case, an image in a format ultralytics skips) an ``orphan_label`` problem."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import yaml

from edgeproof.config import parse_params
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from tests.data.builders import draw, save, write_yolo_image, yolo_line

SRC = "data/sources/files"


def _params(strict: bool = False):
    return parse_params({"data": {"source": "yolo", "strict": strict, "yolo": {"data_yaml": f"{SRC}/data.yaml"}}}).data


@pytest.fixture
def repo(tmp_path):
    """Three labelled train images and three labelled val images, one box each, classes ring and box."""
    repo = tmp_path / "repo"
    root = repo / SRC
    root.mkdir(parents=True)
    (root / "data.yaml").write_text(
        yaml.safe_dump({"train": "images/train", "val": "images/val", "names": ["ring", "box"]})
    )
    for split in ("train", "val"):
        for n, stem in enumerate(("a", "b", "c")):
            box = (10 + 10 * n, 12, 24, 20)
            write_yolo_image(
                root,
                split,
                f"{split}_{stem}",
                draw(80, 60, [box], seed=n + 10 * (split == "val")),
                [yolo_line(n % 2, box, 80, 60)],
            )
    return repo


def _boxes(out, split: str) -> dict[str, int]:
    gt = json.loads((out / "annotations" / f"{split}.json").read_text())
    per = {im["id"]: 0 for im in gt["images"]}
    for a in gt["annotations"]:
        per[a["image_id"]] += 1
    return {im["source_file"].rsplit("/", 1)[-1]: per[im["id"]] for im in gt["images"]}


def test_a_label_file_named_in_another_case_is_an_orphan_label_and_strict_fails(repo, tmp_path):
    """Finding 3: ``VAL_B.txt`` beside ``val_b.jpg`` was never read and val_b.jpg scored as a background;
    strict passed, only ``selection.images_without_label_file`` counted it."""
    labels = repo / SRC / "labels/val"
    (labels / "val_b.txt").rename(labels / "VAL_B.txt")
    report = prepare(_params(), repo, tmp_path / "out")
    assert report["problems"]["orphan_label"] == 1
    assert report["problem_examples"]["orphan_label"] == [
        f"{SRC}/labels/val/VAL_B.txt: no listed image reads it; names are case-sensitive, as in ultralytics: "
        f"{SRC}/images/val/val_b.jpg reads {SRC}/labels/val/val_b.txt"
    ]
    with pytest.raises(DatasetError, match=r"orphan_label x1"):
        prepare(_params(strict=True), repo, tmp_path / "strict")


def test_other_orphans_say_why_and_non_label_text_files_are_not_orphans(repo, tmp_path):
    root = repo / SRC
    (root / "labels/train/train_a.txt").rename(root / "labels/train/train_a.jpg.txt")  # the image's whole name
    (root / "labels/train/gone.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # no image at all
    (root / "labels/train/classes.txt").write_text("ring\nbox\n")  # labelImg's class list: no label file
    (root / "labels/README.txt").write_text("Exported by a tool\n")
    save(root / "images/train/d.gif", draw(80, 60), "GIF")  # a format ultralytics does not read
    (root / "labels/train/d.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    report = prepare(_params(), repo, tmp_path / "out")
    examples = report["problem_examples"]["orphan_label"]
    assert report["problems"]["orphan_label"] == 3, examples
    assert examples[0] == (
        f"{SRC}/labels/train/d.txt: no listed image reads it; its image {SRC}/images/train/d.gif is not a format "
        "ultralytics reads (avif, bmp, dng, heic, heif, jp2, jpeg, jpg, mpo, png, tif, tiff, webp)"
    )
    assert examples[1].startswith(f"{SRC}/labels/train/gone.txt: no listed image reads it; no listed image is ")
    assert examples[2] == (
        f"{SRC}/labels/train/train_a.jpg.txt: no listed image reads it; {SRC}/images/train/train_a.jpg reads "
        f"{SRC}/labels/train/train_a.txt (the image's name, its suffix replaced)"
    )
    assert report["selection"]["files_skipped"] == 1
    assert report["notes"] == [
        f"{SRC}/data.yaml: 1 file(s) in the image folders skipped, not an image format ultralytics reads (.gif x1); "
        "a label file of one is an orphan_label"
    ]


def test_every_image_format_ultralytics_lists_is_read_or_reported(repo, tmp_path):
    """Finding 4: .avif and .jp2 images (Pillow decodes both) were skipped unseen with their labels, val losing
    them without a count; a .heic Pillow cannot decode is an unreadable_image, not a silent skip."""
    root = repo / SRC
    for stem, fmt, suffix in (("val_b", "AVIF", ".avif"), ("val_c", "JPEG2000", ".jp2")):
        (root / f"images/val/{stem}.jpg").unlink()
        save(root / f"images/val/{stem}{suffix}", draw(80, 60, [(20 + 10 * (stem == "val_c"), 12, 24, 20)]), fmt)
    (root / "images/val/val_d.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (root / "labels/val/val_d.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    report = prepare(_params(), repo, tmp_path / "out")
    assert _boxes(tmp_path / "out", "val") == {"val_a.jpg": 1, "val_b.avif": 1, "val_c.jp2": 1}
    assert report["problems"]["orphan_label"] == 0
    (unreadable,) = report["problem_examples"]["unreadable_image"]
    assert unreadable.startswith(f"{SRC}/images/val/val_d.heic: ")


def test_a_link_whose_target_is_gone_is_a_missing_file(repo, tmp_path):
    """Finding 4: a dangling link (a moved dataset, a DVC cache never pulled) was skipped without a count."""
    image = repo / SRC / "images/val/val_b.jpg"
    image.unlink()
    image.symlink_to("/nonexistent/val_b.jpg")
    report = prepare(_params(), repo, tmp_path / "out")
    assert report["problem_examples"]["missing_file"] == [
        f"{SRC}/images/val/val_b.jpg: a symlink to /nonexistent/val_b.jpg, which does not exist"
    ]
    assert report["problems"]["orphan_label"] == 0  # its label file is the lost image's, counted with it
    assert report["splits"]["val"]["images"] == 2


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is None, reason="ultralytics not installed")
def test_the_image_suffixes_are_ultralytics_own():
    """The copy in edgeproof.data.image_formats (ultralytics is not imported there: it pulls in torch)."""
    from edgeproof.data.image_formats import IMAGE_SUFFIXES

    code = "from ultralytics.data.utils import IMG_FORMATS; print(sorted(IMG_FORMATS))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(IMAGE_SUFFIXES) == [f".{s}" for s in json.loads(proc.stdout.strip().splitlines()[-1].replace("'", '"'))]
