"""Pascal VOC -> :class:`SourceDataset`.

Layout: ``<root>/Annotations/<id>.xml``, ``<root>/JPEGImages/<id>.jpg`` (or another suffix ultralytics
reads, :mod:`edgeproof.data.image_formats`; of two files for one id, the one the XML's ``<filename>``
names) and optionally ``<root>/ImageSets/Main/{train,val}.txt``. VOC boxes are 1-based inclusive pixel
corners; COCO boxes are 0-based ``[x, y, w, h]``, so ``x = xmin - 1`` and ``w = xmax - xmin + 1``.
``difficult`` objects by default (``ignore``) are not trained on and become ``iscrowd`` regions, so
pycocotools scores them by COCO's crowd rule, which is more lenient than VOC's devkit: a crowd region
absorbs every detection whose overlap with it, divided by the *detection's* own area, reaches the IoU
threshold (any small box inside it), where VOC ignores only detections whose ordinary IoU with the
difficult object exceeds 0.5. Scores are comparable with COCO tools, not with VOC's own AP.
Classes are ``data.voc.classes``, else the union of the object names with a usable box; category ids
are ``1..n`` in class order (VOC's own: alphabetical). Each class keeps the files naming it
(:class:`~edgeproof.data.source.Origin`), so a class left without a box can be traced to them.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse as safe_parse

from edgeproof.data.canonical import Category
from edgeproof.data.image_formats import IMAGE_SUFFIXES
from edgeproof.data.params import VocParams
from edgeproof.data.report import Problems
from edgeproof.data.source import (
    Origin,
    SourceBox,
    SourceDataset,
    SourceImage,
    display,
    escapes,
    existing,
    keep_categories,
    safe_relative,
    shared_names,
)

log = logging.getLogger(__name__)

_Object = tuple[str, int, tuple[float, float, float, float]]  # name, difficult, (x, y, w, h)


def _text(node: ET.Element | None, tag: str) -> str | None:
    found = node.find(tag) if node is not None else None
    return found.text.strip() if found is not None and found.text else None


def _size(root: ET.Element) -> tuple[int | None, int | None]:
    size = root.find("size")
    try:
        w, h = int(float(_text(size, "width") or 0)), int(float(_text(size, "height") or 0))
    except ValueError:
        return None, None
    return (w, h) if w > 0 and h > 0 else (None, None)


def _objects(root: ET.Element, where: str, problems: Problems) -> list[_Object]:
    """``(name, difficult, (x, y, w, h))`` per object with a usable box."""
    out = []
    for n, obj in enumerate(root.iter("object")):
        name, box = _text(obj, "name"), obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (float(_text(box, k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            xmin = ymin = xmax = ymax = float("nan")
        if name is None or not np.isfinite([xmin, ymin, xmax, ymax]).all():
            problems.add("box_invalid", f"{where}: object #{n} ({name}): missing name or bndbox")
            continue
        bbox = (xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1)
        if bbox[2] <= 0 or bbox[3] <= 0:
            problems.add("box_degenerate", f"{where}: object #{n} ({name}): {[xmin, ymin, xmax, ymax]}")
            continue
        difficult = (_text(obj, "difficult") or "").lower() in ("1", "true")
        out.append((name, int(difficult), (bbox[0], bbox[1], bbox[2], bbox[3])))
    return out


def _split_ids(root: Path, params: VocParams) -> dict[str, str] | None:
    """Image id -> ``train``/``val``/``both`` from ImageSets/Main, or None when there are no split files."""
    main = root / "ImageSets" / "Main"
    files = {"train": main / f"{params.train_set}.txt", "val": main / f"{params.val_set}.txt"}
    missing = [f for f in files.values() if not f.is_file()]
    if len(missing) == len(files):
        log.info("%s has no split files: seeded split", main)
        return None
    if missing:
        names = ", ".join(str(f) for f in missing)
        raise FileNotFoundError(f"VOC split file(s) missing: {names} (see data.voc.train_set / data.voc.val_set)")
    ids: dict[str, str] = {}
    for split, path in files.items():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.split():  # "<id>" or, in per-class files, "<id> <1|0|-1>": every id is in the split
                stem = line.split()[0]
                ids[stem] = "both" if ids.get(stem, split) != split else split
    return ids


def _images_by_stem(img_dir: Path) -> dict[str, list[str]]:
    """The file names in ``img_dir`` with a suffix ultralytics reads, sorted, by stem (``x`` -> x.avif, x.jpg)."""
    images: dict[str, list[str]] = {}
    for p in sorted(img_dir.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            images.setdefault(p.stem, []).append(p.name)
    return images


def _image_file(
    stem: str, filename: str | None, images: dict[str, list[str]], where: str, problems: Problems
) -> str | None:
    """The image of annotation ``stem``: its one ``JPEGImages/<stem>.*``; of several (x.avif, x.jpg), the one
    the XML's ``<filename>`` names, else none (``ambiguous_image``: never a silent pick); of none, ``<filename>``."""
    found = images.get(stem, [])
    if len(found) == 1:
        return found[0]
    if filename in found:  # x.avif and x.jpg: the annotation says which it was drawn on
        return filename
    if found:
        said = f"its <filename> {filename!r} names none of them" if filename else "it has no <filename> to say which"
        problems.add("ambiguous_image", f"{where}: JPEGImages/{' and JPEGImages/'.join(found)} share its id; {said}")
        return None
    if filename is None:
        return f"{stem}.jpg"  # reported as a missing file when the image is placed
    rel = safe_relative(filename)
    if rel is None:
        problems.add("path_escape", f"{where}: filename {filename!r}")
    return rel


