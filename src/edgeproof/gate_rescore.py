"""The build gate's ``rescored`` rule: the gated ``eval.json`` against the gate's own scoring of the file.

Every other check holds the measured files to themselves and to ``reports/release.json``'s copies; a
figure edited alike in all of them (then made "clean" with ``dvc commit``) passes those. The gate stage
therefore scores the gated ONNX file on val itself (:func:`edgeproof.release.rescore.rescore`: the same
runtime, thresholds and pycocotools rounding as the evaluation) and holds every figure of ``eval.json``
that scoring gives (the 12 COCO mAP/AR figures the headline and MLflow show, the per-class APs, the val
counts and the model's sha256) to what it found. On the machine that measured the file the same code gives
the same figures, so they must be equal; on another machine (its ``bench.json`` names another ``device``)
CPU kernels differ, so the mAP may differ by a small tolerance (:data:`CROSS_MACHINE_TOLERANCE` at most).
A tolerance only tolerates: the accuracy rules judge the lower of ``eval.json``'s mAP and the gate's own
(:func:`judged_scores`), so no figure held "within" it can add margin to a threshold. The speed figures
cannot be re-derived this way (a second timing on a busy host is noise, not evidence): they stay held by
``results_consistent`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from edgeproof.evaluation.coco import STAT_NAMES
from edgeproof.verdict.rules import INCONCLUSIVE, INVALID, PASS, is_number, result

RESCORED = "rescored"
# the figures the gate recomputes: every mAP/AR within the tolerance, the counts and the sha256 exactly
_MAPS = STAT_NAMES
RESCORED_FIGURES = (*STAT_NAMES, "n_images", "n_gt", "n_background_images", "n_gt_crowd", "model_sha256")
# per_class rows (by category_id): the APs within the tolerance, the ground-truth count exactly
CLASS_FIGURES = ("ap", "ap50", "ap75", "n_gt")
_CLASS_APS = ("ap", "ap50", "ap75")
# The mAP tolerance between this machine's scoring and another machine's of the same file, whatever params
# say: other CPU kernels move a pycocotools mAP by a few 1e-4 at most. Params' ultralytics_tolerance (up to
# 0.1) is for a second scorer's AP, not for one scorer on two machines; uncapped, a bench.json `device` edit
# would open it wide.
CROSS_MACHINE_TOLERANCE = 0.001
# the accuracy rules' figures the gate judges on the lower of eval.json's and its own (a tolerance never adds margin)
JUDGED = ("map50", "map50_95")


class Rescored(NamedTuple):
    """The gate's own scoring of the gated file: its figures (:data:`RESCORED_FIGURES`), what was scored
    (``models/optimized/int8.onnx on data/prepared val``), the mAP tolerance (0 on the machine that measured)
    and, when that is another machine, why (``None`` on the same one)."""

    figures: Mapping[str, Any]
    what: str
    tolerance: float
    elsewhere: str | None = None


def _differs(key: str, found: Any, mine: Any, tolerance: float) -> bool:
    if key not in _MAPS and key not in _CLASS_APS:
        return found != mine or isinstance(found, bool) != isinstance(mine, bool)
    if found is None and mine is None:  # pycocotools' -1: no ground truth in that area range
        return False
    return not (is_number(found) and is_number(mine) and abs(found - mine) <= tolerance)


def _class_problems(found: Any, mine: Any, source: str, where: str, tolerance: float) -> list[str]:
    """``eval.json``'s ``per_class`` rows against the gate's own, by ``category_id`` (MLflow logs each)."""
    rows = {r.get("category_id"): r for r in found if isinstance(r, Mapping)} if isinstance(found, list) else {}
    own = {r["category_id"]: r for r in mine or []}
    if set(rows) != set(own) or len(rows) != len(found):
        return [f"{source} per_class rows {sorted(map(str, rows))} are not {where}'s classes {sorted(map(str, own))}"]
    problems = []
    for cat, row in own.items():
        for key in CLASS_FIGURES:
            value = rows[cat].get(key)
            if _differs(key, value, row.get(key), tolerance if key in _CLASS_APS else 0.0):
                problems.append(
                    f"{source} per_class[{cat}].{key} {str(value)[:40]} differs from {where}: {row.get(key)}"
                )
    return problems


def rescore_rule(eval_metrics: Mapping[str, Any], source: str, rescored: Rescored) -> dict[str, Any]:
    """``rescored``: each of ``eval.json``'s :data:`RESCORED_FIGURES` and ``per_class`` rows
    (:data:`CLASS_FIGURES`) against the gate's own scoring of the file.

    A figure that differs is an edited (or another model's) evaluation: invalid, naming the file, the key
    and both values; one ``eval.json`` lacks is inconclusive (nothing held it), never a pass.
    """
    where = f"the gate's own scoring of {rescored.what}"
    metric = "mAP/AR, per-class AP, val counts, sha256 vs the gate's own scoring"  # what: in the reasons
    held = "equal" if rescored.tolerance == 0 else f"within {rescored.tolerance:g}"
    problems, absent = [], []
    for key in (*RESCORED_FIGURES, "per_class"):
        found, mine = eval_metrics.get(key), rescored.figures.get(key)
        if key not in eval_metrics:
            absent.append(f"{source} has no {key}: not held to {where} ({str(mine)[:80]})")
        elif key == "per_class":
            problems += _class_problems(found, mine, source, where, rescored.tolerance)
        elif _differs(key, found, mine, rescored.tolerance if key in _MAPS else 0.0):
            problems.append(f"{source} {key} {str(found)[:80]} differs from {where}: {mine}")
    note = f" ({rescored.elsewhere})" if rescored.elsewhere else ""
    if problems:
        why = "; ".join(problems) + note
        return result(RESCORED, metric, "==", held, problems[0][:200], source, INVALID, why)
    if absent:
        return result(RESCORED, metric, "==", held, None, source, INCONCLUSIVE, "; ".join(absent) + note)
    return result(RESCORED, metric, "==", held, "agree", source, PASS, rescored.elsewhere or f"agree with {where}")


def judged_scores(eval_metrics: Mapping[str, Any], rescored: Rescored | None) -> tuple[dict[str, Any], dict[str, str]]:
    """``eval_metrics`` with each :data:`JUDGED` figure lowered to the gate's own where that is lower, and
    for each lowered one why (for its rule's reason): the accuracy rules judge these, so a figure held only
    "within" a tolerance (another machine) cannot pass a threshold the gate's own scoring misses."""
    scores, notes = dict(eval_metrics), {}
    for key in JUDGED if rescored is not None else ():
        found, mine = eval_metrics.get(key), rescored.figures.get(key)
        if is_number(found) and is_number(mine) and mine < found:
            scores[key] = mine
            notes[key] = f"judged on the gate's own scoring of {rescored.what} ({mine}), lower than eval.json's {found}"
    return scores, notes
