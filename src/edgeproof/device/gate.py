"""The device gate: a profile's release rules over the device's results, for exactly the bundled file.

Runs where the results land (the hosted CI job after the Jetson job), with the bundle and the
commit's ``reports/release.json``. The sha256 chain -- released (release.json) = in the bundle =
benchmarked on the device = evaluated on the device (or on the build machine) -- is a set of rules
like the thresholds. On-device mAP is scored here with pycocotools from the device's raw detections
against the bundle's ground truth.

Verdict: ``fail`` when an identity, provider, machine or accuracy rule fails; otherwise
``inconclusive`` when the run throttled (a hot or down-clocked device says nothing about the model);
otherwise ``fail`` when a speed rule fails; else ``pass``. Exit codes 0 / 1 / 3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgeproof.device.manifest import BundleError, read_json_file, verify_bundle
from edgeproof.profiles import Profile, parse_profiles

log = logging.getLogger(__name__)

EXIT = {"pass": 0, "fail": 1, "inconclusive": 3}
SPEED_RULES = ("fps", "latency_p95", "regression_fps")


def _rule(name: str, metric: str, op: str, threshold: Any, measured: Any, source: str) -> Dict[str, Any]:
    """One rule in ``reports/gate.json``'s shape; a missing or non-numeric measurement fails."""
    if op == "==":
        ok = measured == threshold
    else:
        numeric = isinstance(measured, (int, float)) and not isinstance(measured, bool) and measured == measured
        ok = numeric and (measured >= threshold if op == ">=" else measured <= threshold)
    return {
        "name": name,
        "metric": metric,
        "op": op,
        "threshold": threshold,
        "measured": measured,
        "passed": bool(ok),
        "source": source,
    }