def _missing_annotations(
    splits: dict[str, str], ann_dir: Path, params: VocParams, repo: Path, problems: Problems
) -> None:
    """Every id a split file lists without an ``Annotations/<id>.xml`` is a ``missing_file``."""
    found = {p.stem for p in ann_dir.glob("*.xml")}
    sets = {"train": params.train_set, "val": params.val_set, "both": f"{params.train_set} and {params.val_set}"}
    for stem, split in splits.items():
        if stem not in found:
            where = display(ann_dir / f"{stem}.xml", repo)
            problems.add("missing_file", f"{where}: listed in ImageSets/Main/{sets[split]}, no annotation file")


def load_voc(params: VocParams, repo: Path, problems: Problems) -> SourceDataset:
    """Read the VOC source ``params`` names (relative to ``repo``); no image is opened."""
    root = existing(repo, params.root, "data.voc.root", want_dir=True)
    ann_dir = existing(repo, f"{params.root}/Annotations", "data.voc.root (Annotations/)", want_dir=True)
    img_dir = existing(repo, f"{params.root}/JPEGImages", "data.voc.root (JPEGImages/)", want_dir=True)
    images = _images_by_stem(img_dir)
    splits = _split_ids(root, params)
    if splits is not None:
        _missing_annotations(splits, ann_dir, params, repo, problems)
    entries: list[tuple[SourceImage, list[_Object], str]] = []
    for xml in sorted(ann_dir.glob("*.xml")):
        if splits is not None and xml.stem not in splits:
            continue
        where = display(xml, repo)
        if escapes(xml, root) is not None:
            problems.add("path_escape", f"{where}: a symlink leads outside {display(root, repo)}")
            continue
        try:  # a VOC file has no DTD: one (entity bombs, external entities) is refused, never expanded
            tree = safe_parse(xml, forbid_dtd=True).getroot()
        except DefusedXmlException as exc:
            problems.add("annotation_unreadable", f"{where}: XML with a DTD or entities is not allowed ({exc})")
            continue
        except (ET.ParseError, OSError) as exc:
            problems.add("annotation_unreadable", f"{where}: {exc}")
            continue
        file = _image_file(xml.stem, _text(tree, "filename"), images, where, problems)
        if file is None:
            continue
        split = None if splits is None else splits[xml.stem]
        if split == "both":
            problems.add("split_overlap", f"{where}: listed in both {params.train_set} and {params.val_set}")
            split = "val"
        w, h = _size(tree)
        image = SourceImage(len(entries) + 1, file, img_dir, w, h, split)
        entries.append((image, _objects(tree, where, problems), where))
    return _dataset(entries, params, display(ann_dir, repo), problems)


def _held(difficult: int, mode: str) -> str:
    """Why ``difficult`` objects of a class in one file are no boxes to train on (:class:`Origin`'s ``held``)."""
    if not difficult or mode == "train":
        return ""
    if mode == "ignore":
        return f"{difficult} difficult object(s): crowd region(s), never trained on (data.voc.difficult: ignore)"
    return f"{difficult} difficult object(s) dropped (data.voc.difficult: drop)"


def _origins(objs: list[_Object], ids: dict[str, int], xml: str, index: int, mode: str) -> Iterator[tuple[int, Origin]]:
    """``(category id, Origin)`` for each kept class the annotation file ``xml`` names."""
    difficult = Counter(name for name, hard, _ in objs if hard)
    for name in dict.fromkeys(name for name, _, _ in objs if name in ids):
        yield ids[name], Origin(xml, index, _held(difficult[name], mode))


def _dataset(
    entries: list[tuple[SourceImage, list[_Object], str]], params: VocParams, where: str, problems: Problems
) -> SourceDataset:
    """The classes (``data.voc.classes``, else every object name with a usable box, sorted), each image's boxes
    of them, and which files name each class (a class whose objects are all difficult has no box)."""
    found = sorted({name for _, objs, _ in entries for name, _, _ in objs})
    keep_categories([Category(0, n) for n in found], params.classes, "data.voc.classes")  # names must exist
    categories = [Category(i + 1, n) for i, n in enumerate(params.classes or found)]
    ids = {c.name: c.id for c in categories}
    n_boxes, other = [], Counter[str]()
    origins: dict[int, list[Origin]] = {}
    for index, (image, objs, xml) in enumerate(entries):
        for name, difficult, (x, y, w, h) in objs:
            if name not in ids:
                other[name] += 1
            elif not (difficult and params.difficult == "drop"):
                crowd = int(difficult and params.difficult == "ignore")
                image.boxes.append(SourceBox(ids[name], (x, y, w, h), crowd))
        n_boxes.append(len(image.boxes))
        for category_id, origin in _origins(objs, ids, xml, index, params.difficult):
            origins.setdefault(category_id, []).append(origin)
    shared_names(categories, where, problems, other)  # "Dog" beside "dog": one class typed two ways
    images = [im for im, _, _ in entries]
    info = {"boxes_other_classes": sum(other.values())}
    n = np.asarray(n_boxes, dtype=np.int64)
    defined_by = "params.yaml: data.voc.classes" if params.classes else ""  # else the files naming each class
    return SourceDataset("voc", categories, images, n, None, info, categories_from=defined_by, origins=origins)
