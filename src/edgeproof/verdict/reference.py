"""``map_drop``: the device's mAP50-95 against the fp32 reference's, measured here rather than claimed.

The bundle's ``build/release.json`` names the fp32 reference (``reference``: its file's sha256 and its
mAP50-95). Both come from the pull request's build, and its manifest hashes them, which proves only that
nothing changed them after that build: the figure is the build's claim, so it never decides alone.

- The reference is the released file (a Jetson profile released at ``fp32``): its mAP50-95 is the
  bundled file's own, re-run here on the CPU over the bundle's val images at the base's scoring
  settings (the run ``map_not_above_model`` rests on), so ``map_drop`` is the device's loss against
  that very file on the same images.
- It is another file the bundle ships (a candidate: ``fp32`` in ``profiles.<name>.candidates``): that
  file is run here the same way.
- Otherwise nothing here can measure it: ``map_drop`` is *inconclusive*, the claimed figure shown.

Profiles with ``evaluate_on_device: false`` take every mAP from the build side, the claim included, as
their accuracy rules do. Which file is the fp32 one is still the build's word (``reference.sha256``):
the absolute floors (``gate.min_map50``, ``gate.min_map50_95``) and ``regression_map`` against main's
verdict are what a pull request cannot move. Python 3.8 (the device gate runs beside the board's files).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from edgeproof.device.manifest import read_json_file
from edgeproof.verdict import detections as dets
from edgeproof.verdict.rules import INVALID, compare, get_path, is_number

log = logging.getLogger(__name__)

METRIC = "fp32 map50_95 - map50_95"
HERE_KEY = "model_map50_95_here"  # in the released file's scores: its own mAP50-95, re-run here


def shipped_model(manifest: Any, sha256: Any) -> Optional[str]:
    """The bundle path of a model file (``models/``) whose manifest sha256 is ``sha256``, or None."""
    files = get_path(manifest, "files")
    if not isinstance(files, dict) or not isinstance(sha256, str):
        return None
    found = sorted(k for k, v in files.items() if k.startswith("models/") and get_path(v, "sha256") == sha256)
    return found[0] if found else None


def _run_here(got: Dict[str, Any], model_rel: str) -> Tuple[Optional[float], Optional[str]]:
    """(mAP50-95 of the bundled model ``model_rel`` run here on the CPU, or None; why it is None)."""
    bundle = got["bundle"]
    try:
        gt = read_json_file(bundle / "val" / "annotations.json")
        here = dets.rerun_here(bundle, model_rel, gt, dets.base_setup(bundle, got["operating"]["map"]))
        return (dets.score(gt, here)["map50_95"] if here else 0.0), None
    except Exception as exc:  # the rule says so; the verdict never crashes on it
        log.warning("the fp32 reference %s did not run here: %s", model_rel, exc)
        return None, "the fp32 reference {} did not run here ({}: {})".format(model_rel, type(exc).__name__, exc)


def measured_reference(name: str, got: Dict[str, Any], scores: Dict[str, Any]) -> Tuple[Any, str, Optional[str]]:
    """(the fp32 reference's mAP50-95 measured here, or None; where it comes from; why it is None)."""
    sha = get_path(got["build_release"], "reference.sha256")
    if isinstance(sha, str) and sha == got["entry"].get("sha256"):
        src = "fp32 reference = the released file, re-run here (CPU)"
        return scores.get(HERE_KEY), src, "the released file did not run here: no fp32 reference measured"
    model = shipped_model(got.get("manifest"), sha)
    if model is None:
        why = (
            "the fp32 reference map50_95 {!r} is the pull request build's claim (build/release.json): its file "
            "(sha256 {!r}) is not in the bundle, so nothing here measured it; ship it (profiles.{}.candidates: "
            "[fp32]) or release it"
        ).format(get_path(got["build_release"], "reference.map50_95"), sha, name)
        return None, "build/release.json (claimed)", why
    value, why = _run_here(got, model)
    return value, "fp32 reference {} run here (CPU)".format(model), why


def map_drop_rule(name: str, profile: Any, scores: Dict[str, Any], got: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``map_drop``: the fp32 reference's mAP50-95 minus the judged one, ``<=`` ``max_map_drop`` (module doc)."""
    claimed, now = get_path(got["build_release"], "reference.map50_95"), scores.get("map50_95")
    if profile.evaluate_on_device:
        ref, src, why = measured_reference(name, got, scores)
    else:  # the build side's figures throughout (module doc)
        ref, src, why = claimed, source, None
    drop = round(ref - now, 6) if is_number(ref) and is_number(now) else None
    rule = compare("map_drop", METRIC, "<=", profile.max_map_drop, drop, src, why)
    copy = get_path(got["manifest"], "reference.map50_95")  # manifest.json (the hashes' root) only repeats it
    if copy != claimed:
        why = "manifest.json reference.map50_95 {!r} differs from the hashed build/release.json's {!r}"
        shown = copy if copy is None or is_number(copy) else "a {}".format(type(copy).__name__)  # the PR's file
        rule.update(status=INVALID, passed=False, reason=why.format(shown, claimed))
    return rule
