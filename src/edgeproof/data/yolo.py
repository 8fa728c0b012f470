"""An ultralytics YOLO dataset (``data.yaml`` + images/labels folders) -> :class:`SourceDataset`.

Resolved the way ultralytics 8.4's ``check_det_dataset`` does: ``path`` (default: the yaml's folder;
relative to it, else to the repo), ``train``/``val`` each a folder (searched recursively), a ``.txt``
list of images or a list of those; ``validation`` is read as ``val`` when there is no ``val`` key; a
single entry that does not exist but starts with ``../`` is tried without it (a Roboflow export's
``train: ../train/images`` beside its ``train/`` folder). Both are said in the dataset's notes. An
image's label is the same path with the last ``images/`` replaced by ``labels/`` and a ``.txt``
suffix. A label row is ``class cx cy w h`` (fractions) or ``class x1 y1 x2 y2 ...`` (a polygon,
boxed). Category ids are ``class index + 1``, as ultralytics writes COCO JSON for non-COCO
datasets; without a ``val`` (or ``validation``) entry val is a seeded split of train.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgeproof.data.canonical import Category
from edgeproof.data.frames import RowBox
from edgeproof.data.params import YoloParams
from edgeproof.data.report import Problems
from edgeproof.data.source import (
    SourceBox,
    SourceDataset,
    SourceImage,
    display,
    escapes,
    existing,
    keep_categories,
    left_out,
    shared_names,
)
from edgeproof.data.yolo_files import Listing, check_labels_found, label_path, list_images, orphan_labels
from edgeproof.io import unique_key_loader

log = logging.getLogger(__name__)


def _names(data: dict[str, Any], where: str) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            by_index = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            by_index = {}
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f"{where}: names must be indexed 0..n-1, got keys {sorted(names)}")
        names = [by_index[i] for i in range(len(by_index))]
    if not isinstance(names, list) or not names:
        raise ValueError(f"{where}: 'names' must be a non-empty list or {{index: name}} mapping")
    if "nc" in data and _class_count(data["nc"], where) != len(names):
        raise ValueError(f"{where}: nc is {data['nc']!r} but {len(names)} names are given")
    # ultralytics would name such a class 'None' (str(None)) or '': a class without a name is a typo
    blank = [i for i, n in enumerate(names) if n is None or not str(n).strip()]
    if blank:
        raise ValueError(f"{where}: names: class {blank[0]} has no name ({names[blank[0]]!r}); give every class one")
    return [str(n) for n in names]


def _class_count(nc: Any, where: str) -> int:
    """``nc`` as ultralytics reads it: an integer, or an integer-like value (``'2'``, ``2.0``)."""
    if isinstance(nc, int):
        return nc
    try:
        value = float(nc)
        if value != int(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: nc: {nc!r} must be an integer (the number of names)") from None
    return int(value)


def _nc_reading(data: dict[str, Any], n: int, where: str) -> list[str]:
    """The note for an ``nc`` read as ultralytics reads it (``'2'``, ``2.0``): said, as every such reading is."""
    nc = data.get("nc")
    if nc is None or (isinstance(nc, int) and not isinstance(nc, bool)):
        return []
    return [f"{where}: nc {nc!r} read as {n}, as ultralytics reads it (write nc: {n})"]


def _root(data: dict[str, Any], yaml_path: Path, repo: Path) -> Path:
    given = data.get("path")
    if not given:
        return yaml_path.parent
    for base in (yaml_path.parent, repo):
        if (base / str(given)).is_dir():
            root = (base / str(given)).resolve()
            if not root.is_relative_to(repo.resolve()):
                log.warning("%s: dataset path %s is outside the repo: DVC will not see it change", yaml_path, root)
            return root
    raise FileNotFoundError(
        f"{display(yaml_path, repo)}: dataset path {given!r} not found (relative to the yaml or the repo)"
    )


def _entry_path(entry: str, root: Path, where: str, notes: list[str]) -> Path:
    """``root / entry``, or, as ultralytics does for a single entry, ``root / entry[3:]`` when that does not
    exist and ``entry`` starts with ``../`` (Roboflow writes ``../train/images`` beside its ``train/``)."""
    path = root / entry
    if not path.exists() and entry.startswith("../") and (root / entry[3:]).exists():
        notes.append(
            f"{where}: {entry!r} does not exist, so {entry[3:]!r} in the dataset folder is read, as ultralytics "
            f"does (a Roboflow export's path); write {entry[3:]!r} to say so"
        )
        return root / entry[3:]
    return path


_ROW_SHAPE = "a row is `class cx cy w h` (5 values) or a polygon `class x1 y1 x2 y2 ...` (an odd count >= 7)"


def _row_box(values: list[float]) -> tuple[float, float, float, float] | None:
    if len(values) == 5:
        cx, cy, w, h = values[1:]
        return (cx - w / 2, cy - h / 2, w, h)
    if len(values) >= 7 and len(values) % 2 == 1:  # a polygon: class x1 y1 x2 y2 ...
        xs, ys = values[1::2], values[2::2]
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    return None


def read_labels(path: Path, n_classes: int, where: str, problems: Problems) -> list[SourceBox]:
    """The boxes of one label file (fractions of the image size); bad rows are reported and skipped."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.add("annotation_unreadable", f"{where}: {exc}")
        return []
    boxes: list[SourceBox] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        box = _row_box(values) if values else None
        if box is None or not np.isfinite(values).all():
            problems.add("box_invalid", f"{where}:{n}: {line.strip()[:80]!r} ({_row_problem(values)})")
        elif not (values[0].is_integer() and 0 <= values[0] < n_classes):
            problems.add("unknown_category", f"{where}:{n}: class {values[0]:g} (dataset has {n_classes})")
        elif box[2] <= 0 or box[3] <= 0:
            problems.add("box_degenerate", f"{where}:{n}: {line.strip()[:80]!r}")
        elif (sb := RowBox(int(values[0]) + 1, box, normalized=True, row=f"{where}:{n}")) in boxes:
            problems.add("duplicate_label_row", f"{where}:{n}: {line.strip()[:80]!r} repeats an earlier row")
        else:
            boxes.append(sb)
    return boxes


