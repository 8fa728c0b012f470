"""Did the board measure this bundle? The measurement's status row (``measure.json``: measured, refused
for the bundle's fault -- fail -- or the board's -- inconclusive) and whether the results are of the bundle
judged here (``same_bundle``); the device gate (:mod:`edgeproof.verdict.device`) judges nothing else until
both pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from edgeproof.device.manifest import MANIFEST
from edgeproof.io import sha256_file
from edgeproof.verdict.rules import FAIL, INCONCLUSIVE, INVALID, PASS, get_path, result

# Refusals caused by what the pull request sent: a bundle that fails verification or whose contents are
# unusable (deploy.json, val images), a model that does not take deploy.json's input size, a variant the
# profile cannot run, a profile asking for a clip the bundle lacks. A rerun cannot help: they fail. A
# provider refusal for node placement is the model's too (its operators fell off the profile's
# providers). Every other refusal or status is about the board: inconclusive.
_BUNDLE_FAULTS = ("bundle_verified", "bundle_usable", "input_size", "profile_settings", "e2e_input")
_BUNDLE_TODO = "the pull request's bundle is at fault, not the board: fix its build (a rerun cannot help)"
_NOT_READY = {
    "rules_params": "the base branch's params.yaml cannot be used on the board: fix it there, then rerun",
    "machine_match": "the job ran on a machine that is not this profile's board: check the runner's labels",
    "providers": "the board's ONNX Runtime lacks the profile's providers: install the JetPack-matched wheel",
    "board_packages": "the board lacks a package the profile needs (OpenCV for a clip): install it, rerun",
    "preflight": "the board was not ready: see ci/jetson/preflight.sh's output, fix the board, rerun",
}
_RERUN = "rerun the jetson job once the runner is online (approve the run if it waits for approval)"


def status_rule(results: Path, measure: Any) -> Dict[str, Any]:
    """Did a measurement happen? Missing results and an unready board are inconclusive, never fail."""
    if not results.is_dir():
        why = "no results folder {}: the measurement never arrived; {}".format(results, _RERUN)
        return result("measured", "results folder", "==", "present", None, str(results), INCONCLUSIVE, why)
    if measure is None:
        why = "{}: missing, the measurement did not finish (crashed or cancelled); {}".format(
            results / "measure.json", _RERUN
        )
        return result("measured", "measure.json", "==", "measured", None, "device", INCONCLUSIVE, why)
    status, rule = get_path(measure, "status"), str(get_path(measure, "rule") or "measured")
    if status == "measured":
        return result("measured", "measure.json", "==", "measured", status, "device", PASS)
    reason = str(get_path(measure, "reason"))
    placement = rule == "providers" and reason.startswith("node placement")  # the model's nodes: its own fault
    if status == "refused" and (rule in _BUNDLE_FAULTS or placement):
        why = "{}; {}".format(reason, _BUNDLE_TODO) if rule in _BUNDLE_FAULTS else reason
        return result(rule, "measure.json", "==", "measured", status, "device", FAIL, why)
    todo = _NOT_READY.get(rule, "the measurement did not complete ({}): fix the board, then {}".format(status, _RERUN))
    why = "{}; {}".format(reason, todo)
    return result(rule, "measure.json", "==", "measured", status, "device", INCONCLUSIVE, why)


def _same_bundle(bundle: Path, measure: Any) -> Dict[str, Any]:
    """Did the board measure this bundle? ``measure.json`` records the sha256 of the manifest.json it read
    (which hashes every other file): another bundle (a run with several same-name artifacts, a re-run) or
    none recorded is inconclusive, never judged as this one's figures."""
    name, metric, theirs = "same_bundle", "manifest.json sha256", get_path(measure, "bundle_manifest_sha256")
    ours = sha256_file(bundle / MANIFEST) if (bundle / MANIFEST).is_file() else None
    if isinstance(theirs, str) and theirs == ours:
        return result(name, metric, "==", ours, theirs, "measure.json", PASS)
    if theirs is None:
        why = "measure.json records no bundle_manifest_sha256: which bundle the board measured is unknown"
    else:
        why = "bundle mismatch: the board measured manifest.json sha256 {!r}, the bundle judged here has {!r}".format(
            theirs, ours
        )
    why += "; rerun the Jetson job so the board and the gate take the same release-bundle artifact"
    return result(name, metric, "==", ours, theirs, "measure.json", INCONCLUSIVE, why)


def judge_same_bundle(got: Dict[str, Any], bundle: Path) -> None:
    """A measurement, or a refusal blamed on the bundle that names the bundle it refused: of this bundle? If
    not, nothing here is judged (inconclusive), so another bundle's refusal never fails this one."""
    recorded = isinstance(got["measure"], dict) and got["measure"].get("bundle_manifest_sha256") is not None
    if got["status"]["status"] == PASS or (got["status"]["status"] == FAIL and recorded):
        same = _same_bundle(bundle, got["measure"])
        if same["status"] == PASS:
            got["rules"].append(same)
        else:
            got["status"] = same


_WORST_FIRST = (INVALID, FAIL, INCONCLUSIVE, PASS)


def with_status(rules: List[Dict[str, Any]], status: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The gate's own rules and the measurement's status row, one row per rule. A board that refused the bundle
    names ``bundle_verified``, a rule the gate judges itself on the bundle it holds: the two findings are one
    row, the worse status, each side's reason said where it was found (a second row listed the rule twice)."""
    own = next((r for r in rules if r["name"] == status["name"]), None)
    if own is None:
        return [*rules, status]
    worse = min(own, status, key=lambda r: _WORST_FIRST.index(r["status"]))
    board = "on the board (measure.json {}): {}".format(status["measured"], status["reason"])
    why = [own["reason"], board] if own["status"] != PASS else ["it verifies here, but " + board]
    merged = dict(own, status=worse["status"], passed=worse["status"] == PASS, reason="; ".join(why))
    merged.update(measured=own["measured"] if worse is own else False, source=own["source"] + " and the board")
    return [merged if r is own else r for r in rules]
