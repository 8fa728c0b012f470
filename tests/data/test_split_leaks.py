"""Train/val leaks: the same image in both splits, however it is named, is taken out of train."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from tests.data.builders import clean_coco
from tests.data.test_coco import SRC, coco_params


def _val_lists(paths: dict[str, Path], images: list[dict], anns: list[dict]) -> None:
    data = json.loads(paths["val"].read_text())
    data["images"] += images
    data["annotations"] += anns
    paths["val"].write_text(json.dumps(data))


def _train_entries(paths: dict[str, Path], n: int, rename: str | None = None) -> tuple[list[dict], list[dict]]:
    """The first ``n`` train images and their boxes, as val entries (new ids; ``rename``: new file names)."""
    train = json.loads(paths["train"].read_text())
    images, anns = [], []
    for k, im in enumerate(train["images"][:n]):
        new_id = 9000 + k
        name = im["file_name"] if rename is None else f"{rename}{k}.jpg"
        images.append({**im, "id": new_id, "file_name": name})
        boxes = [a for a in train["annotations"] if a["image_id"] == im["id"]]
        anns += [{**a, "id": 9000 + len(anns) + j, "image_id": new_id} for j, a in enumerate(boxes)]
    return images, anns


def _params(val_images: str, strict: bool = False):
    return coco_params(coco={"images": f"{SRC}/train", "val_images": val_images}, strict=strict)


def test_val_folder_symlinked_to_train_is_a_leak(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    (repo / SRC / "val_link").symlink_to("train", target_is_directory=True)
    for image in (repo / SRC / "val").iterdir():  # val's own images, moved under val_link's target
        shutil.move(image, repo / SRC / "train" / image.name)
    _val_lists(paths, *_train_entries(paths, 2))
    report = prepare(_params(f"{SRC}/val_link"), repo, tmp_path / "out")
    assert report["problems"]["split_overlap"] == 2
    assert report["splits"]["train"]["images"] == 4 and report["splits"]["val"]["images"] == 5
    example = report["problem_examples"]["split_overlap"][0]
    assert example.startswith(f"{SRC}/train/") and "the same file as val data/sources/coco/val_link/" in example
    train_files = {p.name for p in (tmp_path / "out/images/train").iterdir()}
    val_files = {p.name for p in (tmp_path / "out/images/val").iterdir()}
    assert not train_files & val_files


def test_byte_identical_copies_under_other_names_are_a_leak(tmp_path):
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    images, anns = _train_entries(paths, 2, rename="copy")
    for k, im in enumerate(json.loads(paths["train"].read_text())["images"][:2]):
        shutil.copyfile(repo / SRC / "train" / im["file_name"], repo / SRC / "val" / f"copy{k}.jpg")
    _val_lists(paths, images, anns)
    report = prepare(_params(f"{SRC}/val"), repo, tmp_path / "out")
    assert report["problems"]["split_overlap"] == 2
    assert "the same bytes as val data/sources/coco/val/copy0.jpg" in report["problem_examples"]["split_overlap"][0]
    assert report["splits"]["train"]["images"] == 4
    with pytest.raises(DatasetError, match="split_overlap"):
        prepare(_params(f"{SRC}/val", strict=True), repo, tmp_path / "strict")


def test_distinct_images_of_equal_size_are_not_a_leak(tmp_path):
    repo = tmp_path / "repo"
    clean_coco(repo / SRC)
    report = prepare(_params(f"{SRC}/val", strict=True), repo, tmp_path / "out")
    assert report["problems_total"] == 0 and report["splits"]["train"]["images"] == 6


def test_a_seeded_val_stays_seeded_in_the_report_when_train_copies_are_taken_out(tmp_path):
    """Taking a train copy out (marked excluded) must not make the report call a seeded val the source's own."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    images, anns = _train_entries(paths, 6, rename="copy")
    for k, im in enumerate(json.loads(paths["train"].read_text())["images"]):
        shutil.copyfile(repo / SRC / "train" / im["file_name"], repo / SRC / "train" / f"copy{k}.jpg")
    data = json.loads(paths["train"].read_text())
    paths["train"].write_text(
        json.dumps({**data, "images": data["images"] + images, "annotations": data["annotations"] + anns})
    )
    params = coco_params(coco={"images": f"{SRC}/train", "val_annotations": None}, val_fraction=0.5)
    report = prepare(params, repo, tmp_path / "out")
    assert report["problems"]["split_overlap"] >= 1  # some copy and its original fell into different splits
    assert report["selection"]["val_from"].startswith("seeded split of train")


