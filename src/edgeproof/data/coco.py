"""COCO instances JSON -> :class:`SourceDataset`, in linear time and bounded memory.

The file is streamed (:mod:`edgeproof.data.jsonstream`): each annotation is reduced to its id,
image id, category id, box, ``iscrowd`` and ``area`` in compact arrays, and segmentations are never
kept. Checks and the class filter are vectorised over those arrays; the boxes of an image become
Python objects only if that image is selected.

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

import logging
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.canonical import Category
from edgeproof.data.jsonstream import iter_members
from edgeproof.data.params import CocoParams
from edgeproof.data.report import Problems
from edgeproof.data.source import (
    SourceBox,
    SourceDataset,
    SourceImage,
    display,
    existing,
    keep_categories,
    safe_relative,
)

log = logging.getLogger(__name__)

AREA_MIN_RATIO = 1e-3  # a segment under a thousandth of its box: not a plausible outline
AREA_MAX_RATIO = 1.05  # a segment lies inside its box; slack for rounding (plus 1 px^2)
_UNKNOWN_CATEGORY = -(2**63)  # a val category with no train counterpart: dropped as unknown


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("boolean id")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"id out of range: {value}")
    return value


@dataclass
class _Raw:
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

    def add_annotation(self, ann: Any, problems: Problems) -> None:
        self.seen += 1
        try:
            bbox = ann["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4 or any(isinstance(v, bool | str) for v in bbox):
                raise ValueError(f"bbox must be a list of 4 numbers [x, y, w, h], got {bbox!r:.80}")
            box = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
            image_id, cat = _as_int(ann["image_id"]), _as_int(ann["category_id"])
            area = ann.get("area")
            number = isinstance(area, int | float) and not isinstance(area, bool)
            area_bad = area is not None and not (number and math.isfinite(area))
            area = float(area) if number and not area_bad else float("nan")
            try:
                ann_id = _as_int(ann.get("id"))
            except (TypeError, ValueError):
                ann_id = -1  # only used in messages
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            where = f"{self.label}: annotation #{self.seen - 1}"
            problems.add("box_invalid", f"{where}: {type(exc).__name__}: {exc}")
            return
        self.ann_id.append(ann_id)
        self.image_id.append(image_id)
        self.cat.append(cat)
        self.box.extend(box)
        crowd = ann.get("iscrowd", 0)
        self.crowd.append(crowd if type(crowd) is int and crowd in (0, 1) else -1)  # type(): True is not 0/1
        self.area.append(area)
        self.area_bad.append(1 if area_bad else 0)


def _parse(path: Path, problems: Problems, label: str) -> _Raw:
    raw = _Raw(label)
    for key, value in iter_members(path, {"images", "annotations"}):
        if key == "annotations":
            raw.add_annotation(value, problems)
        elif key == "images":
            get = value.get if isinstance(value, dict) else (lambda _k: None)
            raw.images.append((get("id"), get("file_name"), get("width"), get("height")))
        elif key == "categories":
            raw.categories = value if isinstance(value, list) else []
    log.info("%s: %d images, %d annotations", label, len(raw.images), len(raw.cat))
    return raw


def _categories(raw: _Raw) -> list[Category]:
    cats: dict[int, Category] = {}
    for entry in raw.categories:
        try:
            cat = Category(id=_as_int(entry["id"]), name=str(entry["name"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{raw.label}: malformed category entry {entry!r} ({exc})") from None
        if cat.id in cats:
            raise ValueError(f"{raw.label}: category id {cat.id} is defined twice")
        cats[cat.id] = cat
    if not cats:
        raise ValueError(f"{raw.label}: no categories defined")
    return sorted(cats.values(), key=lambda c: c.id)


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _images(
    raw: _Raw, root: Path, split: str | None, problems: Problems
) -> tuple[np.ndarray, list[SourceImage | None]]:
    """Image entries by unique id; ``None`` where the entry cannot be used (escape, duplicate file)."""
    ids: list[int] = []
    entries: list[SourceImage | None] = []
    seen_ids: set[int] = set()
    seen_files: set[str] = set()
    for n, (image_id, file_name, width, height) in enumerate(raw.images):
        try:
            image_id = _as_int(image_id)
            if not isinstance(file_name, str):
                raise TypeError(f"file_name {file_name!r}")
        except (TypeError, ValueError) as exc:
            problems.add("annotation_unreadable", f"{raw.label}: image entry #{n}: {exc}")
            continue
        if image_id in seen_ids:
            problems.add("duplicate_image_id", f"{raw.label}: image id {image_id} ({file_name})")
            continue
        seen_ids.add(image_id)
        ids.append(image_id)
        rel = safe_relative(file_name)
        if rel is None:
            problems.add("path_escape", f"{raw.label}: image id {image_id}: file_name {file_name!r}")
            entries.append(None)
        elif rel in seen_files:
            problems.add("duplicate_file", f"{raw.label}: image id {image_id}: {file_name}")
            entries.append(None)
        else:
            seen_files.add(rel)
            entries.append(SourceImage(image_id, rel, root, _size(width), _size(height), split))
    return np.asarray(ids, dtype=np.int64), entries


def _flag(problems: Problems, kind: str, bad: np.ndarray, raw: _Raw, why: str) -> None:
    idx = np.flatnonzero(bad)
    examples = (
        f"{raw.label}: annotation id {raw.ann_id[i]} (image {raw.image_id[i]}, category {raw.cat[i]}): {why}"
        for i in idx[:20]
    )
    problems.add_many(kind, int(idx.size), examples)


@dataclass
class _Part:
    """The usable annotations of one file: each row points at an image of ``images``."""

    images: list[SourceImage]
    img: np.ndarray
    cat: np.ndarray
    box: np.ndarray
    crowd: np.ndarray
    area: np.ndarray


def _image_index(ids: np.ndarray, entries: Sequence[SourceImage | None], image_id: np.ndarray) -> np.ndarray:
    """Per annotation: index into the usable images; -1 = unknown id, -2 = image dropped for its own problem."""
    if not len(ids):
        return np.full(image_id.shape, -1, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids[order], image_id).clip(max=len(ids) - 1)
    found = ids[order][pos] == image_id
    usable = np.array([e is not None for e in entries], dtype=bool)
    image_of_entry = np.where(usable, np.cumsum(usable) - 1, -2)
    return np.where(found, image_of_entry[order[pos]], -1)


def _part(raw: _Raw, root: Path, split: str | None, known: np.ndarray, problems: Problems) -> _Part:
    ids, entries = _images(raw, root, split, problems)
    image_id = np.frombuffer(raw.image_id, dtype=np.int64)
    cat = np.frombuffer(raw.cat, dtype=np.int64)
    box = np.frombuffer(raw.box, dtype=np.float64).reshape(-1, 4)
    img = _image_index(ids, entries, image_id)
    unknown = img == -1
    _flag(problems, "unknown_image", unknown, raw, "no image with this id")
    ok = img >= 0
    bad = ok & ~np.isfinite(box).all(axis=1)
    _flag(problems, "box_invalid", bad, raw, "non-finite bbox")
    ok &= ~bad
    bad = ok & ~np.isin(cat, known)
    _flag(problems, "unknown_category", bad, raw, "category not defined")
    ok &= ~bad
    bad = ok & ((box[:, 2] <= 0) | (box[:, 3] <= 0))
    _flag(problems, "box_degenerate", bad, raw, "zero or negative width/height")
    ok &= ~bad
    return _Part(
        images=[e for e in entries if e is not None],
        img=img[ok],
        cat=cat[ok],
        box=box[ok],
        crowd=_checked_crowd(raw, ok, problems),
        area=_checked_area(raw, box, ok, problems),
    )


def _checked_area(raw: _Raw, box: np.ndarray, ok: np.ndarray, problems: Problems) -> np.ndarray:
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


def _checked_crowd(raw: _Raw, ok: np.ndarray, problems: Problems) -> np.ndarray:
    """The usable rows' ``iscrowd``; anything but the integer 0 or 1 is reported and counts as 0."""
    crowd = np.frombuffer(raw.crowd, dtype=np.int8).copy()
    bad = ok & (crowd < 0)
    _flag(problems, "iscrowd_invalid", bad, raw, "iscrowd is not the integer 0 or 1; counted as an ordinary box")
    crowd[bad] = 0
    return crowd[ok]


