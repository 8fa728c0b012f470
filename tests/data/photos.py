"""A small dataset of real photographs (scikit-image's bundled samples, no download) as a COCO source.

Boxes were annotated by hand (x, y, w, h in the upright original). Two classes with non-contiguous
category ids: ``face`` (11: people and a cat) and ``object`` (27: cup, spoon, helmet, shuttle,
camera, tripod, rocket). The set deliberately includes a grayscale PNG, a JPEG whose pixels are
stored sideways with an EXIF orientation tag, and a large (3072 px) JPEG.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

FACE, OBJECT = 11, 27
CATEGORIES = [{"id": FACE, "name": "face"}, {"id": OBJECT, "name": "object"}]
Box = tuple[float, float, float, float]

#: sample name -> hand-annotated boxes (category id, x, y, w, h) in the upright original
ANNOTATIONS: dict[str, list[tuple[int, Box]]] = {
    "astronaut": [(FACE, (150, 15, 152, 180)), (OBJECT, (278, 343, 234, 169)), (OBJECT, (355, 0, 115, 285))],
    "coffee": [(OBJECT, (172, 18, 238, 265)), (OBJECT, (325, 65, 100, 262))],
    "chelsea": [(FACE, (15, 0, 390, 300))],
    "camera": [(FACE, (155, 65, 115, 135)), (OBJECT, (250, 138, 82, 62)), (OBJECT, (228, 200, 180, 312))],
    "rocket": [(OBJECT, (305, 125, 35, 285))],
}
LARGE = 3072  # side of the upscaled astronaut
EXIF_ORIENTATION = 274


def _sample(name: str) -> np.ndarray:
    skdata = pytest.importorskip("skimage.data", reason="scikit-image ships the sample photos (dev extra)")
    return getattr(skdata, name)()


def _save_exif_rotated(image: Image.Image, path: Path) -> None:
    """Store the upright ``image`` turned 90 degrees counter-clockwise, tagged orientation 6 (rotate
    90 CW to display): every EXIF-aware reader shows it upright, a naive one sideways."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    image.transpose(Image.Transpose.ROTATE_90).save(path, quality=92, exif=exif)


def _upright(name: str) -> np.ndarray:
    if name == "astronaut_large":
        return np.asarray(Image.fromarray(_sample("astronaut")).resize((LARGE, LARGE), Image.Resampling.BILINEAR))
    return _sample(name)


def _boxes(name: str) -> list[tuple[int, Box]]:
    if name == "astronaut_large":
        return [(c, tuple(v * LARGE / 512 for v in b)) for c, b in ANNOTATIONS["astronaut"]]  # type: ignore[misc]
    return ANNOTATIONS[name]


#: file stem -> (sample, how it is stored): grayscale PNG, EXIF-rotated JPEG, a large JPEG, plain JPEGs
FILES = {
    "astronaut": ("astronaut", "jpg"),
    "coffee": ("coffee", "jpg"),
    "chelsea_exif6": ("chelsea", "exif6"),
    "camera_gray": ("camera", "png"),
    "rocket": ("rocket", "jpg"),
    "astronaut_large": ("astronaut_large", "jpg"),
}


def _write(upright: np.ndarray, kind: str, path: Path) -> None:
    img = Image.fromarray(upright)
    if kind == "png":
        img.save(path)
    elif kind == "exif6":
        _save_exif_rotated(img, path)
    else:
        img.save(path, quality=90)


def write_photo_split(folder: Path, flip: bool = False, first_id: int = 101) -> dict[str, Any]:
    """Write every photo (mirrored when ``flip``) into ``folder``; return its COCO dict (upright boxes)."""
    folder.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for image_id, (stem, (sample, kind)) in enumerate(FILES.items(), start=first_id):
        upright = _upright(sample)
        h, w = upright.shape[:2]
        if flip:
            upright = np.ascontiguousarray(upright[:, ::-1])
        name = f"{stem}{'_flipped' if flip else ''}.{'png' if kind == 'png' else 'jpg'}"
        _write(upright, kind, folder / name)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        for cat, (x, y, bw, bh) in _boxes(sample):
            x = w - x - bw if flip else x
            anns.append(
                {
                    "id": len(anns) + 1 + 1000 * first_id,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [float(x), float(y), float(bw), float(bh)],
                    "area": float(bw * bh),
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": anns, "categories": CATEGORIES}


def write_photo_source(repo: Path, folder: str = "data/sources/photos") -> dict[str, str]:
    """A COCO source in ``repo/folder``: ``train/`` (mirrored photos), ``val/`` (the photos) and their
    annotation files; returns the ``data.coco`` params (paths relative to ``repo``)."""
    root = repo / folder
    out = {}
    for split, flip, first_id in (("train", True, 501), ("val", False, 101)):
        coco = write_photo_split(root / split, flip=flip, first_id=first_id)
        (root / f"{split}.json").write_text(json.dumps(coco))
        out[split] = coco
    return photo_params(folder)


def photo_params(folder: str = "data/sources/photos") -> dict[str, str]:
    """The ``data.coco`` params of :func:`write_photo_source`'s output."""
    return {
        "images": f"{folder}/train",
        "annotations": f"{folder}/train.json",
        "val_images": f"{folder}/val",
        "val_annotations": f"{folder}/val.json",
    }
