"""The build gate: the build profile's release rules over the measured files, for exactly the artifact measured.

The rules are judged by the one rule engine (:mod:`edgeproof.verdict.rules`) the device gate also
uses; their thresholds have one home, ``profiles.<release.build_profile>.gate`` in params.yaml
(:func:`build_thresholds`), which is also what the release choice judges each variant against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeproof.evaluation.params import CrossCheckParams
from edgeproof.profiles import DeviceGate, Profile, check_build_profile
from edgeproof.verdict.report import rule_table, verdict_line
from edgeproof.verdict.rules import (
    FAIL,
    INCONCLUSIVE,
    INVALID,
    PASS,
    compare,
    get_path,
    is_number,
    json_safe,
    result,
    verdict,
)
from edgeproof.verdict.thresholds import accuracy_rules, speed_rules


def build_thresholds(profiles: Mapping[str, Profile], build_profile: str) -> DeviceGate:
    """The build gate's thresholds: ``profiles.<build_profile>.gate`` (one home for the build machine's rules).

    A params file without any ``profiles`` gets the profile schema's defaults (:class:`DeviceGate`);
    one that has profiles but not the build profile is an error naming ``release.build_profile``.
    """
    if not profiles:
        return DeviceGate()
    check_build_profile(build_profile, profiles)
    return profiles[build_profile].gate


_SCORERS = ("independent", "ultralytics")


def cross_check_problems(eval_metrics: Mapping[str, Any], settings: CrossCheckParams | None = None) -> list[str]:
    """Why ``eval.json``'s mAP cross-check does not vouch for its mAP (empty: it does).

    The differences are recomputed from the recorded numbers rather than taken from the file: the
    pycocotools mAP50-95 must be the one reported, and every comparison that ran must agree within the
    tolerance of ``settings`` (params' ``evaluate.cross_check``; the measured file's own ``tolerance`` is
    what the evaluation used, never what judges it). A comparison that did not run must say why
    (``skipped``). Whether no comparison ran at all is :func:`unverified`'s question.
    """
    settings = settings or CrossCheckParams()
    cc = eval_metrics.get("cross_check")
    if not isinstance(cc, Mapping):
        return ["no cross_check in the evaluation"]
    problems = []
    if cc.get("passed") is not True:
        problems.append("the evaluation's own cross-check did not pass")
    reference = cc.get("pycocotools")
    if not is_number(reference) or reference != eval_metrics.get("map50_95"):
        problems.append(f"cross_check.pycocotools {reference!r} is not the reported map50_95")
        return problems
    skipped = cc.get("skipped") if isinstance(cc.get("skipped"), Mapping) else {}
    for name in _SCORERS:
        value, tol = cc.get(name), getattr(settings, f"{name}_tolerance")
        if value is None:
            if not (isinstance(skipped.get(name), str) and skipped[name]):
                problems.append(f"cross_check.{name} is missing and not skipped with a reason")
        elif not is_number(value):
            problems.append(f"cross_check.{name} {value!r} is not a number")
        elif abs(value - reference) > tol + 1e-9:
            problems.append(f"{name} {value:.4f} vs pycocotools {reference:.4f} differs by more than {tol} (params)")
    return problems


def unverified(eval_metrics: Mapping[str, Any], settings: CrossCheckParams | None = None) -> str | None:
    """Why the mAP was checked by no second scorer (None: one ran, or params turn both off)."""
    settings = settings or CrossCheckParams()
    cc = eval_metrics.get("cross_check")
    wanted = [n for n in _SCORERS if getattr(settings, n) is not False]
    if not wanted or not isinstance(cc, Mapping) or any(cc.get(n) is not None for n in _SCORERS):
        return None
    skipped = cc.get("skipped") if isinstance(cc.get("skipped"), Mapping) else {}
    why = "; ".join(f"{n}: {skipped.get(n) or 'no reason'}" for n in wanted)
    return f"no second scorer ran ({why}): the mAP is not cross-checked"


def _cross_check_rule(
    eval_metrics: Mapping[str, Any], source: str, settings: CrossCheckParams | None
) -> dict[str, Any]:
    problems = cross_check_problems(eval_metrics, settings)
    missing = None if problems else unverified(eval_metrics, settings)
    cc = eval_metrics.get("cross_check")
    ran = [n for n in _SCORERS if isinstance(cc, Mapping) and cc.get(n) is not None]
    measured = "; ".join(problems) if problems else (missing or f"agrees ({', '.join(ran) or 'both turned off'})")
    status, why = (INVALID, problems[0]) if problems else ((INCONCLUSIVE, missing) if missing else (PASS, None))
    return result("cross_check", "cross_check", "agrees", "within tolerance", measured, source, status, why)


def check_gate(
    thresholds: DeviceGate,
    eval_metrics: Mapping[str, Any],
    bench_metrics: Mapping[str, Any],
    model_sha256: str,
    sources: tuple[str, str] = ("metrics/eval.json", "metrics/bench.json"),
    cross_check: CrossCheckParams | None = None,
) -> dict[str, Any]:
    """Apply every rule; the verdict passes only if all pass (statuses and verdict: :mod:`edgeproof.verdict.rules`).

    The identity rules tie the verdict to one file: the model being released must have the sha256
    that was evaluated and the one that was benchmarked. ``sources`` names the two files in the
    report; ``cross_check``: params' ``evaluate.cross_check`` (tolerances and which scorers are on).
    A file that is not a JSON object fails every rule on it (never raises).
    """
    ev, bench = sources
    rules = []
    for data, source in ((eval_metrics, ev), (bench_metrics, bench)):
        if not isinstance(data, Mapping):
            why = f"expected a JSON object of metrics, got {type(data).__name__}"
            rules.append(result("readable", source, "==", "object", None, source, INVALID, why))
    eval_metrics = eval_metrics if isinstance(eval_metrics, Mapping) else {}
    bench_metrics = bench_metrics if isinstance(bench_metrics, Mapping) else {}
    g = thresholds
    fps, latency_p95 = speed_rules(g, bench_metrics, bench)
    rules += [fps, *accuracy_rules(g, eval_metrics, ev), latency_p95]
    rules.append(_cross_check_rule(eval_metrics, ev, cross_check))
    for what, data, source in (("evaluated", eval_metrics, ev), ("benchmarked", bench_metrics, bench)):
        sha = data.get("model_sha256")
        rules.append(compare(f"same_model_{what}", "model_sha256", "==", model_sha256, sha, source))
    final = verdict(rules)
    return {
        "verdict": final,
        "passed": final == PASS,
        "failed": [r["name"] for r in rules if r["status"] != PASS],
        "rules": rules,
        "model_sha256": model_sha256,
        "device": json_safe(get_path(bench_metrics, "device.cpu_model")),
        "providers": json_safe(get_path(bench_metrics, "device.providers_used")),
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    """The human-readable gate report: a verdict line and a rule table."""
    providers = report.get("providers")
    used = ", ".join(providers) if isinstance(providers, list) and providers else "n/a"
    lines = [
        "# Release gate",
        "",
        verdict_line(report.get("verdict") or (PASS if report["passed"] else FAIL)),
        "",
        f"Model sha256: `{report['model_sha256']}`  ",
        f"Device: {report.get('device') or 'unknown'} ({used})",
        "",
        *rule_table(report),
    ]
    return "\n".join(lines) + "\n"
