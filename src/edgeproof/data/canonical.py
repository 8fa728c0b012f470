"""The canonical prepared dataset.

Whatever the source (embedded synthetic, COCO, VOC, YOLO), the ``data`` stage writes one layout::

    <root>/images/<split>/<file>      the images (original pixels, original size)
    <root>/labels/<split>/<stem>.txt  YOLO labels for ultralytics training (class index, normalised cxcywh)
    <root>/annotations/<split>.json   COCO ground truth with the ORIGINAL image and category ids
    <root>/meta.json                  class names, class index -> category id, split counts

Image file names are flat and their stems unique within a split (ultralytics finds a label by the
image's stem); the pixels are what every reader sees (no EXIF rotation left to apply), and a
ground-truth image's ``source_file`` says where a user-provided image came from.

ultralytics trains on ``images/`` + ``labels/``; pycocotools scores against ``annotations/``.
``meta.json`` is the single mapping between the model's class indices and the source's category
ids, so detections are reported in the ids the user's own tools know.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLITS = ("train", "val")
META_FILE = "meta.json"


@dataclass(frozen=True)
class Category:
    """A class as the source names it: its original id and name."""

    id: int
    name: str


@dataclass(frozen=True)
class Annotation:
    """One ground-truth box in original pixel coordinates (COCO ``[x, y, w, h]``).

    ``area`` is the source's own area (COCO: the segment area, which COCO tools use for the
    small/medium/large ranges); ``None`` means the box area.
    """

    category_id: int
    bbox: tuple[float, float, float, float]
    iscrowd: int = 0
    area: float | None = None


@dataclass
class ImageRecord:
    """One image of a split: original id, file name under ``images/<split>/``, original size.

    ``source_file`` is where the image came from in the user's dataset (``None`` for synthetic).
    """

    id: int
    file_name: str
    width: int
    height: int
    annotations: list[Annotation] = field(default_factory=list)
    source_file: str | None = None


@dataclass(frozen=True)
class DatasetMeta:
    """What ``meta.json`` holds."""

    names: list[str]
    category_ids: list[int]
    source: str
    counts: dict[str, dict[str, int]]

    def class_to_category(self) -> dict[int, int]:
        """Model class index -> original category id."""
        return dict(enumerate(self.category_ids))


def yolo_label_lines(record: ImageRecord, index_of: dict[int, int]) -> list[str]:
    """YOLO label lines for ``record``; crowd regions are not training targets."""
    lines = []
    for ann in record.annotations:
        if ann.iscrowd:
            continue
        x, y, w, h = ann.bbox
        cx, cy = (x + w / 2) / record.width, (y + h / 2) / record.height
        lines.append(f"{index_of[ann.category_id]} {cx:.6f} {cy:.6f} {w / record.width:.6f} {h / record.height:.6f}")
    return lines


def coco_dict(records: Sequence[ImageRecord], categories: Sequence[Category]) -> dict[str, Any]:
    """COCO ground truth for one split (``area`` and ``iscrowd`` included: pycocotools needs both)."""
    images, annotations = [], []
    ann_id = 1
    for rec in records:
        image: dict[str, Any] = {"id": rec.id, "file_name": rec.file_name, "width": rec.width, "height": rec.height}
        if rec.source_file is not None:
            image["source_file"] = rec.source_file
        images.append(image)
        for ann in rec.annotations:
            x, y, w, h = (round(float(v), 3) for v in ann.bbox)
            area = round(w * h, 3) if ann.area is None else round(float(ann.area), 3)
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": rec.id,
                    "category_id": ann.category_id,
                    "bbox": [x, y, w, h],
                    "area": area,
                    "iscrowd": int(ann.iscrowd),
                }
            )
            ann_id += 1
    cats = [{"id": c.id, "name": c.name, "supercategory": "object"} for c in categories]
    return {"images": images, "annotations": annotations, "categories": cats}


def write_labels_and_annotations(
    root: Path, splits: dict[str, list[ImageRecord]], categories: Sequence[Category], source: str
) -> DatasetMeta:
    """Write ``labels/``, ``annotations/`` and ``meta.json`` for images already placed under ``images/``."""
    index_of = {c.id: i for i, c in enumerate(categories)}
    counts: dict[str, dict[str, int]] = {}
    for split, records in splits.items():
        label_dir = root / "labels" / split
        label_dir.mkdir(parents=True, exist_ok=True)
        for rec in records:
            text = "\n".join(yolo_label_lines(rec, index_of))
            (label_dir / f"{Path(rec.file_name).stem}.txt").write_text(text + ("\n" if text else ""))
        ann_dir = root / "annotations"
        ann_dir.mkdir(parents=True, exist_ok=True)
        (ann_dir / f"{split}.json").write_text(json.dumps(coco_dict(records, categories)))
        counts[split] = {
            "images": len(records),
            "boxes": sum(len(r.annotations) for r in records),
            "empty_images": sum(1 for r in records if not r.annotations),
        }
    meta = DatasetMeta(
        names=[c.name for c in categories],
        category_ids=[c.id for c in categories],
        source=source,
        counts=counts,
    )
    (root / META_FILE).write_text(json.dumps(meta.__dict__, indent=2, sort_keys=True) + "\n")
    return meta


def load_meta(root: Path | str) -> DatasetMeta:
    """Read ``meta.json`` of a prepared dataset, naming the file on error."""
    path = Path(root) / META_FILE
    try:
        raw = json.loads(path.read_text())
        meta = DatasetMeta(**raw)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not a prepared dataset (run the data stage first)") from None
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: malformed dataset metadata ({exc})") from None
    if len(meta.names) != len(meta.category_ids) or not meta.names:
        raise ValueError(f"{path}: names and category_ids must be non-empty and of equal length")
    return meta


def ultralytics_data_yaml(root: Path | str, meta: DatasetMeta) -> dict[str, Any]:
    """The ultralytics dataset dict for a prepared dataset (absolute path: ultralytics resolves
    relative paths against its own global datasets directory, not the yaml's folder)."""
    return {
        "path": str(Path(root).resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(meta.names)),
    }


def split_image_paths(root: Path | str, split: str = "val") -> list[Path]:
    """The image files of ``split`` in ground-truth order (what the benchmark and tools iterate)."""
    root = Path(root)
    gt_path = root / "annotations" / f"{split}.json"
    try:
        gt = json.loads(gt_path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{gt_path}: not found (run the data stage first)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{gt_path}: not valid JSON ({exc})") from None
    paths = [root / "images" / split / im["file_name"] for im in gt.get("images", [])]
    if not paths:
        raise ValueError(f"{gt_path}: the {split} split has no images")
    return paths
