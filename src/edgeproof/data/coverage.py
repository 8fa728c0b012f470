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
from edgeproof.data.source import Origin, SourceDataset

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


def unseen_categories(
    records: Mapping[str, Sequence[ImageRecord]],
    ds: SourceDataset,
    problems: Problems,
    chosen: Mapping[str, Sequence[int]],
) -> None:
    """Report each class of ``ds`` with no box to train on in train or val (crowd/difficult regions are
    not trained on, so they do not count) as ``category_without_boxes``, naming the file that defines
    the class (``ds.categories_from``: the COCO train annotations, the YOLO data.yaml, VOC's
    ``data.voc.classes``), as every other problem names its file. Where the source says which
    annotation files name the class (``ds.origins``: VOC, whose classes are otherwise the union of its
    object names, so the first such file defines it), it says what became of its objects in each:
    difficult (``data.voc.difficult``), on an image the caps (``chosen``: the images selected per split)
    or the checks left out, or dropped on the image.

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
    fates = _Fates(ds, {i for split in chosen.values() for i in split}, records)
    for category in ds.categories:
        if boxes[category.id]:
            continue
        origins = ds.origins.get(category.id, [])
        where = ds.categories_from or (origins[0].file if origins else "")
        traced = fates.traced(category.id, origins, where)
        aside = f" ({crowd[category.id]} crowd/difficult region(s) aside)" if crowd[category.id] and not traced else ""
        problems.add(
            "category_without_boxes",
            f"{where}: {_class_label(category, ds.source)}: no box in the train or val images{aside}{traced}; "
            f"to leave it out, list the classes with boxes in data.{ds.source}.classes: {shown}",
        )


class _Fates:
    """What became of a class's objects in the annotation files naming it (:class:`Origin`)."""

    SHOWN = 3  # files described in one example; the rest are counted

    def __init__(self, ds: SourceDataset, chosen: set[int], records: Mapping[str, Sequence[ImageRecord]]) -> None:
        self.ds, self.chosen = ds, chosen
        self.placed = {record.id for split_records in records.values() for record in split_records}

    def traced(self, category_id: int, origins: Sequence[Origin], where: str) -> str:
        """``": in <file>, <what became of its objects>; ..."`` (``in it`` for ``where`` itself), or ""."""
        said = [(o.file, self.fate(category_id, o)) for o in origins]
        said = [(file, fate) for file, fate in said if fate]
        parts = [f"in {'it' if file == where else file}, {fate}" for file, fate in said[: self.SHOWN]]
        more = f"; and {len(said) - self.SHOWN} more file(s)" if len(said) > self.SHOWN else ""
        return f": {'; '.join(parts)}{more}" if parts else ""

    def fate(self, category_id: int, origin: Origin) -> str:
        """Why the class has no trained box from ``origin``'s objects: held at loading, or lost after it."""
        image = self.ds.images[origin.image]
        n = sum(1 for box in image.boxes if box.category_id == category_id and not box.iscrowd)
        lost = f"{n} box(es) {self._lost(origin.image)}" if n else ""
        return ", ".join(text for text in (origin.held, lost) if text)

    def _lost(self, index: int) -> str:
        image = self.ds.images[index]
        if image.split == "excluded":
            return "on an image taken out of train as a copy of a val image (split_overlap)"
        if index not in self.chosen:
            return f"on an image the caps left out (data.{self.ds.source}.max_train_images / max_val_images)"
        if image.id not in self.placed:
            return f"on its image {image.file}, which was dropped (see that file's problem)"
        return "dropped on its image (box_outside or box_degenerate)"


def val_from(ds: SourceDataset, val_fraction: float, seed: int) -> str:
    """Where the val split came from, for the data report's ``selection``; a seeded split is also logged,
    so nobody takes figures measured on a few train images for figures on their own val split."""
    if any(image.split is not None for image in ds.images):
        return "the source's val split"
    text = f"seeded split of train ({SEEDED_BECAUSE[ds.source]}; data.val_fraction {val_fraction:g}, seed {seed})"
    log.warning("val is a %s", text)
    return text
