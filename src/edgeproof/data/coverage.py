"""What the prepared splits hold, said where a reader could take it for something else: a class
without a single box (trained as an output that never saw an example), and a val split that is a
seeded share of the train images rather than the source's own val split.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence

from edgeproof.data.canonical import Category, ImageRecord
from edgeproof.data.report import Problems
from edgeproof.data.source import SourceDataset

log = logging.getLogger(__name__)

SEEDED_BECAUSE = {
    "coco": "no data.coco.val_annotations",
    "voc": "no ImageSets/Main split files",
    "yolo": "the data.yaml has no 'val' (or 'validation') entry",
}
"""Why a source's val split is seeded, per source."""


def _class_label(category: Category, source: str) -> str:
    """How the source itself names a class: a COCO category id, a YOLO class index (id - 1), a VOC name."""
    if source == "coco":
        return f"category id {category.id} {category.name!r}"
    if source == "yolo":
        return f"class {category.id - 1} {category.name!r}"
    return f"class {category.name!r}"


def unseen_categories(records: Mapping[str, Sequence[ImageRecord]], ds: SourceDataset, problems: Problems) -> None:
    """Report each class of ``ds`` with no box to train on in train or val (crowd/difficult regions are
    not trained on, so they do not count) as ``category_without_boxes``, naming the file that defines
    the class (``ds.categories_from``: the COCO train annotations, the YOLO data.yaml, VOC's Annotations
    folder), as every other problem names its file.

    Such a class still becomes an output of the model, one it never saw an example of; a COCO export's
    placeholder supercategory (Roboflow's category 0) is the usual case. A class with boxes in one split
    only is no problem here: only in train, it is trained and has no AP; only in val, it is scored (AP 0)
    and shows in the per-class figures.
    """
    boxes: Counter[int] = Counter()
    crowd: Counter[int] = Counter()
    for split_records in records.values():
        for record in split_records:
            for ann in record.annotations:
                (crowd if ann.iscrowd else boxes)[ann.category_id] += 1
    seen = [c.name for c in ds.categories if boxes[c.id]]
    shown = json.dumps(seen[:10], ensure_ascii=False) + (f" ... ({len(seen)} in all)" if len(seen) > 10 else "")
    for category in ds.categories:
        if boxes[category.id]:
            continue
        aside = f" ({crowd[category.id]} crowd/difficult region(s) aside)" if crowd[category.id] else ""
        problems.add(
            "category_without_boxes",
            f"{ds.categories_from}: {_class_label(category, ds.source)}: no box in the train or val images{aside}; "
            f"to leave it out, list the classes with boxes in data.{ds.source}.classes: {shown}",
        )


def val_from(ds: SourceDataset, val_fraction: float, seed: int) -> str:
    """Where the val split came from, for the data report's ``selection``; a seeded split is also logged,
    so nobody takes figures measured on a few train images for figures on their own val split."""
    if any(image.split is not None for image in ds.images):
        return "the source's val split"
    text = f"seeded split of train ({SEEDED_BECAUSE[ds.source]}; data.val_fraction {val_fraction:g}, seed {seed})"
    log.warning("val is a %s", text)
    return text
