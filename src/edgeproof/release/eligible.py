"""The build gate's ``release_choice`` rule: the gated variant is one the release stage could have released.

``release.json`` is the release stage's output and a user can edit its choice (and make it "clean" with
``dvc commit``); the gate's other rules only hold it to itself. This rule re-applies the release choice's
own eligibility (:func:`edgeproof.release.choose.release_problem`: one home for it) from the primary
files: the variant's parity re-judged from the counts ``metrics/parity.json`` records by params'
``optimize.parity`` (:func:`edgeproof.training.parity_judge.rejudge`, the optimize stage's rule; never the
recorded ``passed`` flag), and its mAP50-95 drop from the fp32 reference (``metrics/eval.json``, the evaluate
stage's) to the lower of the gated ``eval.json``'s figure and the gate's own scoring of the file. The
reference and gated model files and the reference's evaluation are held to the sha256 the optimize stage
recorded in git (``metrics/optimize.json``), so a swapped reference file is invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.gate_rescore import Rescored, judged_scores
from edgeproof.io import read_json
from edgeproof.profiles import REFERENCE, Profile
from edgeproof.release.choose import map_drop, release_problem
from edgeproof.training.params import ParityParams
from edgeproof.training.parity_judge import measurable_here, rejudge, share_contradictions
from edgeproof.verdict.rules import FAIL, INVALID, PASS, is_number, result

RELEASE_CHOICE = "release_choice"
_OP = "is"


def parity_record(parity: Any, variant: str, params: ParityParams) -> tuple[dict[str, Any], str | None]:
    """``metrics/parity.json``'s detections parity of ``variant`` in a ``release.json`` variant's keys, judged
    again from its counts by ``params``; and where the file's own ``passed`` contradicts that, why.

    A variant this machine can measure (all but fp16 without a GPU provider) whose record is not ``measured:
    true`` is not judged (not releasable); one it cannot measure keeps ``passed`` null (the device judges it)."""
    detections = parity.get("detections") if isinstance(parity, Mapping) else None
    variants = detections.get("variants") if isinstance(detections, Mapping) else None
    p = variants.get(variant) if isinstance(variants, Mapping) else None
    p = p if isinstance(p, Mapping) else {}
    key = f"detections.variants.{variant}"
    if p.get("measured") is not True:
        here = measurable_here(variant)
        why = f"{key}.measured is {p.get('measured')!r}, but this machine measures {variant}'s parity"
        record = {"parity_passed": None, "parity_measured": here, "parity_reason": why if here else p.get("reason")}
        flag = None if p.get("passed") is None else f"{key}.passed is {p.get('passed')!r} but it was not measured"
        return record, flag
    passed, reason = rejudge(p, params)
    record = {
        "parity_passed": passed,
        "parity_matched_share": p.get("matched_share"),
        "parity_measured": True,
        "parity_reason": reason,
    }
    shares = share_contradictions(p)
    if shares:
        return record, f"{key}: {'; '.join(shares)}"
    if p.get("passed") is passed:
        return record, None
    judged = {True: "kept", False: "broken", None: "not judged"}[passed]
    return record, f"{key}.passed is {p.get('passed')!r}, but its counts judged by optimize.parity say {judged}"


def identity_problems(
    variant: str, optimize: Any, reference_eval: Any, shas: tuple[str | None, str | None]
) -> list[str]:
    """Where the fp32 reference file, its evaluation (``model_sha256``) and the gated file (``shas``: the
    reference's and the gated file's sha256) are not the files ``metrics/optimize.json`` recorded."""
    variants = optimize.get("variants") if isinstance(optimize, Mapping) else None
    recorded = {n: (variants.get(n) or {}).get("sha256") for n in (REFERENCE, variant)} if variants else {}
    ref_eval = reference_eval.get("model_sha256") if isinstance(reference_eval, Mapping) else None
    held = [
        ("the fp32 reference model file", shas[0], REFERENCE),
        ("the fp32 reference eval.json model_sha256", ref_eval, REFERENCE),
        (f"the gated {variant} model file", shas[1], variant),
    ]
    return [
        f"{what} is sha256 {sha} but optimize.json variants.{name}.sha256 is {recorded.get(name)}"
        for what, sha, name in held
        if sha is not None and sha != recorded.get(name)
    ]


def _threshold(variant: str, profile: Profile) -> str:
    """What ``variant`` had to be on ``profile``, as the row's threshold cell."""
    if profile.variant != "auto":
        return f"releasable: the fixed variant {profile.variant}, parity kept"
    if variant == REFERENCE:
        return f"releasable: the {REFERENCE} reference"
    return f"releasable: parity kept, mAP50-95 drop <= {profile.max_map_drop}"


def release_choice_rule(
    variant: str,
    profile: Profile,
    profile_name: str,
    files: tuple[Path, Path, Path | None],
    eval_metrics: Mapping[str, Any],
    rescored: Rescored | None,
    reference: tuple[float | None, ParityParams, tuple[str | None, str | None]],
) -> dict[str, Any]:
    """``release_choice``: :func:`release_problem` for ``variant`` on ``profile`` from ``files`` (the fp32
    reference ``eval.json``, ``parity.json`` and ``optimize.json``); fail naming why, invalid where the
    reference has no mAP, a file is not the one optimize recorded, or parity.json contradicts its counts.

    ``reference``: the gate's own scoring of the fp32 file (None: not scored), params' ``optimize.parity``
    and the sha256 of the fp32 reference file and of the gated file (None: not hashed). The drop is taken
    from the HIGHER of that scoring and the reference ``eval.json``'s figure, so a reference edited lower
    buys nothing."""
    reference_scored, parity_params, shas = reference
    ref_path, parity, optimize = files
    source = ", ".join(p.as_posix() for p in files if p is not None)
    metric, threshold = f"{variant}: parity, mAP50-95 drop vs fp32", _threshold(variant, profile)
    ref = read_json(ref_path)
    swapped = identity_problems(variant, read_json(optimize), ref, shas) if optimize is not None else []
    if swapped:
        why = f"not the files the optimize stage recorded: {'; '.join(swapped)}"
        return result(RELEASE_CHOICE, metric, _OP, threshold, "; ".join(swapped), source, INVALID, why)
    ref_map = ref.get("map50_95") if isinstance(ref, Mapping) else None
    if is_number(ref_map) and is_number(reference_scored):
        ref_map = max(ref_map, reference_scored)
    gated = judged_scores(eval_metrics, rescored)[0].get("map50_95")
    if not (is_number(ref_map) and is_number(gated)):
        why = f"no mAP50-95 to take the drop of: {ref_path} {ref_map!r}, the gated {gated!r}"
        return result(RELEASE_CHOICE, metric, _OP, threshold, None, source, INVALID, why)
    drop = map_drop(ref_map, gated)  # as the release stage records it
    record, contradiction = parity_record(read_json(parity), variant, parity_params)
    if contradiction is not None:
        why = f"{parity.as_posix()} contradicts itself: {contradiction}"
        return result(RELEASE_CHOICE, metric, _OP, threshold, contradiction, source, INVALID, why)
    problem = release_problem(variant, {**record, "map_drop": drop}, profile, profile_name)
    if problem is not None:
        why = f"{variant} is not a variant the release stage could release: {problem}"
        return result(RELEASE_CHOICE, metric, _OP, threshold, problem, source, FAIL, why)
    kept = {True: f"parity kept (matched_share {record.get('parity_matched_share')})"}.get(
        record["parity_passed"], "parity not measured here"
    )
    return result(RELEASE_CHOICE, metric, _OP, threshold, f"drop {drop}, {kept}", source, PASS)