def _row_problem(values: list[float]) -> str:
    """Why a row is no box, for the report: a 6th value is what a predictions file (with a confidence) has."""
    if not values:
        return f"not all numbers; {_ROW_SHAPE}"
    if not np.isfinite(values).all():
        return "a value is not finite"
    extra = "; a 6th value is what a predictions file writes (a confidence), not a label" if len(values) == 6 else ""
    return f"{len(values)} values: {_ROW_SHAPE}{extra}"


def _read_yaml(path: Path, where: str) -> dict[str, Any]:
    """data.yaml as ultralytics reads it (PyYAML's safe loader), except that a key given twice is an error:
    PyYAML keeps the last silently, so ``names: {1: square, 1: triangle}`` would rename a class."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=unique_key_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = " ".join(f"{exc.context or ''} {exc.problem or ''}".split())
        if what.startswith("duplicate key"):
            what += " (given twice; ultralytics would keep the last silently): keep one"
        raise ValueError(f"{where}: not valid YAML ({at}{what})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with 'train', 'val' and 'names'")
    return data


def _split_entry(data: dict[str, Any], split: str, where: str, notes: list[str]) -> Any:
    """The yaml's entry for ``split``; ``validation`` for val when there is no ``val`` key (as ultralytics)."""
    if split == "val" and "val" not in data and "validation" in data:
        notes.append(f"{where}: 'validation' read as 'val', as ultralytics does (it warns: rename it 'val')")
        return data["validation"]
    return data.get(split)


def _split_images(
    data: dict[str, Any], split: str, root: Path, where: str, notes: list[str], listing: Listing
) -> list[Path] | None:
    entry = _split_entry(data, split, where, notes)
    if not entry:
        return None
    where = f"{where}: {split}"
    if not isinstance(entry, list):  # ultralytics' ../ fallback is for a single entry only
        path = _entry_path(str(entry), root, where, notes)
        return list_images(path, str(entry), root, where, listing, single=True)
    return [p for e in entry for p in list_images(root / str(e), str(e), root, where, listing)]


def _label_boxes(root: Path, rel: str, n_classes: int, repo: Path, problems: Problems) -> list[SourceBox] | None:
    """The boxes of image ``rel``'s label file; ``None`` when it has none (a background image)."""
    labels = label_path(root / rel)
    if not labels.is_file():
        return None
    if escapes(labels, root) is not None:
        problems.add("path_escape", f"{display(labels, repo)}: a symlink leads outside the dataset")
        return []
    return read_labels(labels, n_classes, display(labels, repo), problems)


