"""The build gate's ``release_choice`` rule: the gated variant is one the release stage could have released.

``release.json`` is the release stage's output and a user can edit its choice (and make it "clean" with
``dvc commit``); the gate's other rules only hold it to itself. This rule re-applies the release choice's
own eligibility (:func:`edgeproof.release.choose.release_problem`: one home for it) from the primary
files: the variant's parity from ``metrics/parity.json`` (optimize's measurement) and its mAP50-95 drop
from the fp32 reference (``metrics/eval.json``, the evaluate stage's) to the lower of the gated
``eval.json``'s figure and the gate's own scoring of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.gate_rescore import Rescored, judged_scores
from edgeproof.io import read_json
from edgeproof.profiles import Profile
from edgeproof.release.choose import release_problem
from edgeproof.verdict.rules import FAIL, INVALID, PASS, is_number, result

RELEASE_CHOICE = "release_choice"


def parity_record(parity: Any, variant: str) -> dict[str, Any]:
    """``metrics/parity.json``'s detections parity of ``variant`` in a ``release.json`` variant's keys."""
    detections = parity.get("detections") if isinstance(parity, Mapping) else None
    variants = detections.get("variants") if isinstance(detections, Mapping) else None
    p = variants.get(variant) if isinstance(variants, Mapping) else None
    p = p if isinstance(p, Mapping) else {}
    return {
        "parity_passed": p.get("passed"),
        "parity_matched_share": p.get("matched_share"),
        "parity_measured": p.get("measured"),
        "parity_reason": p.get("reason"),
    }


def release_choice_rule(
    variant: str,
    profile: Profile,
    profile_name: str,
    files: tuple[Path, Path],
    eval_metrics: Mapping[str, Any],
    rescored: Rescored | None,
    reference_scored: float | None = None,
) -> dict[str, Any]:
    """``release_choice``: :func:`release_problem` for ``variant`` on ``profile`` from ``files`` (the fp32
    reference ``eval.json`` and ``parity.json``); fail naming why, invalid where the reference has no mAP.

    ``reference_scored``: the gate's own scoring of the fp32 file (None: not scored). The drop is taken
    from the HIGHER of it and the reference ``eval.json``'s figure, so a reference edited lower (which
    shrinks the drop) buys nothing."""
    reference, parity = files
    source = f"{parity.as_posix()}, {reference.as_posix()}"
    metric = f"{variant}: parity, mAP50-95 drop vs fp32"
    ref = read_json(reference)
    ref_map = ref.get("map50_95") if isinstance(ref, Mapping) else None
    if is_number(ref_map) and is_number(reference_scored):
        ref_map = max(ref_map, reference_scored)
    gated = judged_scores(eval_metrics, rescored)[0].get("map50_95")
    if not (is_number(ref_map) and is_number(gated)):
        why = f"no mAP50-95 to take the drop of: {reference} {ref_map!r}, the gated {gated!r}"
        return result(RELEASE_CHOICE, metric, "<=", profile.max_map_drop, None, source, INVALID, why)
    drop = round(ref_map - gated, 6)  # as the release stage rounds it (release/measure.py)
    record = {**parity_record(read_json(parity), variant), "map_drop": drop}
    problem = release_problem(variant, record, profile, profile_name)
    if problem is not None:
        why = f"{variant} is not a variant the release stage could release: {problem}"
        return result(RELEASE_CHOICE, metric, "<=", profile.max_map_drop, drop, source, FAIL, why)
    return result(RELEASE_CHOICE, metric, "<=", profile.max_map_drop, drop, source, PASS)
