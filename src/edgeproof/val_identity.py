"""The build gate's ``val_identity`` rule: ``data/prepared``'s val is the one the data stage made.

The gated ``eval.json`` and the gate's own scoring (``rescored``) both score against whatever
``data/prepared/annotations/val.json`` says now: a val set rewritten after the data stage (its ground truth
relabelled from the model's own detections, hard images dropped) and made "clean" with ``dvc commit`` gives
any model an mAP near 1. The data stage records what it wrote in ``metrics/data.json``, a git-tracked file
(``splits.val``: the counts, and the sha256 digests of :mod:`edgeproof.data.identity`); this rule recomputes
the digests from ``data/prepared`` and holds the gated evaluation's counts (``n_images``, ``n_gt``,
``n_gt_crowd``, ``per_class[].n_gt``) to that record. Background images that ``val_keep_negatives: false``
left out are in neither: the data stage counts val after dropping them. A difference is invalid, naming the
file, the key and both values; a record without the digests (written by older code) is inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.data.identity import DIGEST_KEYS, split_digests, split_files
from edgeproof.io import read_json
from edgeproof.tracking.class_metrics import eval_class_labels
from edgeproof.verdict.rules import INCONCLUSIVE, INVALID, PASS, result

VAL_IDENTITY = "val_identity"
_METRIC = "data/prepared val vs metrics/data.json splits.val"


def _count_problems(
    eval_metrics: Mapping[str, Any], source: str, val: Mapping[str, Any], where: str
) -> list[tuple[str, str]]:
    """``(key, why)`` for each of the gated evaluation's val counts that differ from the data stage's
    ``splits.val`` (``where``: its file)."""
    boxes, crowd = val.get("boxes"), val.get("crowd_boxes")
    pairs = [("n_images", "images", val.get("images"))]
    if isinstance(boxes, int) and isinstance(crowd, int):  # the evaluation's n_gt leaves crowd boxes out
        pairs += [("n_gt", "boxes - crowd_boxes", boxes - crowd), ("n_gt_crowd", "crowd_boxes", crowd)]
    out = [
        (key, f"{source} {key} {eval_metrics.get(key)!r} differs from {where} splits.val.{theirs} {mine!r}")
        for key, theirs, mine in pairs
        if key in eval_metrics and eval_metrics.get(key) != mine
    ]
    classes = val.get("classes")
    if crowd == 0 and isinstance(classes, Mapping):  # data.json's class counts include crowd boxes
        for row, key in eval_class_labels(eval_metrics):  # keyed alike (edgeproof.data.classkeys)
            if row.get("n_gt") != classes.get(key):
                why = f"{source} per_class[{key}].n_gt {row.get('n_gt')!r} differs from {where} splits.val.classes"
                out.append((f"per_class[{key}].n_gt", f"{why}.{key} {classes.get(key)!r}"))
    return out


def _digest_problems(val: Mapping[str, Any], data: Path, where: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(``(key, why)`` for the digests of ``data``'s val that differ from ``where``'s, the keys ``where`` does
    not record)."""
    found, files = split_digests(data, "val"), split_files(data, "val")
    absent = [key for key in DIGEST_KEYS if not isinstance(val.get(key), str)]
    differ = [
        (key, f"{files[key].as_posix()}: {key} {found[key]} differs from {where} splits.val.{key} {val[key]}")
        for key in DIGEST_KEYS
        if key not in absent and found[key] != val[key]
    ]
    return differ, absent


def val_identity_rule(
    eval_metrics: Mapping[str, Any], source: str, data: Path, data_metrics: Path | None
) -> dict[str, Any]:
    """``val_identity``: ``data``'s val split and the gated evaluation ``eval_metrics`` (read from ``source``)
    against the data stage's record of val in ``data_metrics`` (module doc); never raises on a missing file."""
    eval_metrics = eval_metrics if isinstance(eval_metrics, Mapping) else {}  # its own rule says it is no object
    if data_metrics is None or not data_metrics.is_file():
        why = f"no data stage report ({data_metrics}): {data.as_posix()}'s val is held to nothing"
        return result(VAL_IDENTITY, _METRIC, "==", "equal", None, source, INCONCLUSIVE, why)
    where = data_metrics.as_posix()
    report = read_json(data_metrics)
    splits = report.get("splits") if isinstance(report, Mapping) else None
    val = splits.get("val") if isinstance(splits, Mapping) else None
    if not isinstance(val, Mapping):
        why = f"{where} has no splits.val: {data.as_posix()}'s val is held to nothing"
        return result(VAL_IDENTITY, _METRIC, "==", "equal", None, source, INCONCLUSIVE, why)
    differ, absent = _digest_problems(val, data, where)
    problems = differ + _count_problems(eval_metrics, source, val, where)
    if problems:
        why = "; ".join(text for _, text in problems) + " (val was edited after the data stage: rerun `dvc repro data`)"
        measured = f"differs: {', '.join(key for key, _ in problems)}"[:80]  # gate.md's cell; values: the reason
        return result(VAL_IDENTITY, _METRIC, "==", "equal", measured, source, INVALID, why)
    if absent:
        why = (
            f"{where} has no splits.val.{', '.join(absent)} (written by older code): {data.as_posix()}'s val "
            "is not held to the data stage's record; rerun the data stage"
        )
        return result(VAL_IDENTITY, _METRIC, "==", "equal", None, source, INCONCLUSIVE, why)
    return result(VAL_IDENTITY, _METRIC, "==", "equal", "equal", source, PASS, f"as {where} records it")
