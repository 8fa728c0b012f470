"""COCO instances JSON -> :class:`SourceDataset`, in linear time and bounded memory.

The file is streamed (:mod:`edgeproof.data.jsonstream`): each annotation is reduced to its id,
image id, category id, box, ``iscrowd`` and ``area`` in compact arrays, and segmentations are never
kept. Checks and the class filter are vectorised over those arrays; the boxes of an image become
Python objects only if that image is selected.

``area``, ``iscrowd`` and the val file's categories are checked in :mod:`edgeproof.data.coco_truth`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.canonical import Category
from edgeproof.data.coco_truth import Raw, as_int, checked_area, checked_crowd, flag, match_val_categories
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
    left_out,
    safe_relative,
    shared_names,
)

log = logging.getLogger(__name__)


def _parse(path: Path, problems: Problems, label: str) -> Raw:
    raw = Raw(label)
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


def _categories(raw: Raw) -> list[Category]:
    cats: dict[int, Category] = {}
    for entry in raw.categories:
        try:
            cat = Category(id=as_int(entry["id"]), name=str(entry["name"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{raw.label}: malformed category entry {entry!r} ({exc})") from None
        if cat.id in cats:
            raise ValueError(f"{raw.label}: category id {cat.id} is defined twice")
        cats[cat.id] = cat
    if not cats:
        raise ValueError(f"{raw.label}: no categories defined")
    return sorted(cats.values(), key=lambda c: c.id)


def _declared_size(label: str, image_id: int, width: Any, height: Any, problems: Problems) -> list[int | None]:
    """An image entry's ``[width, height]``: positive whole numbers (``640`` or ``640.0``, as some exporters
    write them), else None. An absent value declares nothing; any other value is a problem, not a silent None."""
    out: list[int | None] = []
    for key, value in (("width", width), ("height", height)):
        try:
            size = None if value is None else as_int(value)
        except (TypeError, ValueError):
            size = 0
        if size is not None and size <= 0:
            where = f"{label}: image id {image_id}: {key} {value!r}"
            problems.add("annotation_unreadable", f"{where} is not a positive whole number; taken as not declared")
            size = None
        out.append(size)
    return out


def _entries(raw: Raw, problems: Problems) -> list[tuple[int, str, Any, Any]]:
    """The image entries whose id is an integer and whose ``file_name`` a string."""
    entries = []
    for n, (image_id, file_name, width, height) in enumerate(raw.images):
        try:
            image_id = as_int(image_id)
            if not isinstance(file_name, str):
                raise TypeError(f"file_name {file_name!r}")
        except (TypeError, ValueError) as exc:
            problems.add("annotation_unreadable", f"{raw.label}: image entry #{n}: {exc}")
            continue
        entries.append((image_id, file_name, width, height))
    return entries


def _boxes_of(raw: Raw, image_ids: set[int]) -> Counter[int]:
    """How many annotations name each of ``image_ids``."""
    ann_ids = np.frombuffer(raw.image_id, dtype=np.int64)
    return Counter(ann_ids[np.isin(ann_ids, np.fromiter(image_ids, np.int64))].tolist())


def _duplicate_ids(raw: Raw, entries: list[tuple[int, str, Any, Any]], problems: Problems) -> set[int]:
    """Ids listed by more than one image entry: their boxes cannot be told apart, so every entry of
    such an id is dropped with the boxes, each entry a ``duplicate_image_id`` problem."""
    listed = Counter(image_id for image_id, *_ in entries)
    duplicates = {image_id for image_id, n in listed.items() if n > 1}
    if duplicates:
        boxes = _boxes_of(raw, duplicates)
        for image_id, file_name, *_ in (e for e in entries if e[0] in duplicates):
            where = f"{raw.label}: image id {image_id} ({file_name}): listed {listed[image_id]} times"
            problems.add("duplicate_image_id", f"{where}, {boxes[image_id]} box(es) under that id dropped")
    return duplicates


def _images(raw: Raw, root: Path, split: str | None, problems: Problems) -> tuple[np.ndarray, list[SourceImage | None]]:
    """Image entries by unique id; ``None`` where the entry cannot be used (escape, duplicate id or file)."""
    ids: list[int] = []
    entries: list[SourceImage | None] = []
    parsed = _entries(raw, problems)
    duplicates = _duplicate_ids(raw, parsed, problems)
    seen_files: dict[str, int] = {}  # file -> the id of its first (kept) entry
    repeated: list[tuple[int, str, int]] = []
    placed: set[int] = set()
    for image_id, file_name, width, height in parsed:
        if image_id in duplicates:
            if image_id not in placed:  # listed once, so its boxes are dropped with it, not called unknown
                placed.add(image_id)
                ids.append(image_id)
                entries.append(None)
            continue
        ids.append(image_id)
        rel = safe_relative(file_name)
        if rel is None:
            problems.add("path_escape", f"{raw.label}: image id {image_id}: file_name {file_name!r}")
            entries.append(None)
        elif rel in seen_files:
            repeated.append((image_id, file_name, seen_files[rel]))
            entries.append(None)
        else:
            seen_files[rel] = image_id
            w, h = _declared_size(raw.label, image_id, width, height, problems)
            entries.append(SourceImage(image_id, rel, root, w, h, split))
    _report_repeated(raw, repeated, problems)
    return np.asarray(ids, dtype=np.int64), entries


def _report_repeated(raw: Raw, repeated: list[tuple[int, str, int]], problems: Problems) -> None:
    """One ``duplicate_file`` per later entry of a file, naming the boxes lost with it (never merged: the two
    entries may disagree, and which boxes are right cannot be told)."""
    boxes = _boxes_of(raw, {image_id for image_id, *_ in repeated}) if repeated else Counter[int]()
    for image_id, file_name, first in repeated:
        where = f"{raw.label}: image id {image_id}: {file_name} (first listed as image id {first})"
        problems.add("duplicate_file", f"{where}: dropped with its {boxes[image_id]} box(es)")


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


def _part(raw: Raw, root: Path, split: str | None, known: np.ndarray, problems: Problems) -> _Part:
    ids, entries = _images(raw, root, split, problems)
    image_id = np.frombuffer(raw.image_id, dtype=np.int64)
    cat = np.frombuffer(raw.cat, dtype=np.int64)
    box = np.frombuffer(raw.box, dtype=np.float64).reshape(-1, 4)
    img = _image_index(ids, entries, image_id)
    unknown = img == -1
    flag(problems, "unknown_image", unknown, raw, "no image with this id")
    ok = img >= 0
    bad = ok & ~np.isfinite(box).all(axis=1)
    flag(problems, "box_invalid", bad, raw, "non-finite bbox")
    ok &= ~bad
    bad = ok & ~np.isin(cat, known)
    flag(problems, "unknown_category", bad, raw, "category not defined")
    ok &= ~bad
    bad = ok & ((box[:, 2] <= 0) | (box[:, 3] <= 0))
    flag(problems, "box_degenerate", bad, raw, "zero or negative width/height")
    ok &= ~bad
    return _Part(
        images=[e for e in entries if e is not None],
        img=img[ok],
        cat=cat[ok],
        box=box[ok],
        crowd=checked_crowd(raw, ok, problems),
        area=checked_area(raw, box, ok, problems),
    )


def _combine(parts: Sequence[_Part], kept: Sequence[Category], label: str) -> SourceDataset:
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

    return SourceDataset("coco", list(kept), images, np.diff(starts), fill, info, categories_from=label)


def load_coco(params: CocoParams, repo: Path, problems: Problems) -> SourceDataset:
    """Read the COCO source ``params`` names (paths relative to ``repo``); no image is opened."""
    train_json = existing(repo, params.annotations, "data.coco.annotations", want_dir=False)
    train_root = existing(repo, params.images, "data.coco.images", want_dir=True)
    raw = _parse(train_json, problems, display(train_json, repo))
    categories = _categories(raw)
    label = raw.label
    known = np.array([c.id for c in categories], dtype=np.int64)
    has_val = params.val_annotations is not None
    parts = [_part(raw, train_root, "train" if has_val else None, known, problems)]
    del raw
    if has_val:
        val_json = existing(repo, params.val_annotations, "data.coco.val_annotations", want_dir=False)
        val_root = existing(repo, params.val_images or params.images, "data.coco.val_images", want_dir=True)
        val_raw = _parse(val_json, problems, display(val_json, repo))
        if val_raw.categories:
            match_val_categories(val_raw, _categories(val_raw), categories, problems)
        parts.append(_part(val_raw, val_root, "val", known, problems))
    kept = keep_categories(categories, params.classes, "data.coco.classes")
    # after the class filter, so a name it leaves out is reported as dropped with its boxes, not as kept
    shared_names(categories, label, problems, left_out(categories, kept, [p.cat for p in parts]))
    return _combine(parts, kept, label)
