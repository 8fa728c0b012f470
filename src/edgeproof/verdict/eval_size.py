"""How much val data an mAP figure comes from, and whether that is enough to judge it.

pycocotools' mAP is the mean, over the classes with val boxes, of each class's AP: a class with 2 boxes
weighs as much as one with 1000, and its AP moves by a large step with each box found or missed. An mAP
over a handful of boxes measures nothing, so the accuracy rules (:data:`SIZED_RULES`) over an evaluation
below the profile's minimum (``gate.min_val_images``, ``gate.min_val_boxes_per_class``: the fewest boxes
of any class in the mean) are *inconclusive*, never a pass nor a fail, and their reason names the count,
the class with the fewest boxes and the key. An evaluation that does not say how many images and boxes
it scored (``n_images``, ``n_gt``, ``per_class[].n_gt``) is inconclusive too; one whose counts are no
counts is invalid. Every judged accuracy rule carries ``over`` (:func:`over`): what its figure comes
from, shown in ``gate.md``, with how many of the images are background (``n_background_images``: no box,
only false positives to find there; an evaluation older than that count shows none) and, where the data
stage left val's background images out on purpose (:func:`with_dropped`), that the mAP does not count the
false positives on them. Python 3.8 (the device gate judges the board's scores with it).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

from edgeproof.verdict.rules import FAIL, INCONCLUSIVE, INVALID, PASS, Malformed, gate_key, is_count

# The rules whose figure is an mAP (or a difference of two over the same val set)
SIZED_RULES = frozenset(("map50", "map50_95", "map_drop", "regression_map"))
IMAGES_KEY, BOXES_KEY = "min_val_images", "min_val_boxes_per_class"


class EvalSize(NamedTuple):
    """The val set behind an mAP: images, boxes, the classes in the mean and the one with the fewest boxes."""

    images: int
    boxes: int
    classes: int  # classes with val boxes: those the mAP averages over
    fewest: Optional[Tuple[str, int]]  # (class name, its boxes); None: no class has a box
    no_boxes: int  # classes without a val box: no AP, not in the mean
    background: Optional[int] = None  # images without a box; None: the evaluation does not say


def _count(value: Any, where: str) -> Any:
    """``value`` if it is a count (a non-negative JSON integer), None if missing, else :class:`Malformed`."""
    if value is None:
        return None
    if not is_count(value):
        return Malformed(where, value, "a count (a whole number >= 0)")
    return value


def _per_class(rows: Any) -> Any:
    """``[(class name, boxes)]`` of ``per_class``; None where it or a row's ``n_gt`` is missing, a
    :class:`Malformed` where one is no list, row or count."""
    if rows is None:
        return None
    if not isinstance(rows, list):
        return Malformed("per_class", rows, "a list of class rows")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            return Malformed("per_class[{}]".format(i), row, "a class's row")
        boxes = _count(row.get("n_gt"), "per_class[{}].n_gt".format(i))
        if boxes is None or isinstance(boxes, Malformed):
            return boxes
        out.append((str(row.get("name") or row.get("category_id")), boxes))
    return out


def read_size(scores: Any) -> Tuple[Optional[EvalSize], Optional[str], bool]:
    """(the size, None, False) of an evaluation's ``scores``; else (None, why it is unknown, whether that
    is because a count is no count: invalid rather than missing)."""
    scores = scores if isinstance(scores, Mapping) else {}
    images, boxes = _count(scores.get("n_images"), "n_images"), _count(scores.get("n_gt"), "n_gt")
    background = _count(scores.get("n_background_images"), "n_background_images")  # missing: not said
    rows = _per_class(scores.get("per_class"))
    for found in (images, boxes, background, rows):
        if isinstance(found, Malformed):
            return None, found.reason(), True
    absent = [k for k, v in (("n_images", images), ("n_gt", boxes), ("per_class[].n_gt", rows)) if v is None]
    if absent:
        why = "no {}: how many val images and boxes the mAP comes from is unknown".format(", ".join(absent))
        return None, why, False
    clash = contradictions(scores)
    if clash:
        return None, "; ".join(clash), True
    scored = [r for r in rows if r[1] > 0]
    fewest = min(scored, key=lambda r: r[1]) if scored else None
    return EvalSize(images, boxes, len(scored), fewest, len(rows) - len(scored), background), None, False


def contradictions(scores: Mapping[str, Any]) -> List[str]:
    """The counts of one evaluation that contradict each other (both gates refuse them): an ``n_gt`` other
    than the sum of ``per_class[].n_gt`` (one evaluation counts the same non-crowd boxes for both), more
    ``n_background_images`` than ``n_images``. Counts missing or no counts are :func:`read_size`'s business."""
    images, background, total = scores.get("n_images"), scores.get("n_background_images"), scores.get("n_gt")
    out = []
    if is_count(images) and is_count(background) and background > images:
        out.append("n_background_images {} is more than its n_images {}".format(background, images))
    rows = scores.get("per_class")
    counts = [r.get("n_gt") for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []
    if is_count(total) and counts and all(is_count(n) for n in counts) and sum(counts) != total:
        out.append("n_gt {} differs from the sum of per_class[].n_gt {}".format(total, sum(counts)))
    return out


def over(size: EvalSize) -> Dict[str, Any]:
    """A rule's ``over`` (gate.json): the val set its figure comes from."""
    fewest = {"class": size.fewest[0], "boxes": size.fewest[1]} if size.fewest else None
    out = {"images": size.images, "boxes": size.boxes, "classes": size.classes, "fewest": fewest}
    if size.background is not None:
        out["background_images"] = size.background
    return {**out, "classes_without_boxes": size.no_boxes}


DROPPED = "val_negatives_dropped"  # over's key, after metrics/data.json's selection.val_negatives_dropped


def with_dropped(rules: Iterable[Dict[str, Any]], dropped: Optional[int]) -> List[Dict[str, Any]]:
    """``rules`` with each of :data:`SIZED_RULES` saying in its ``over`` that the data stage left ``dropped``
    background images out of val (``val_keep_negatives: false``; None or 0: none were)."""
    rules = list(rules)
    for rule in (r for r in rules if dropped and r["name"] in SIZED_RULES):
        rule["over"] = {**(rule.get("over") or {}), DROPPED: dropped}
    return rules


LEFT_OUT = "val_keep_negatives: false left out {} background images: false positives on them are not counted"


def described(found: Any) -> str:
    """A rule's ``over`` as ``gate.md`` shows it: ``over 50 images (4 background), 116 boxes (fewest:
    triangle 33)``, and how many classes have no val box (``1 class has none``: no AP, the mean leaves them
    out); "" where it has none. What the data stage left out is :func:`left_out`'s."""
    if not isinstance(found, Mapping) or "images" not in found:
        return ""
    fewest = found.get("fewest") if isinstance(found.get("fewest"), Mapping) else None
    notes = ["fewest: {} {}".format(fewest.get("class"), fewest.get("boxes"))] if fewest else []
    unscored = found.get("classes_without_boxes")
    if unscored:
        notes.append("{} class{} none".format(unscored, " has" if unscored == 1 else "es have"))
    tail = " ({})".format("; ".join(notes)) if notes else ""
    background = found.get("background_images")
    of_them = "" if background is None else " ({} background)".format(background)
    return "over {} images{}, {} boxes{}".format(found.get("images"), of_them, found.get("boxes"), tail)


def left_out(found: Any) -> str:
    """The background images the data stage left out of val (:func:`with_dropped`), as ``gate.md`` says it
    beside an accuracy rule; "" where none were (or ``over`` holds no count of them)."""
    dropped = found.get(DROPPED) if isinstance(found, Mapping) else None
    return LEFT_OUT.format(dropped) if is_count(dropped, 1) else ""


def too_small(gate: Any, size: EvalSize, profile: Optional[str] = None) -> Optional[str]:
    """Why ``size`` is too small for the profile ``gate``'s accuracy rules (None: it is not)."""
    short = []
    if size.fewest is None:
        short.append("no class has a val box")
    elif size.fewest[1] < gate.min_val_boxes_per_class:
        what = "class {} has {} boxes, under {} {} (each class in the mean needs as many)"
        short.append(what.format(*size.fewest, gate_key(profile, BOXES_KEY), gate.min_val_boxes_per_class))
    if size.no_boxes:  # the model ships detecting them, and nothing measured how well: not a pass
        short.append("{} class(es) without a val box: their accuracy is not measured".format(size.no_boxes))
    if size.images < gate.min_val_images:
        short.append("{} images, under {} {}".format(size.images, gate_key(profile, IMAGES_KEY), gate.min_val_images))
    if not short:
        return None
    why = "{}, too few to measure accuracy: {}; add val images (of these classes), or lower the key knowingly"
    return why.format(described(over(size)), "; ".join(short))


def held_by_size(
    rules: Iterable[Dict[str, Any]], gate: Any, scores: Any, profile: Optional[str] = None
) -> List[Dict[str, Any]]:
    """``rules`` with each of :data:`SIZED_RULES` given ``over`` and, where it passed or failed on an
    evaluation too small or of unknown size (module doc), made inconclusive (invalid for counts that are
    no counts), the reason naming the count and the key. A rule that is already not judged keeps its own
    reason. Idempotent; ``profile``: the profile name the keys are shown under."""
    rules = list(rules)
    size, unknown, malformed = read_size(scores)
    for rule in (r for r in rules if r["name"] in SIZED_RULES):
        if size is not None:
            rule["over"] = over(size)
        if rule["status"] not in (PASS, FAIL):
            continue
        why = too_small(gate, size, profile) if size is not None else "{} not judged: {}".format(rule["name"], unknown)
        if why is not None:
            rule.update(status=INVALID if malformed else INCONCLUSIVE, passed=False, reason=why)
    return rules


def size_record(evaluation: Mapping[str, Any]) -> Dict[str, Any]:
    """The counts :func:`read_size` reads, copied from an ``eval.json`` (for ``release.json``'s variant
    records, which the device gate judges a profile by when it does not evaluate on the device): missing
    stays missing."""
    rows = evaluation.get("per_class")
    if isinstance(rows, list):
        rows = [{k: r.get(k) for k in ("category_id", "name", "n_gt")} if isinstance(r, Mapping) else r for r in rows]
    counts = {k: evaluation.get(k) for k in ("n_images", "n_background_images", "n_gt")}
    return {**counts, "per_class": rows}
