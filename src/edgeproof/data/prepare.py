"""Build the canonical prepared dataset for ``params.yaml: data`` and the report on it (``metrics/data.json``).

The user's source is only ever read: images enter the prepared folder as hard links (copies where
links are impossible, or where DVC's own hard-link cache would adopt the user's files) or as
normalised copies, and every write goes to the prepared folder.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from edgeproof.data.canonical import SPLITS, Category, ImageRecord, write_labels_and_annotations
from edgeproof.data.classkeys import class_keys
from edgeproof.data.coco import load_coco
from edgeproof.data.coverage import unseen_categories, val_from
from edgeproof.data.dvcconfig import dvc_cache_types
from edgeproof.data.frames import Frames
from edgeproof.data.identity import split_digests
from edgeproof.data.params import DataParams, SubsetParams
from edgeproof.data.place import Twins, place_split
from edgeproof.data.report import LOSES_BOXES, Problems, enforce
from edgeproof.data.source import SourceDataset, display, select
from edgeproof.data.synthetic import generate
from edgeproof.data.voc import load_voc
from edgeproof.data.yolo import load_yolo
from edgeproof.io import read_json

log = logging.getLogger(__name__)


def use_hardlinks(link: str, repo: Path) -> bool:
    """Whether unchanged images may be hard-linked to the user's files.

    DVC with a ``hardlink`` cache moves an output's files into its cache as they are and makes them
    read-only: with hard links that would be the user's own files, so ``auto`` copies then (and
    when DVC's config cannot be read because DVC is not installed here).
    """
    if link == "copy":
        return False
    types = dvc_cache_types(repo)
    if link == "hardlink":
        if types is not None and "hardlink" in types:
            raise ValueError(
                "params.yaml: data.link: 'hardlink' with DVC's cache.type including hardlink would let DVC take "
                "over (and make read-only) the source images; use 'auto' or 'copy'"
            )
        return True
    if types is None:
        log.warning("DVC is not importable, so its cache.type is unknown: data.link: auto copies images")
        return False
    if "hardlink" in types:
        log.info("DVC cache.type includes hardlink: copying images instead of linking them")
        return False
    return True


def _load(params: DataParams, repo: Path, problems: Problems) -> tuple[SourceDataset, SubsetParams]:
    if params.source == "coco":
        return load_coco(params.coco, repo, problems), params.coco
    if params.source == "voc":
        return load_voc(params.voc, repo, problems), params.voc
    return load_yolo(params.yolo, repo, problems), params.yolo


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identity(path: Path) -> tuple[Path, int] | None:
    """The resolved path and size of an image file; None when it is not a readable file (reported later)."""
    try:
        return path.resolve(), path.stat().st_size
    except (OSError, RuntimeError):  # missing, a symlink loop
        return None


def remove_split_leaks(
    ds: SourceDataset, chosen: dict[str, list[int]], problems: Problems, repo: Path
) -> dict[str, list[int]]:
    """Take out of train every chosen image that is also a val image: the same file once symlinks are
    resolved (a val folder that links to the train folder), or the same bytes under another name.

    Only files whose size matches a val file's are read for a digest. The same pixels under other bytes
    (other metadata) are found later, from the pixels :func:`edgeproof.data.images.inspect` decodes
    anyway (:class:`edgeproof.data.place.Twins`).
    """
    val: dict[Path, str] = {}
    val_sizes: dict[int, list[Path]] = {}
    for i in chosen["val"]:
        ident = _identity(ds.images[i].path)
        if ident is not None:
            val[ident[0]] = display(ds.images[i].path, repo)
            val_sizes.setdefault(ident[1], []).append(ident[0])
    digests: dict[str, str] = {}
    for paths in val_sizes.values():
        for path in paths:
            digests.setdefault(_digest(path), val[path])
    kept = []
    for i in chosen["train"]:
        image = ds.images[i]
        ident = _identity(image.path)
        twin = None
        if ident is not None and ident[0] in val:
            twin = f"the same file as val {val[ident[0]]}"
        elif ident is not None and ident[1] in val_sizes:
            same = digests.get(_digest(ident[0]))
            twin = None if same is None else f"the same bytes as val {same}"
        if twin is None:
            kept.append(i)
        else:
            image.split = "excluded"
            problems.add("split_overlap", f"{display(image.path, repo)}: {twin}")
    return {**chosen, "train": kept}


def split_stats(per_image: Iterable[Sequence[tuple[int, int]]], categories: Sequence[Category]) -> dict[str, Any]:
    """Counts for one split from each image's ``(category_id, iscrowd)`` pairs; per class by its key
    (:func:`edgeproof.data.classkeys.class_keys`: the name, told apart by id where names are shared)."""
    names = class_keys((c.id, c.name) for c in categories)
    per_class: Counter[str] = Counter(dict.fromkeys(names.values(), 0))
    n_images = empty = boxes = crowd = 0
    for anns in per_image:
        n_images += 1
        empty += not anns
        boxes += len(anns)
        crowd += sum(1 for _, c in anns if c)
        per_class.update(names[cat] for cat, _ in anns)
    return {"images": n_images, "boxes": boxes, "crowd_boxes": crowd, "empty_images": empty, "classes": per_class}


def _report(
    source: str, categories: Sequence[Category], stats: dict[str, Any], problems: Problems, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": source,
        "classes": [c.name for c in categories],
        "category_ids": [c.id for c in categories],
        "splits": stats,
        **problems.as_report(),
        **extra,
    }


def _prepare_synthetic(params: DataParams, out: Path) -> dict[str, Any]:
    meta = generate(params.synthetic, params.seed, out)
    categories = [Category(i, n) for i, n in zip(meta.category_ids, meta.names, strict=True)]
    stats = {}
    for split in SPLITS:
        gt = read_json(out / "annotations" / f"{split}.json")
        by_image: dict[int, list[tuple[int, int]]] = {im["id"]: [] for im in gt["images"]}
        for ann in gt["annotations"]:
            by_image[ann["image_id"]].append((ann["category_id"], ann["iscrowd"]))
        stats[split] = {**split_stats(by_image.values(), categories), **split_digests(out, split)}
    return _report("synthetic", categories, stats, Problems(), {"strict": params.strict})


def _lost(problems: Problems) -> list[str]:
    """``kind xN`` for each problem kind found that drops images or boxes."""
    return [f"{k} x{problems.counts[k]}" for k in LOSES_BOXES if problems.counts[k]]


def _empty_hint(split: str, usable: int, selected: int, source: str, problems: Problems) -> str:
    """The ``empty_split`` example for a split left without images, with the likeliest cause: the problems
    that dropped images (all splits: a loader drops them before the split is known), else the selection."""
    lost = _lost(problems)
    if selected and not usable:  # every one was a val image too: val pointing at the train folder
        hint = f"all {selected} were val images too (split_overlap): do train and val name the same images?"
    elif lost:
        hint = f"problems that drop images or boxes (all splits, examples below): {', '.join(lost)}"
    elif usable:
        hint = "none usable"
    else:
        rules = "val_keep_negatives and max_val_images" if split == "val" else "keep_negatives and max_train_images"
        hint = f"check data.{source}'s classes, {rules}"
    return f"{split}: {usable} image(s) selected, {hint}"


def _without_boxes(split: str, stats: dict[str, Any], problems: Problems, info: dict[str, int]) -> str:
    """The ``empty_split`` example for a split whose images hold no box to train on or score, naming what
    removed the boxes (a wrong label folder, pixel coordinates taken for fractions...)."""
    lost = _lost(problems)
    if info.get("boxes_other_classes"):
        lost.append(f"{info['boxes_other_classes']} box(es) of classes not kept")
    crowd = f", only {stats['crowd_boxes']} crowd/difficult region(s)" if stats["crowd_boxes"] else ""
    # the counts are the whole dataset's: a loader reads annotations before the split is known
    why = f"problems that drop boxes (all splits): {', '.join(lost)}" if lost else "the source has none for them"
    return f"{split}: {stats['images']} image(s) but no box to train on or score{crowd}; {why}"


def _place(
    ds: SourceDataset,
    chosen: dict[str, list[int]],
    params: DataParams,
    hardlink: bool,
    repo: Path,
    out: Path,
    problems: Problems,
    frames: Frames,
) -> tuple[dict[str, list[ImageRecord]], Counter[str]]:
    """Place the chosen images of each split; the records per split and how many were placed how.

    Val goes first, so a train image with a val image's pixels is taken out as it is decoded
    (:class:`edgeproof.data.place.Twins`); problems and counts are gathered in split order all the same.
    """
    twins = Twins()
    found = {split: Problems() for split in SPLITS}
    records: dict[str, list[ImageRecord]] = {}
    how: dict[str, Counter[str]] = {}
    for split in ("val", "train"):
        images = [ds.images[i] for i in chosen[split]]
        records[split], how[split] = place_split(
            images, out / "images" / split, hardlink, repo, found[split], frames, split, params.max_image_pixels, twins
        )
    placed: Counter[str] = Counter()
    for split in SPLITS:
        problems.merge(found[split])
        placed.update(how[split])
    return {split: records[split] for split in SPLITS}, placed


def _background_share(val: dict[str, Any]) -> None:
    """Log a val split made mostly of background images (a class subset of a large dataset: COCO's val2017
    for one rare class), which the mAP then mostly scores for false positives: the source's own share, kept
    by the caps, but worth knowing before reading the figure."""
    if val["images"] and 2 * val["empty_images"] > val["images"]:
        log.warning(
            "val: %d of its %d images are background images (no box of a kept class), as in the source; "
            "the mAP counts the false positives on them",
            val["empty_images"],
            val["images"],
        )


def prepare(params: DataParams, repo: Path, out: Path) -> dict[str, Any]:
    """Write the canonical dataset for ``params`` into ``out`` (empty); return the data report.

    Raises :class:`edgeproof.data.report.DatasetError` (with the report) when the data is unusable
    or ``params.strict`` and a problem was found; nothing is written to the source.
    """
    if params.source == "synthetic":
        return _prepare_synthetic(params, out)
    hardlink = use_hardlinks(params.link, repo)
    problems = Problems()
    ds, subset = _load(params, repo, problems)
    origin = val_from(ds, params.val_fraction, params.seed)  # before the leak checks mark train copies excluded
    selected = select(ds, subset, params.seed, params.val_fraction)
    chosen = remove_split_leaks(ds, selected, problems, repo)
    records, placed = _place(ds, chosen, params, hardlink, repo, out, problems, frames := Frames())
    for split in SPLITS:
        if not records[split]:
            usable, picked = len(chosen[split]), len(selected[split])
            problems.add("empty_split", _empty_hint(split, usable, picked, params.source, problems))
    frames.settle(problems)  # the boxes of EXIF-rotated images whose own size cannot tell their frame
    stats = {
        s: split_stats(([(a.category_id, a.iscrowd) for a in r.annotations] for r in records[s]), ds.categories)
        for s in SPLITS
    }
    for split in SPLITS:
        if records[split] and stats[split]["boxes"] == stats[split]["crowd_boxes"]:
            problems.add("empty_split", _without_boxes(split, stats[split], problems, ds.info))
    if not problems.fatal():  # an empty split leaves every class without boxes: that is the problem to fix
        unseen_categories(records, ds, problems, chosen)
    _background_share(stats["val"])
    selection = {**ds.info, "val_from": origin}
    extra = {"strict": params.strict, "images_placed": dict(placed), "selection": selection, "notes": ds.notes}
    report = _report(ds.source, ds.categories, stats, problems, extra)
    for note in ds.notes:
        log.warning("%s", note)
    problems.log()
    enforce(problems, params.strict, report)
    write_labels_and_annotations(out, records, ds.categories, ds.source)
    for split in SPLITS:  # of the files as written: the build gate holds data/prepared to them
        stats[split].update(split_digests(out, split))
    return report