def _match_val_categories(val_raw: _Raw, categories: Sequence[Category], problems: Problems) -> None:
    """Map the val file's category ids onto the train file's by name; report every val category that differs."""
    if not val_raw.categories:
        return
    train_by_name = {c.name: c.id for c in categories}
    train_pairs = {(c.id, c.name) for c in categories}
    mapping: dict[int, int] = {}
    for cat in _categories(val_raw):
        if (cat.id, cat.name) in train_pairs:
            continue
        target = train_by_name.get(cat.name)
        mapping[cat.id] = _UNKNOWN_CATEGORY if target is None else target
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


def _combine(parts: Sequence[_Part], kept: Sequence[Category]) -> SourceDataset:
    images: list[SourceImage] = [im for p in parts for im in p.images]
    offsets = np.cumsum([0] + [len(p.images) for p in parts])
    img = np.concatenate([p.img + off for p, off in zip(parts, offsets, strict=False)])
    cat, box, crowd, area = (np.concatenate([getattr(p, k) for p in parts]) for k in ("cat", "box", "crowd", "area"))
    keep = np.isin(cat, np.array([c.id for c in kept], dtype=np.int64))
    info = {"boxes_other_classes": int((~keep).sum())}
    order = np.flatnonzero(keep)[np.argsort(img[keep], kind="stable")]
    img, cat, box, crowd, area = img[order], cat[order], box[order], crowd[order], area[order]
    starts = np.searchsorted(img, np.arange(len(images) + 1))

    def fill(indices: Sequence[int]) -> None:
        for i in indices:
            lo, hi = int(starts[i]), int(starts[i + 1])
            cols = (cat[lo:hi], box[lo:hi], crowd[lo:hi], area[lo:hi])
            rows = zip(*(c.tolist() for c in cols), strict=True)
            images[i].boxes = [
                SourceBox(c, (b[0], b[1], b[2], b[3]), k, None if a != a else a)  # a != a: NaN, no area given
                for c, b, k, a in rows
            ]

    return SourceDataset("coco", list(kept), images, np.diff(starts), fill, info)


def load_coco(params: CocoParams, repo: Path, problems: Problems) -> SourceDataset:
    """Read the COCO source ``params`` names (paths relative to ``repo``); no image is opened."""
    train_json = existing(repo, params.annotations, "data.coco.annotations", want_dir=False)
    train_root = existing(repo, params.images, "data.coco.images", want_dir=True)
    raw = _parse(train_json, problems, display(train_json, repo))
    categories = _categories(raw)
    known = np.array([c.id for c in categories], dtype=np.int64)
    has_val = params.val_annotations is not None
    parts = [_part(raw, train_root, "train" if has_val else None, known, problems)]
    del raw
    if has_val:
        val_json = existing(repo, params.val_annotations, "data.coco.val_annotations", want_dir=False)
        val_root = existing(repo, params.val_images or params.images, "data.coco.val_images", want_dir=True)
        val_raw = _parse(val_json, problems, display(val_json, repo))
        _match_val_categories(val_raw, categories, problems)
        parts.append(_part(val_raw, val_root, "val", known, problems))
    return _combine(parts, keep_categories(categories, params.classes, "data.coco.classes"))
