"""Problems found in a user's dataset: counted by kind, with examples that name the files.

Every kind is always present in the report (zero when clean) so ``dvc metrics diff`` and MLflow
show the same keys run after run. A problem either loses something (an image or a box is dropped)
or repairs it (a box clipped, a damaged JPEG re-encoded); ``data.strict: true`` turns any problem
into a failure. ``FATAL`` kinds make the data unusable and always fail the stage.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

MAX_EXAMPLES = 20  # per kind, in the report and the error message

PROBLEM_KINDS: dict[str, str] = {
    "unreadable_image": (
        "image cannot be decoded (corrupt, truncated, a JPEG without its end marker, or not an image); dropped"
    ),
    "image_too_large": "image header declares more pixels than data.max_image_pixels; dropped undecoded",
    "corrupt_image_restored": "JPEG decoded without its end marker; a repaired copy is used",
    "missing_file": "image file, or the annotation file of an id a VOC split file lists, not found; dropped",
    "path_escape": (
        "file points outside its dataset folder (absolute, ../ or through a symlink not into the repo's DVC "
        "cache); dropped"
    ),
    "ambiguous_image": (
        "VOC annotation whose id several image files share (x.jpg and x.avif) and whose <filename> names none "
        "of them; dropped with its boxes"
    ),
    "image_too_small": "image under 10 px on a side (ultralytics rejects it); dropped",
    "duplicate_image_id": "image id listed by several images: its boxes cannot be assigned; all those images dropped",
    "duplicate_file": "image file listed twice; later entries dropped with their boxes (counted)",
    "split_overlap": (
        "image in both train and val (same file, through a symlink, same bytes, or same decoded pixels); "
        "removed from train"
    ),
    "duplicate_image": "val image with the same decoded pixels as another val image; both scored (weighs twice)",
    "labels_not_found": "YOLO split where no image has a label file (wrong folder or names); all taken as backgrounds",
    "orphan_label": (
        "YOLO label file no listed image reads (its name differs in case, its image is missing or in a format "
        "ultralytics does not read); not read, so its image, if any, is taken as a background"
    ),
    "annotation_unreadable": "annotation file, entry or field that cannot be parsed; skipped",
    "duplicate_category_name": (
        "two categories share a name, or names that differ only in case or spacing; both kept (told apart by id "
        "in the report), or, for one that data.<source>.classes leaves out, dropped with its boxes"
    ),
    "unknown_category": "box of a category the dataset does not define; dropped",
    "unknown_image": "box of an image id the annotation file does not list; dropped",
    "duplicate_label_row": "YOLO label row identical to an earlier one in its file; the copy dropped",
    "box_invalid": "box that is not four finite numbers; dropped",
    "box_degenerate": "box with zero or negative width or height; dropped",
    "box_outside": "box entirely outside its image; dropped",
    "box_clipped": "box reaching more than 1 px outside its image; clipped to it (its COCO area scaled alike)",
    "size_mismatch": "width/height in the annotations differ from the image file's",
    "orientation_ambiguous": (
        "EXIF-rotated image whose declared size cannot tell which frame its boxes were drawn on; "
        "the frame the dataset's telling images show is used (else the displayed one)"
    ),
    "area_invalid": "COCO area not a finite number within its box's plausible range; the box area is used",
    "iscrowd_invalid": "COCO iscrowd not the integer 0 or 1; counted as an ordinary (non-crowd) box",
    "category_mismatch": "val file names a category id differently from the train file; matched by name",
    "category_without_boxes": (
        "class with no box in the train or val images, named with the file that defines it (VOC: data.voc.classes, "
        "else the XML files naming it, with what became of its objects there): it would be trained as a class "
        "never seen; list data.<source>.classes to leave it out"
    ),
    "empty_split": (
        "a split without images, or without a single box (crowd/difficult regions aside): "
        "the dataset cannot be trained or evaluated"
    ),
}
FATAL = frozenset({"empty_split"})
LOSES_BOXES = (
    "labels_not_found",
    "orphan_label",
    "annotation_unreadable",
    "unknown_category",
    "unknown_image",
    "duplicate_image_id",
    "duplicate_file",
    "box_invalid",
    "box_degenerate",
    "box_outside",
    "missing_file",
    "path_escape",
    "ambiguous_image",
    "unreadable_image",
    "image_too_large",
    "image_too_small",
    "split_overlap",
)
"""Kinds that lose boxes (or the images holding them): named when a split is left without any box."""


class DatasetError(ValueError):
    """The data cannot be used (or ``strict`` found problems); carries the report written so far."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report


class Problems:
    """A thread-confined collector: counts per kind plus the first examples of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, kind: str, where: str, count: int = 1) -> None:
        """Record ``count`` problems of ``kind``; ``where`` names the file (and entry) concerned."""
        self.add_many(kind, count, [where])

    def add_many(self, kind: str, count: int, examples: Iterable[str]) -> None:
        """Record ``count`` problems of ``kind`` with (some of) their examples."""
        if kind not in PROBLEM_KINDS:
            raise KeyError(f"unknown problem kind {kind!r}")
        if count <= 0:
            return
        self.counts[kind] += count
        kept = self.examples.setdefault(kind, [])
        for example in examples:
            if len(kept) >= MAX_EXAMPLES:
                break
            kept.append(example)

    def merge(self, other: Problems) -> None:
        """Add ``other``'s counts and examples to these."""
        for kind, count in other.counts.items():
            self.add_many(kind, count, other.examples.get(kind, []))

    @property
    def total(self) -> int:
        """Number of problems of every kind."""
        return sum(self.counts.values())

    def fatal(self) -> list[str]:
        """Kinds present that make the dataset unusable."""
        return sorted(k for k in self.counts if k in FATAL)

    def as_report(self) -> dict[str, Any]:
        """The ``problems`` part of ``metrics/data.json``."""
        return {
            "problems": {kind: self.counts.get(kind, 0) for kind in PROBLEM_KINDS},
            "problems_total": self.total,
            "problem_examples": {k: list(v) for k, v in sorted(self.examples.items())},
        }

    def summary(self, kinds: Iterable[str] | None = None, per_kind: int = 5) -> str:
        """One line per kind: count, meaning and the first files concerned."""
        lines = []
        for kind in kinds if kinds is not None else sorted(self.counts):
            shown = self.examples.get(kind, [])[:per_kind]
            more = self.counts[kind] - len(shown)
            files = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
            lines.append(f"  {kind} x{self.counts[kind]} ({PROBLEM_KINDS[kind]}): {files}")
        return "\n".join(lines)

    def log(self) -> None:
        """Log each kind found, with examples."""
        for kind in sorted(self.counts):
            log.warning("data problem %s", self.summary([kind]).strip())


def enforce(problems: Problems, strict: bool, report: dict[str, Any]) -> None:
    """Raise :class:`DatasetError` when the data is unusable, or when ``strict`` and anything was found."""
    fatal = problems.fatal()
    if fatal:
        others = sorted(k for k in problems.counts if k not in FATAL)
        text = "the dataset is unusable:\n" + problems.summary(fatal)
        if others:
            text += "\nproblems found on the way:\n" + problems.summary(others)
        raise DatasetError(text, report)
    if strict and problems.total:
        raise DatasetError(
            f"data.strict is true and {problems.total} problem(s) were found:\n" + problems.summary(), report
        )