def _load(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = read_json_file(path)
    except BundleError:
        return None
    return data if isinstance(data, dict) else None


def _get(data: Optional[Dict[str, Any]], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def score_device_map(bundle: Path, results: Path, ev: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """pycocotools mAP of the device's detections against the bundle's ground truth (empty if none)."""
    if ev is None:
        return {}
    detections = read_json_file(results / str(ev.get("detections_file", "detections.json")))
    gt = read_json_file(bundle / "val" / "annotations.json")
    from edgeproof.evaluation.coco import score_coco

    metrics = score_coco(gt, detections).metrics
    scores = {k: metrics.get(k) for k in ("map50_95", "map50", "map75")}
    scores["n_detections"] = len(detections)
    return scores


def _identity_rules(
    name: str, entry: Dict[str, Any], release: Optional[Dict[str, Any]], bench, ev, profile, build_release
):
    sha = entry.get("sha256")
    rules = [_rule("same_profile", "profile", "==", name, _get(bench, "profile"), "bench.json")]
    rules += [_rule("same_model_benchmarked", "model_sha256", "==", sha, _get(bench, "model_sha256"), "bench.json")]
    if profile.evaluate_on_device:
        rules.append(_rule("same_model_evaluated", "model_sha256", "==", sha, _get(ev, "model_sha256"), "eval.json"))
    else:  # the build machine's evaluation of this very file stands in (it must have been evaluated there)
        build = _get(build_release, f"variants.{entry.get('variant')}") or {}
        evaluated = build.get("sha256") if build.get("evaluated") else None
        rules.append(_rule("same_model_evaluated", "model_sha256", "==", sha, evaluated, "build/release.json"))
    if release is not None:
        released = _get(release, f"profiles.{name}.sha256")
        rules.append(_rule("same_model_released", "model_sha256", "==", sha, released, "reports/release.json"))
    return rules


def _accuracy_rules(profile: Profile, scores: Dict[str, Any], manifest: Dict[str, Any], source: str):
    g = profile.gate
    rules = [_rule("map50", "map50", ">=", g.min_map50, scores.get("map50"), source)]
    if g.min_map50_95 is not None:
        rules.append(_rule("map50_95", "map50_95", ">=", g.min_map50_95, scores.get("map50_95"), source))
    ref = _get(manifest, "reference.map50_95")
    drop = round(ref - scores["map50_95"], 6) if ref is not None and scores.get("map50_95") is not None else None
    rules.append(_rule("map_drop", "fp32 map50_95 - map50_95", "<=", profile.max_map_drop, drop, source))
    return rules


def _regression_rules(profile: Profile, baseline: Optional[Dict[str, Any]], bench, scores) -> List[Dict[str, Any]]:
    r = profile.regression
    rules = []
    base_fps = _get(baseline, "measured.fps_e2e")
    if r.max_fps_drop_pct is not None and base_fps:
        fps = _get(bench, "fps_e2e")
        drop = round(100.0 * (base_fps - fps) / base_fps, 3) if fps is not None else None
        rules.append(_rule("regression_fps", "fps drop % vs main", "<=", r.max_fps_drop_pct, drop, "baseline"))
    base_map = _get(baseline, "measured.map50_95")
    if r.max_map_drop is not None and base_map is not None:
        now = scores.get("map50_95")
        drop = round(base_map - now, 6) if now is not None else None
        rules.append(_rule("regression_map", "map50_95 drop vs main", "<=", r.max_map_drop, drop, "baseline"))
    return rules


def _verdict(rules: List[Dict[str, Any]], throttled: bool) -> str:
    failed = [r["name"] for r in rules if not r["passed"]]
    if [n for n in failed if n not in SPEED_RULES]:
        return "fail"
    if throttled:
        return "inconclusive"
    return "fail" if failed else "pass"


def _inputs(bundle: Path, name: str, results: Path) -> Dict[str, Any]:
    """Read everything the gate judges; problems become failed rules, never an exception."""
    got: Dict[str, Any] = {"problems": []}
    try:
        got["manifest"] = verify_bundle(bundle)
    except BundleError as exc:
        got["problems"].append(_rule("bundle_verified", "manifest.json", "==", True, str(exc), str(bundle)))
        got["manifest"] = _load(bundle / "manifest.json") or {}
    profiles = parse_profiles(_load(bundle / "profiles.json") or {}, where=str(bundle / "profiles.json"))
    if name not in profiles:
        raise BundleError(f"{bundle / 'profiles.json'}: no profile {name!r} (has {sorted(profiles)})")
    got["profile"] = profiles[name]
    got["entry"] = (got["manifest"].get("profiles") or {}).get(name, {})
    got["build_release"] = _load(bundle / "build" / "release.json")
    for key in ("measure", "bench", "eval", "conditions"):
        got[key] = _load(results / f"{key}.json")
    status = got["measure"] or {"status": "missing", "rule": "measured", "reason": f"{results}/measure.json missing"}
    if status.get("status") != "measured":
        rule = str(status.get("rule") or "measured")
        got["problems"].append(_rule(rule, "measure.json", "==", "measured", status.get("reason"), "device"))
    return got


def _scores(bundle: Path, name: str, results: Path, got: Dict[str, Any]) -> Any:
    """mAP the accuracy rules judge: the device's detections scored here, or the build side's figures."""
    if got["profile"].evaluate_on_device:
        try:
            scores = score_device_map(bundle, results, got["eval"]) if got["eval"] else {}
        except BundleError as exc:  # detections missing or unreadable: the accuracy rules fail
            log.error("%s", exc)
            scores = {}
        return scores, "device detections (pycocotools)"
    return _get(got["build_release"], f"variants.{got['entry'].get('variant')}") or {}, "build side"


def _measured_rules(name: str, got: Dict[str, Any], rel: Any, scores: Dict[str, Any], source: str, baseline: Any):
    profile, bench, cond = got["profile"], got["bench"], got["conditions"] or {}
    rules = [_rule("machine_match", "conditions.json match", "==", True, _get(cond, "match.matched"), "device")]
    providers = _get(bench, "providers")
    ok_providers = None
    if providers is not None:
        ok_providers = providers.get("session") == list(profile.provider_names) and not providers.get("problems")
    rules.append(_rule("providers", "session + node placement", "==", True, ok_providers, "bench.json"))
    rules += _identity_rules(name, got["entry"], rel, bench, got["eval"], profile, got["build_release"])
    rules += _accuracy_rules(profile, scores, got["manifest"], source)
    g = profile.gate
    rules.append(_rule("fps", "fps_e2e", ">=", g.min_fps, _get(bench, "fps_e2e"), "bench.json"))
    p95 = _get(bench, "latency_ms.p95")
    rules.append(_rule("latency_p95", "latency_ms.p95", "<=", g.max_latency_p95_ms, p95, "bench.json"))
    return rules + _regression_rules(profile, _load(baseline) if baseline else None, bench, scores)


def _released_rule(name: str, got: Dict[str, Any], rel: Dict[str, Any]) -> Dict[str, Any]:
    """The release chain alone: the bundled model is the one release.json chose for profile ``name``."""
    sha, released = got["entry"].get("sha256"), _get(rel, f"profiles.{name}.sha256")
    return _rule("same_model_released", "model_sha256", "==", sha, released, "reports/release.json")


def _all_rules(
    name: str,
    got: Dict[str, Any],
    release: Optional[Path],
    scores: Dict[str, Any],
    source: str,
    baseline: Optional[Path],
) -> List[Dict[str, Any]]:
    """Every rule judged: input problems, then the measured rules (or only the release chain after a refusal)."""
    rel = _load(release) if release is not None else None
    if release is not None and rel is None:
        got["problems"].append(_rule("same_model_released", "model_sha256", "==", "readable", None, str(release)))
    rules = list(got["problems"])
    if _get(got["measure"], "status") == "measured":
        rules += _measured_rules(name, got, rel, scores, source, baseline)
    elif rel is not None:
        rules.append(_released_rule(name, got, rel))
    return rules


def _measured_figures(bench: Optional[Dict[str, Any]], scores: Dict[str, Any]) -> Dict[str, Any]:
    """The report's ``measured`` section: speed from bench.json, mAP from the scores the rules judged."""
    return {
        "fps_e2e": _get(bench, "fps_e2e"),
        "latency_ms_p95": _get(bench, "latency_ms.p95"),
        "latency_model_ms_p50": _get(bench, "latency_model_ms.p50"),
        "map50": scores.get("map50"),
        "map50_95": scores.get("map50_95"),
        "engine_build_s": _get(bench, "engine.build_s"),
        "batch_sweep": _get(bench, "batch_sweep"),
    }


def _conditions(cond: Dict[str, Any], throttled: bool) -> Dict[str, Any]:
    """The report's ``conditions`` section from the device's conditions.json."""
    return {
        "throttled": throttled,
        "reasons": cond.get("reasons", []),
        "match": cond.get("match"),
        "jetson": _get(cond, "machine.jetson"),
        "max_temp_c": _get(cond, "during.max_temp_c"),
    }


def device_gate(
    bundle: Path, name: str, results: Path, release: Optional[Path] = None, baseline: Optional[Path] = None
) -> Dict[str, Any]:
    """Judge the device results of profile ``name``; the report (``reports/gate.json`` shape + verdict).

    A refused measurement (``measure.json``) is judged by its refusal and the release chain only.
    """
    got = _inputs(bundle, name, results)
    bench, cond = got["bench"], got["conditions"] or {}
    scores, source = _scores(bundle, name, results, got)
    rules = _all_rules(name, got, release, scores, source, baseline)
    throttled = bool(cond.get("throttled"))
    verdict = _verdict(rules, throttled)
    return {
        "profile": name,
        "verdict": verdict,
        "passed": verdict == "pass",
        "failed": [r["name"] for r in rules if not r["passed"]],
        "rules": rules,
        "model_sha256": got["entry"].get("sha256"),
        "model_path": got["entry"].get("model"),
        "variant": got["entry"].get("variant"),
        "device": _get(bench, "device.cpu_model") or _get(cond, "machine.jetson.model"),
        "providers": _get(bench, "providers.session"),
        "node_placement": _get(bench, "providers.nodes"),
        "measured": _measured_figures(bench, scores),
        "conditions": _conditions(cond, throttled),
    }


def run_device_gate(
    bundle: Path, name: str, results: Path, release: Optional[Path] = None, baseline: Optional[Path] = None
) -> int:
    """Write ``gate.json`` and ``gate.md`` into ``results``; return 0 pass, 1 fail, 3 inconclusive."""
    from edgeproof.device.report import render_markdown
    from edgeproof.io import write_json, write_text

    report = device_gate(bundle, name, results, release, baseline)
    results.mkdir(parents=True, exist_ok=True)
    write_json(results / "gate.json", report)
    write_text(results / "gate.md", render_markdown(report))
    log.info("device gate %s: %s (failed: %s)", name, report["verdict"], ", ".join(report["failed"]) or "none")
    for rule in report["rules"]:
        if rule["name"] == "bundle_verified" and not rule["passed"]:  # which file, and how, on the console too
            log.error("bundle %s failed verification: %s", bundle, rule["measured"])
    return EXIT[report["verdict"]]
