"""One COCO instances file's annotations as compact arrays, and the checks of the fields that decide
what pycocotools counts (issue 18).

``area`` and ``iscrowd`` decide what pycocotools counts: ground truth outside the area range
(``[0, 1e10]`` for "all") is ignored, and a crowd box is ignored and excuses the detections it
matches. So neither is passed through unchecked:

- ``area`` (optional; the box area when absent or null) must be a finite number in
  ``[box area * AREA_MIN_RATIO, box area * AREA_MAX_RATIO + 1]``: a segment lies inside its box
  (the slack covers rounding and polygons drawn on the box edge), and one under a thousandth of
  its box is not a plausible outline. Anything else is an ``area_invalid`` problem and the box
  area is used instead.
- ``iscrowd`` (optional; 0 when absent) must be the integer 0 or 1. Anything else (``"0"``,
  ``true``, ``2``) is an ``iscrowd_invalid`` problem and the box counts as an ordinary box: the
  one reading that cannot hide ground truth from the score.
- The val file's categories must be the train file's (same id, same name); a val category that
  differs is a ``category_mismatch`` problem, and its boxes are matched to the train category of
  the same name (dropped as ``unknown_category`` when train has none).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeproof.data.canonical import Category
from edgeproof.data.report import Problems

AREA_MIN_RATIO = 1e-3  # a segment under a thousandth of its box: not a plausible outline
AREA_MAX_RATIO = 1.05  # a segment lies inside its box; slack for rounding (plus 1 px^2)
UNKNOWN_CATEGORY = -(2**63)  # a val category with no train counterpart: dropped as unknown


def as_int(value: Any) -> int:
    """A JSON id as a 64-bit int (an integral float is accepted; a boolean or string is not)."""
    if isinstance(value, bool):
        raise TypeError("boolean id")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"id out of range: {value}")
    return value


def _why(exc: BaseException) -> str:
    """A missing key said in words (``no 'bbox'``: a segmentation-only annotation), else the error."""
    if isinstance(exc, KeyError):
        unused = " (segmentation-only annotations are not used)" if exc.args[0] == "bbox" else ""
        return f"no {exc.args[0]!r}{unused}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Raw:
    """The fields edgeproof needs from one instances file, as parsed."""

    label: str
    images: list[tuple[Any, Any, Any, Any]] = field(default_factory=list)  # id, file_name, width, height
    categories: list[Any] = field(default_factory=list)
    ann_id: array = field(default_factory=lambda: array("q"))
    image_id: array = field(default_factory=lambda: array("q"))
    cat: array = field(default_factory=lambda: array("q"))
    box: array = field(default_factory=lambda: array("d"))
    crowd: array = field(default_factory=lambda: array("b"))  # 0, 1, or -1: not the integer 0 or 1
    area: array = field(default_factory=lambda: array("d"))  # NaN: absent (the box area is used)
    area_bad: array = field(default_factory=lambda: array("b"))  # present but not a number
    seen: int = 0  # annotation entries read, usable or not

    def _where(self, ann: Any) -> str:
        """The annotation's id when it has one (what a user can search for), else its position."""
        ann_id = ann.get("id") if isinstance(ann, dict) else None
        if isinstance(ann_id, int) and not isinstance(ann_id, bool):
            return f"{self.label}: annotation id {ann_id}"
        return f"{self.label}: annotation #{self.seen - 1} (no id)"

    def _ids(self, ann: Any, problems: Problems) -> tuple[int, int] | None:
        """The annotation's ``image_id`` and ``category_id``; None (an ``annotation_unreadable`` problem
        naming the field and its value) when one is missing or not an integer: its box is not to blame."""
        if not isinstance(ann, dict):
            problems.add("annotation_unreadable", f"{self._where(ann)}: not a JSON object: {ann!r:.60}")
            return None
        ids = []
        for key in ("image_id", "category_id"):
            try:
                ids.append(as_int(ann[key]))
            except KeyError:
                said = f"no {key!r}"
            except TypeError:
                said = f"{key} {ann[key]!r:.40} is not an integer"
            except ValueError:
                said = f"{key} {ann[key]!r} is out of the 64-bit range"
            else:
                continue
            problems.add("annotation_unreadable", f"{self._where(ann)}: {said}; dropped")
            return None
        return ids[0], ids[1]

    def add_annotation(self, ann: Any, problems: Problems) -> None:
        """Keep ``ann``'s fields in the arrays, or report why it cannot be used."""
        self.seen += 1
        ids = self._ids(ann, problems)
        if ids is None:
            return
        image_id, cat = ids
        try:
            bbox = ann["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4 or any(isinstance(v, bool | str) for v in bbox):
                raise ValueError(f"bbox must be a list of 4 numbers [x, y, w, h], got {bbox!r:.80}")
            box = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
            area = ann.get("area")
            number = isinstance(area, int | float) and not isinstance(area, bool)
            area_bad = area is not None and not (number and math.isfinite(area))
            area = float(area) if number and not area_bad else float("nan")
            try:
                ann_id = as_int(ann.get("id"))
            except (TypeError, ValueError):
                ann_id = -1  # only used in messages
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.add("box_invalid", f"{self._where(ann)}: {_why(exc)}")
            return
        self.ann_id.append(ann_id)
        self.image_id.append(image_id)
        self.cat.append(cat)
        self.box.extend(box)
        crowd = ann.get("iscrowd", 0)
        self.crowd.append(crowd if type(crowd) is int and crowd in (0, 1) else -1)  # type(): True is not 0/1
        self.area.append(area)
        self.area_bad.append(1 if area_bad else 0)


def flag(problems: Problems, kind: str, bad: np.ndarray, raw: Raw, why: str) -> None:
    """Record ``kind`` for every annotation row where ``bad``, naming file, annotation id, image and category."""
    idx = np.flatnonzero(bad)
    examples = (
        f"{raw.label}: annotation id {raw.ann_id[i]} (image {raw.image_id[i]}, category {raw.cat[i]}): {why}"
        for i in idx[:20]
    )
    problems.add_many(kind, int(idx.size), examples)


def checked_area(raw: Raw, box: np.ndarray, ok: np.ndarray, problems: Problems) -> np.ndarray:
    """The usable rows' areas; an implausible one is reported and replaced by NaN (= the box area)."""
    area = np.frombuffer(raw.area, dtype=np.float64).copy()
    box_area = box[:, 2] * box[:, 3]
    given = ~np.isnan(area)
    with np.errstate(invalid="ignore"):
        implausible = given & ~((area >= box_area * AREA_MIN_RATIO) & (area <= box_area * AREA_MAX_RATIO + 1.0))
    bad = ok & ((np.frombuffer(raw.area_bad, dtype=np.int8) == 1) | implausible)
    idx = np.flatnonzero(bad)
    examples = (
        f"{raw.label}: annotation id {raw.ann_id[i]} (image {raw.image_id[i]}): area {float(area[i])!r} "
        f"for a {box[i, 2]:g}x{box[i, 3]:g} box; the box area is used"
        for i in idx[:20]
    )
    problems.add_many("area_invalid", int(idx.size), examples)
    area[bad] = np.nan
    return area[ok]


def checked_crowd(raw: Raw, ok: np.ndarray, problems: Problems) -> np.ndarray:
    """The usable rows' ``iscrowd``; anything but the integer 0 or 1 is reported and counts as 0."""
    crowd = np.frombuffer(raw.crowd, dtype=np.int8).copy()
    bad = ok & (crowd < 0)
    flag(problems, "iscrowd_invalid", bad, raw, "iscrowd is not the integer 0 or 1; counted as an ordinary box")
    crowd[bad] = 0
    return crowd[ok]


def match_val_categories(
    val_raw: Raw, val_categories: Sequence[Category], categories: Sequence[Category], problems: Problems
) -> None:
    """Map the val file's category ids onto the train file's by name; report every val category that differs."""
    train_by_name = {c.name: c.id for c in categories}
    train_pairs = {(c.id, c.name) for c in categories}
    mapping: dict[int, int] = {}
    for cat in val_categories:
        if (cat.id, cat.name) in train_pairs:
            continue
        target = train_by_name.get(cat.name)
        mapping[cat.id] = UNKNOWN_CATEGORY if target is None else target
        in_train = next((c.name for c in categories if c.id == cat.id), None)
        said = f"train has id {cat.id} as {in_train!r}" if in_train is not None else f"train has no id {cat.id}"
        then = f"its boxes count as train id {target}" if target is not None else "train has no such class"
        problems.add("category_mismatch", f"{val_raw.label}: category id {cat.id} is {cat.name!r}, {said}; {then}")
    if mapping:
        cat = np.frombuffer(val_raw.cat, dtype=np.int64)
        remapped = cat.copy()
        for old, new in mapping.items():
            remapped[cat == old] = new
        val_raw.cat = array("q", remapped.tobytes())
