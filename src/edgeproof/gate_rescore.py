"""The build gate's ``rescored`` rule: the gated ``eval.json`` against the gate's own scoring of the file.

Every other check holds the measured files to themselves and to ``reports/release.json``'s copies; a
figure edited alike in all of them (then made "clean" with ``dvc commit``) passes those. The gate stage
therefore scores the gated ONNX file on val itself (:func:`edgeproof.release.rescore.rescore`: the same
runtime, thresholds and pycocotools rounding as the evaluation) and holds ``eval.json``'s mAP, its val
counts and the model's sha256 to what it found. On the machine that measured the file the same code gives
the same figures, so they must be equal; on another machine (its ``bench.json`` names another ``device``)
CPU kernels differ, so the mAP may differ by params' ``evaluate.cross_check.ultralytics_tolerance``, the
tolerance between two runs of one file. The speed figures cannot be re-derived this way (a second timing
on a busy host is noise, not evidence): they stay held by ``results_consistent`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from edgeproof.verdict.rules import INCONCLUSIVE, INVALID, PASS, is_number, result

RESCORED = "rescored"
# the figures the gate recomputes; the mAPs within the tolerance, the counts and the sha256 exactly
RESCORED_FIGURES = ("map50", "map50_95", "n_images", "n_gt", "model_sha256")
_MAPS = ("map50", "map50_95")


class Rescored(NamedTuple):
    """The gate's own scoring of the gated file: its figures (:data:`RESCORED_FIGURES`), what was scored
    (``models/optimized/int8.onnx on data/prepared val``), the mAP tolerance (0 on the machine that measured)
    and, when that is another machine, why (``None`` on the same one)."""

    figures: Mapping[str, Any]
    what: str
    tolerance: float
    elsewhere: str | None = None


def _differs(key: str, found: Any, mine: Any, tolerance: float) -> bool:
    if key not in _MAPS:
        return found != mine or isinstance(found, bool) != isinstance(mine, bool)
    return not (is_number(found) and is_number(mine) and abs(found - mine) <= tolerance)


def rescore_rule(eval_metrics: Mapping[str, Any], source: str, rescored: Rescored) -> dict[str, Any]:
    """``rescored``: each of ``eval.json``'s :data:`RESCORED_FIGURES` against the gate's own scoring of the file.

    A figure that differs is an edited (or another model's) evaluation: invalid, naming the file, the key
    and both values; one ``eval.json`` lacks is inconclusive (nothing held it), never a pass.
    """
    where = f"the gate's own scoring of {rescored.what}"
    metric = f"{', '.join(RESCORED_FIGURES)} vs the gate's own scoring"  # what was scored: in the reasons
    held = "equal" if rescored.tolerance == 0 else f"within {rescored.tolerance:g}"
    problems, absent = [], []
    for key in RESCORED_FIGURES:
        found, mine = eval_metrics.get(key), rescored.figures.get(key)
        if found is None:
            absent.append(f"{source} has no {key}: not held to {where} ({mine})")
        elif _differs(key, found, mine, rescored.tolerance if key in _MAPS else 0.0):
            problems.append(f"{source} {key} {str(found)[:80]} differs from {where}: {mine}")
    note = f" ({rescored.elsewhere})" if rescored.elsewhere else ""
    if problems:
        why = "; ".join(problems) + note
        return result(RESCORED, metric, "==", held, problems[0][:200], source, INVALID, why)
    if absent:
        return result(RESCORED, metric, "==", held, None, source, INCONCLUSIVE, "; ".join(absent) + note)
    return result(RESCORED, metric, "==", held, "agree", source, PASS, rescored.elsewhere or f"agree with {where}")