def _listed_file(
    path: Path,
    split: str | None,
    at: tuple[Path, Path, str],
    seen: set[tuple[str, str | None]],
    mapped: dict[Path, Path],
    problems: Problems,
) -> str | None:
    """``path`` relative to the dataset root (posix) when it is to be read, else None with the problem
    reported: outside the root, listed twice in its split, or a link whose target is gone. ``at``: the
    root, the repo and the yaml's name; ``mapped`` gets its label file (read, or lost with the image)."""
    root, repo, where = at
    rel = os.path.relpath(os.path.normpath(path), root)
    if rel == ".." or rel.startswith(f"..{os.sep}") or Path(rel).is_absolute():
        problems.add("path_escape", f"{where}: {path} is outside the dataset root {display(root, repo)}")
        return None
    rel = Path(rel).as_posix()
    mapped[label_path(root / rel)] = root / rel
    if (rel, split) in seen:
        problems.add("duplicate_file", f"{where}: {split}: {rel}")
        return None
    seen.add((rel, split))
    if (root / rel).is_symlink() and not (root / rel).exists():  # what a moved or unpulled dataset leaves
        target = (root / rel).readlink()
        problems.add("missing_file", f"{display(root / rel, repo)}: a symlink to {target}, which does not exist")
        return None
    return rel


def load_yolo(params: YoloParams, repo: Path, problems: Problems) -> SourceDataset:
    """Read the YOLO dataset ``params.data_yaml`` describes (relative to ``repo``); no image is opened."""
    yaml_path = existing(repo, params.data_yaml, "data.yolo.data_yaml", want_dir=False)
    where = display(yaml_path, repo)
    data = _read_yaml(yaml_path, where)
    names = _names(data, where)
    root = _root(data, yaml_path, repo)
    notes = _nc_reading(data, len(names), where)
    listing = Listing()
    train = _split_images(data, "train", root, where, notes, listing)
    if train is None:
        raise ValueError(f"{where}: no 'train' entry")
    val = _split_images(data, "val", root, where, notes, listing)
    listed = [(p, "train" if val is not None else None) for p in train] + [(p, "val") for p in val or []]
    categories = [Category(i + 1, n) for i, n in enumerate(names)]
    kept = keep_categories(categories, params.classes, "data.yolo.classes")
    kept_ids = {c.id for c in kept}
    images: list[SourceImage] = []
    seen: set[tuple[str, str | None]] = set()
    info = {"boxes_other_classes": 0, "images_without_label_file": 0}
    per_split: dict[str, int] = {"train": 0, "val": 0}
    unlabelled: dict[str, list[Path]] = {"train": [], "val": []}
    other: list[int] = []  # the category id of each box data.yolo.classes leaves out
    read: dict[str, list[SourceBox] | None] = {}  # an image in both splits: its label file read (and reported) once
    mapped: dict[Path, Path] = {}  # each listed image's label file -> the image: the label files read
    for path, split in listed:
        rel = _listed_file(path, split, (root, repo, where), seen, mapped, problems)
        if rel is None:
            continue
        per_split[split or "train"] += 1
        if rel not in read:
            read[rel] = _label_boxes(root, rel, len(names), repo, problems)
        boxes = read[rel]
        if boxes is None:
            boxes, info["images_without_label_file"] = [], info["images_without_label_file"] + 1
            unlabelled[split or "train"].append(root / rel)
        kept_boxes = [b for b in boxes if b.category_id in kept_ids]
        other.extend(b.category_id for b in boxes if b.category_id not in kept_ids)
        images.append(SourceImage(len(images) + 1, rel, root, None, None, split, kept_boxes))
    check_labels_found(unlabelled, per_split, repo, problems)
    orphan_labels(listing, mapped, repo, problems)
    if (note := listing.skipped_note(where)) is not None:
        notes.append(note)
    info["files_skipped"] = len(listing.skipped)
    info["boxes_other_classes"] = len(other)
    shared_names(categories, where, problems, left_out(categories, kept, [np.asarray(other, dtype=np.int64)]))
    n_boxes = np.asarray([len(im.boxes) for im in images], dtype=np.int64)
    return SourceDataset("yolo", kept, images, n_boxes, None, info, notes, categories_from=where)