def _with_comment(data: bytes, text: bytes = b"edited in PhotoApp") -> bytes:
    """The JPEG ``data`` with a comment segment after its start marker: other bytes, the same pixels."""
    return data[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + data[2:]


def _as_png(path: Path, dst: Path, **save) -> None:
    with Image.open(path) as im:
        im.convert("RGB").save(dst, "PNG", **save)


def _as_turned_png(path: Path, dst: Path) -> None:
    """``path``'s pixels stored a quarter turn back with EXIF orientation 6: displayed, the same image."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display: rotate the stored pixels a quarter turn clockwise
    with Image.open(path) as im:
        im.convert("RGB").transpose(Image.Transpose.ROTATE_90).save(dst, "PNG", exif=exif)


@pytest.mark.parametrize("kind", ["jpeg_comment", "png_resaved", "png_turned"])
def test_the_same_pixels_under_other_bytes_are_a_leak(tmp_path, kind):
    """contact11 #6: a val copy of a train photo that differs only in metadata (a photo manager's comment, a
    PNG saved again with other settings, the pixels stored turned with an EXIF orientation that turns them
    back) passed the byte check, and val was scored on memorised images."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    train = json.loads(paths["train"].read_text())
    images, anns = _train_entries(paths, 2, rename="copy")
    for k, (im, entry) in enumerate(zip(train["images"][:2], images, strict=True)):
        src = repo / SRC / "train" / im["file_name"]
        if kind == "jpeg_comment":
            (repo / SRC / "val" / f"copy{k}.jpg").write_bytes(_with_comment(src.read_bytes()))
            continue
        png = src.with_suffix(".png")
        _as_png(src, png, compress_level=1)
        im["file_name"] = png.name
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "PhotoApp")
        if kind == "png_turned":  # verify11: the digest was of the stored pixels, not the displayed ones
            _as_turned_png(src, repo / SRC / "val" / f"copy{k}.png")
        else:
            _as_png(src, repo / SRC / "val" / f"copy{k}.png", compress_level=9, pnginfo=info)
        entry["file_name"] = f"copy{k}.png"
    paths["train"].write_text(json.dumps(train))
    _val_lists(paths, images, anns)
    report = prepare(_params(f"{SRC}/val"), repo, tmp_path / "out")
    assert report["problems"]["split_overlap"] == 2
    example = report["problem_examples"]["split_overlap"][0]
    suffix = "jpg" if kind == "jpeg_comment" else "png"
    assert example.startswith(f"{SRC}/train/") and f"the same pixels as val {SRC}/val/copy" in example
    assert example.endswith(f".{suffix}")
    assert report["splits"]["train"]["images"] == 4 and report["splits"]["val"]["images"] == 5
    assert len(list((tmp_path / "out/images/train").iterdir())) == 4  # the copies were never written
    with pytest.raises(DatasetError, match="split_overlap"):
        prepare(_params(f"{SRC}/val", strict=True), repo, tmp_path / "strict")


def test_an_image_repeated_in_val_is_reported_and_kept(tmp_path):
    """A val image twice (here with a comment added) weighs twice in the mAP: said, not silently scored."""
    repo = tmp_path / "repo"
    paths = clean_coco(repo / SRC)
    val = json.loads(paths["val"].read_text())
    first = val["images"][0]
    data = (repo / SRC / "val" / first["file_name"]).read_bytes()
    (repo / SRC / "val" / "again.jpg").write_bytes(_with_comment(data))
    boxes = [a for a in val["annotations"] if a["image_id"] == first["id"]]
    again = [{**a, "id": 8000 + j, "image_id": 8000} for j, a in enumerate(boxes)]
    _val_lists(paths, [{**first, "id": 8000, "file_name": "again.jpg"}], again)
    report = prepare(_params(f"{SRC}/val"), repo, tmp_path / "out")
    assert report["problems"]["duplicate_image"] == 1 and report["problems"]["split_overlap"] == 0
    assert report["problem_examples"]["duplicate_image"] == [
        f"{SRC}/val/again.jpg: the same pixels as val {SRC}/val/{first['file_name']}; both scored"
    ]
    assert report["splits"]["val"]["images"] == 4 and report["splits"]["train"]["images"] == 6
