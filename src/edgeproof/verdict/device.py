"""The device gate: a profile's release rules over the device's results, for exactly the bundled file.

Runs where the results land (the hosted CI job after the Jetson job), with the bundle. The sha256
chain -- released (the bundle's own ``build/release.json``: the release record of the same build) =
in the bundle = benchmarked on the device = evaluated on the device (or on the build machine) -- is
a set of rules like the thresholds. On-device mAP is scored here with pycocotools from the device's
raw detections, after checking that they refer to the bundle's images and categories and that the
bundled model, run here, reproduces them (:mod:`edgeproof.verdict.detections`).

The contract (statuses and verdict: :mod:`edgeproof.verdict.rules`):

- **pass** (exit 0): every rule passed on a valid measurement.
- **fail** (exit 1): a valid measurement misses a threshold, an identity differs, or a figure is
  invalid (impossible, non-finite, wrong type, forged detections, a file outside the results).
- **inconclusive** (exit 3): nothing can be said about the model: the results never arrived (no
  folder, no ``measure.json``: runner offline, approval rejected, job cancelled, skipped or timed
  out), the board was not ready (refused: wrong machine, providers not installed), the device
  throttled, a figure was not measurable, or the base's rules (``rules_params``) cannot be read. The
  report says why and what to do. The pull request's proposal (its params.yaml, its bundle's
  ``profiles.json``) is only shown: one the base's parser cannot read is a note, never the verdict.

Every call of :func:`run_device_gate` ends in a written ``gate.json`` + ``gate.md`` (an older pair
is removed first), whatever the input.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgeproof.device.manifest import BundleError, verify_bundle
from edgeproof.verdict import proposal
from edgeproof.verdict.baseline import val_digest
from edgeproof.verdict.board_status import judge_same_bundle, status_rule, with_status
from edgeproof.verdict.candidates import judge_candidates
from edgeproof.verdict.conditions import run_throttled
from edgeproof.verdict.evidence import Unreadable, variant_evidence
from edgeproof.verdict.evidence import load_results as _load
from edgeproof.verdict.measured import measured_figures, measured_rules
from edgeproof.verdict.rules import (
    EXIT,
    FAIL,
    INCONCLUSIVE,
    INVALID,
    PASS,
    get_path,
    json_safe,
    result,
    verdict,
)

log = logging.getLogger(__name__)

_BASE_TODO = "fix the base branch's params.yaml, then rerun the device gate (not the model's fault)"


def _read(bundle: Path, name: str, results: Path, rules_params: Any, proposed_params: Any) -> Dict[str, Any]:
    got: Dict[str, Any] = {"rules": [], "entry": {}, "notes": [], "bundle": bundle}
    try:
        got["manifest"] = verify_bundle(bundle)
        got["rules"].append(result("bundle_verified", "manifest.json", "==", True, True, str(bundle), PASS))
    except BundleError as exc:
        got["rules"].append(result("bundle_verified", "manifest.json", "==", True, False, str(bundle), FAIL, str(exc)))
        got["manifest"] = _load_quiet(bundle / "manifest.json") or {}
    judging, proposed = proposal.profiles(bundle, rules_params, proposed_params, got["notes"])
    got["changes"] = proposal.changes(name, judging.get(name), proposed.get(name)) if proposed is not None else []
    if name not in judging:
        why = "no profile {!r} in the judging rules (has {})".format(name, sorted(judging))
        if rules_params is not None:  # the base's rules cannot judge it: not the model's fault
            raise proposal.BaseUnusable("{}: {}".format(rules_params, why))
        raise LookupError(why)
    got["profile"] = judging[name]
    entry = get_path(got["manifest"], "profiles.{}".format(name))
    got["entry"] = entry if isinstance(entry, dict) else {}  # of another type: bundle_verified has failed
    got["build_release"] = _load_quiet(bundle / "build" / "release.json")
    got["setup"] = _load_quiet(bundle / "deploy.json")
    # the operating point judged at: the base's, like the thresholds (without base rules, the bundle's own)
    own = {k: get_path(got["setup"], k) for k in ("deploy", "map")}
    if rules_params is not None:
        own = proposal.read_base(proposal.load_operating_point, rules_params)
    got["operating"] = own
    got["measure"] = _load(results / "measure.json")
    got["status"] = status_rule(results, got["measure"])
    judge_same_bundle(got, bundle)
    if got["status"]["status"] == PASS:
        for key in ("bench", "eval", "conditions"):
            got[key] = _load(results / "{}.json".format(key))
            if got[key] is not None and not isinstance(got[key], dict):
                what = type(got[key]).__name__
                raise Unreadable("{}: expected a JSON object, got {}".format(results / "{}.json".format(key), what))
    return got


def _load_quiet(path: Path) -> Any:
    try:
        return _load(path)
    except Unreadable:
        return None


def _error_report(name: str, exc: BaseException, what: str, status: str = INVALID, todo: str = "") -> Dict[str, Any]:
    why = "{}: {}".format(type(exc).__name__, exc) + ("; " + todo if todo else "")
    rule = result("judged", what, "==", "judgeable", None, "device gate", status, why)
    return _report(name, [rule], {}, {}, {"entry": {}, "notes": [], "changes": []})


def _report(name: str, rules: List[Dict[str, Any]], bench: Any, scores: Any, got: Dict[str, Any]) -> Dict[str, Any]:
    cond = got.get("conditions") if isinstance(got.get("conditions"), dict) else {}
    throttled, reasons = run_throttled(got)  # the board's reasons, and the judging rules'
    final = verdict(rules, throttled)
    return json_safe(
        {
            "profile": name,
            "verdict": final,
            "passed": final == PASS,
            "failed": [r["name"] for r in rules if r["status"] != PASS],
            "rules": rules,
            "notes": got["notes"],
            "proposed_changes": got["changes"],
            "model_sha256": got["entry"].get("sha256"),
            "val_sha256": val_digest(got.get("manifest")),  # the next PRs' same_val_set, once main's
            "model_path": got["entry"].get("model"),
            "variant": got["entry"].get("variant"),
            "device": (
                get_path(bench, "device_name")
                or get_path(cond, "machine.jetson.model")
                or get_path(bench, "device.cpu_model")
            ),
            "providers": get_path(bench, "providers.session"),
            "node_placement": get_path(bench, "providers.nodes"),
            "measured": measured_figures(bench if isinstance(bench, dict) else {}, scores),
            "conditions": {
                "throttled": throttled,
                "reasons": reasons,
                "match": cond.get("match"),
                "jetson": get_path(cond, "machine.jetson"),
                "max_temp_c": get_path(cond, "during.max_temp_c"),
            },
        }
    )


def device_gate(
    bundle: Path,
    name: str,
    results: Path,
    release: Optional[Path] = None,
    baseline: Optional[Path] = None,
    rules_params: Optional[Path] = None,
    proposed_params: Optional[Path] = None,
    baseline_unavailable: Optional[str] = None,
    baseline_optional: bool = False,
) -> Dict[str, Any]:
    """Judge the device results of profile ``name``; the report (``gate.json`` shape + verdict). Never raises.

    ``release`` defaults to the bundle's own ``build/release.json`` (the same build's record);
    ``rules_params`` is the base branch's params.yaml (default: the bundle's profiles.json);
    ``baseline_unavailable``: why main's baseline could not be fetched (regression rules inconclusive), as
    opposed to main having none yet (no ``baseline``, no reason: main can make its first);
    ``baseline_optional``: a run that may go without one (a push to main): a rule ``baseline`` cannot
    support is judged as without it (:mod:`edgeproof.verdict.baseline`), so main can replace it.
    """
    bundle, results = Path(bundle), Path(results)
    try:
        got = _read(bundle, name, results, rules_params, proposed_params)
        rules = with_status(got["rules"], got["status"])
        bench, scores = got.get("bench"), {}
        if got["status"]["status"] == PASS:
            scores, source, evidence = variant_evidence(bundle, results, name, got)
            rules += evidence
            rel_path = release if release is not None else bundle / "build" / "release.json"
            rel_src = str(release) if release is not None else "bundle build/release.json (same build)"
            base = _load_quiet(baseline) if baseline is not None else None
            if baseline is not None and base is None:  # named but not there: not the same as main having none
                got["baseline_unavailable"] = "main's baseline {} is missing or not valid JSON".format(baseline)
            elif baseline_unavailable:
                got["baseline_unavailable"] = baseline_unavailable
            got.update(baseline_file=str(baseline) if baseline else None, baseline_optional=baseline_optional)
            rules += measured_rules(name, got, _load_quiet(rel_path), rel_src, scores, source, base)
        report = _report(name, rules, bench, scores, got)
        if got["status"]["status"] == PASS:  # evidence for the next release choice, never this verdict
            released = {"fps_e2e": get_path(bench or {}, "fps_e2e"), "map50_95": scores.get("map50_95")}
            report["candidates"] = json_safe(judge_candidates(bundle, name, results, got, released))
        return report
    except proposal.BaseUnusable as exc:
        return _error_report(name, exc, "base rules", INCONCLUSIVE, _BASE_TODO)
    except Unreadable as exc:
        return _error_report(name, exc, "results file")
    except Exception as exc:
        log.exception("device gate %s could not judge the results", name)
        return _error_report(name, exc, "inputs")


def run_device_gate(
    bundle: Path,
    name: str,
    results: Path,
    release: Optional[Path] = None,
    baseline: Optional[Path] = None,
    rules_params: Optional[Path] = None,
    proposed_params: Optional[Path] = None,
    baseline_unavailable: Optional[str] = None,
    baseline_optional: bool = False,
) -> int:
    """Write ``gate.json`` and ``gate.md`` into ``results``; return 0 pass, 1 fail, 3 inconclusive."""
    from edgeproof.io import write_text
    from edgeproof.verdict.report import render_markdown

    results = Path(results)
    for stale in ("gate.json", "gate.md"):  # an older verdict must never stand in for this one
        if (results / stale).is_file():
            (results / stale).unlink()
    report = device_gate(
        bundle, name, results, release, baseline, rules_params, proposed_params, baseline_unavailable, baseline_optional
    )
    results.mkdir(parents=True, exist_ok=True)
    write_text(results / "gate.json", json.dumps(report, indent=2, allow_nan=False) + "\n")
    write_text(results / "gate.md", render_markdown(report))
    log.info("device gate %s: %s (not passed: %s)", name, report["verdict"], ", ".join(report["failed"]) or "none")
    for rule in report["rules"]:
        if rule["status"] != PASS and rule["reason"]:
            log.error("rule %s %s: %s", rule["name"], rule["status"], rule["reason"])
    return EXIT[report["verdict"]]
