"""The evidence one measured variant's figures rest on, judged one way for the released file and for
every candidate measured beside it (:mod:`edgeproof.verdict.candidates`).

For a variant (``got["entry"]``: its variant, model path and sha256; ``got["bench"]``/``got["eval"]``:
its results files) the evidence is: its on-device detections refer to the bundle's images and
categories, and the bundled model, re-run here, produces them (``detections_reproduced``) at a mAP no
better than its own (``map_not_above_model``); then the rules of
:func:`edgeproof.verdict.measured.evidence_rules` (machine, recorded conditions, settings, results
consistency, providers and node placement, identity). A candidate's figures get exactly these, so a
candidate the released file's rules would reject is never advised for release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.device.manifest import BundleError, read_json_file
from edgeproof.verdict import detections as dets
from edgeproof.verdict.measured import evidence_rules
from edgeproof.verdict.reference import HERE_KEY
from edgeproof.verdict.rules import FAIL, INCONCLUSIVE, INVALID, PASS, compare, get_path, is_number, result


class Unreadable(ValueError):
    """A results file that exists but is not valid JSON (corrupt or forged)."""


def load_results(path: Path) -> Optional[Any]:
    """A results JSON file: None if absent; :class:`Unreadable` if present but not strict JSON data."""
    if not path.is_file():
        return None
    try:
        return read_json_file(path)
    except BundleError as exc:
        raise Unreadable(str(exc)) from None


def _device_scores(bundle: Path, results: Path, got: Dict[str, Any]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The device's detections checked (where, what, from which model) and scored; and the rules on them."""
    ev = got.get("eval")
    if ev is None:
        why = "{}: missing, the profile evaluates on the device".format(results / "eval.json")
        return {}, [result("detections", "eval.json", "==", "present", None, "device", INCONCLUSIVE, why)]
    path = dets.inside(results, get_path(ev, "detections_file") or "detections.json")
    if path is None:
        why = "eval.json names detections_file {!r}, outside the results folder".format(get_path(ev, "detections_file"))
        return {}, [result("detections", "detections_file", "inside", str(results), None, "eval.json", INVALID, why)]
    found = load_results(path)
    if found is None:
        why = "{}: missing".format(path)
        return {}, [result("detections", path.name, "==", "present", None, "device", INCONCLUSIVE, why)]
    gt = read_json_file(bundle / "val" / "annotations.json")
    bad = dets.problems(found, gt)
    if bad:
        return {}, [
            result("detections", path.name, "refer to", "the bundle", "; ".join(bad), "device", INVALID, bad[0])
        ]
    rules = [result("detections", path.name, "refer to", "the bundle", len(found), "device", PASS)]
    scores = dets.score(gt, found)
    setup = dets.base_setup(bundle, got["operating"]["map"])  # scored at the base's
    again = dets.reproduce(bundle, str(got["entry"].get("model")), gt, setup, found)
    scores[HERE_KEY] = again["map50_95_here"]  # map_drop's reference when this file is the fp32 one
    return scores, rules + _reproduced(again, scores)


def _reproduced(again: Dict[str, Any], scores: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The bundled model's own output here vs the device's: agreement, and a mAP no better than the model's."""
    src, note = "bundled model re-run here (CPU)", again["note"]
    share = compare("detections_reproduced", "share found again", ">=", dets.MIN_SHARE, again["share"], src, note)
    own, now = again["map50_95_here"], scores.get("map50_95")
    above = round(now - own, 6) if is_number(own) and is_number(now) else None
    gain = compare("map_not_above_model", "map50_95 - model's own here", "<=", dets.MAP_TOLERANCE, above, src, note)
    for rule in (share, gain):
        if rule["status"] == FAIL:  # not a measurement that missed: detections the model does not produce
            rule.update(status=INVALID, reason="the bundled model does not produce these detections ({})".format(note))
    return [share, gain]


def _scores(bundle: Path, results: Path, got: Dict[str, Any]) -> Tuple[Dict[str, Any], str, List[Dict[str, Any]]]:
    """mAP the accuracy rules judge, where it comes from, and the rules on the detections."""
    if got["profile"].evaluate_on_device:
        scores, rules = _device_scores(bundle, results, got)
        return scores, "device detections (pycocotools)", rules
    build = get_path(got["build_release"], "variants.{}".format(got["entry"].get("variant"))) or {}
    return build, "build side", []


def variant_evidence(
    bundle: Path, results: Path, name: str, got: Dict[str, Any]
) -> Tuple[Dict[str, Any], str, List[Dict[str, Any]]]:
    """(scores, where they come from, the evidence rules) for the variant ``got`` describes, its results
    files in ``results``: the rules on its detections, then :func:`evidence_rules`."""
    scores, source, rules = _scores(bundle, results, got)
    return scores, source, rules + evidence_rules(name, got)
