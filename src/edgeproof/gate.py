"""The build gate: the build profile's release rules over the measured files, for exactly the artifact measured.

The rules are judged by the one rule engine (:mod:`edgeproof.verdict.rules`) the device gate also
uses; their thresholds have one home, ``profiles.<release.build_profile>.gate`` in params.yaml
(:func:`build_thresholds`), which is also what the release choice judges each variant against. The
rule that holds the measured files to themselves, ``results_consistent``, is :mod:`edgeproof.gate_consistency`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeproof.evaluation.params import CrossCheckParams
from edgeproof.gate_consistency import CONSISTENT, Released, consistency_rule
from edgeproof.gate_rescore import RESCORED, Rescored, judged_scores, rescore_rule
from edgeproof.profiles import DeviceGate, Profile, check_build_profile
from edgeproof.verdict.eval_size import with_dropped
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
    what the evaluation used, never what judges it), the mAP50 too where ultralytics' detections were
    scored (``ultralytics_map50``: the build profile's accuracy rule is ``map50``, so a cross-check of
    the mAP50-95 alone vouched for a figure no rule judges). A comparison that did not run must say why
    (``skipped``). Whether no comparison ran at all is :func:`unverified`'s question.
    """
    settings = settings or CrossCheckParams()
    cc = eval_metrics.get("cross_check")
    if not isinstance(cc, Mapping):
        return ["no cross_check in the evaluation"]
    problems = []
    if cc.get("passed") is not True:
        problems.append("the evaluation's own cross-check did not pass")
    problems += _map50_problems(eval_metrics.get("map50"), cc.get("ultralytics_map50"), settings)
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


def _map50_problems(map50: Any, theirs: Any, settings: CrossCheckParams) -> list[str]:
    """The reported ``map50`` against pycocotools' mAP50 of ultralytics' own detections, where it ran."""
    if theirs is None or not is_number(map50):
        return []  # not scored, or a map50 its own rule holds invalid or missing
    if not is_number(theirs):
        return [f"cross_check.ultralytics_map50 {theirs!r} is not a number"]
    tol = settings.ultralytics_tolerance
    if abs(theirs - map50) > tol + 1e-9:
        return [f"ultralytics_map50 {theirs:.4f} vs map50 {map50:.4f} differs by more than {tol} (params)"]
    return []


def _map50_unchecked(eval_metrics: Mapping[str, Any]) -> str | None:
    """Why the reported ``map50`` went unchecked although ultralytics' detections were scored (None: it was
    checked, or they were not scored): the evaluation writes ``ultralytics_map50`` whenever it scores them."""
    cc = eval_metrics.get("cross_check")
    if not isinstance(cc, Mapping) or cc.get("ultralytics") is None or cc.get("ultralytics_map50") is not None:
        return None
    return "cross_check.ultralytics_map50 is missing, though ultralytics' detections were scored: map50 is not checked"


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
    missing = None if problems else (unverified(eval_metrics, settings) or _map50_unchecked(eval_metrics))
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
    peers: Mapping[str, Any] | None = None,
    profile: str | None = None,
    released: Released | None = None,
    val_negatives_dropped: int | None = None,
    rescored: Rescored | None = None,
    more_rules: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Apply every rule; the verdict passes only if all pass (statuses and verdict: :mod:`edgeproof.verdict.rules`).

    The identity rules tie the verdict to one file: the model being released must have the sha256
    that was evaluated and the one that was benchmarked. ``sources`` names the two files in the
    report; ``cross_check``: params' ``evaluate.cross_check`` (tolerances and which scorers are on);
    ``peers``: the release's other variants' ``bench.json`` by path, measured on the same machine
    (:func:`consistency_rule`); ``profile``: the name ``thresholds`` are under, for the keys a reason names
    (:mod:`edgeproof.verdict.eval_size`, :mod:`edgeproof.verdict.timed_frames`); ``released``: the
    ``release.json`` record of the gated variant, whose copies of the files' figures must be theirs;
    ``val_negatives_dropped``: the background images the data stage left out of val, which the accuracy
    rules' ``over`` names; ``rescored``: the gate's own scoring of the file (:mod:`edgeproof.gate_rescore`;
    None: not scored); ``more_rules``: rules the caller judged from files this does not read (the stage's
    ``val_identity`` and ``release_choice``), judged with the rest. A file that is not a JSON object fails
    every rule on it (never raises).
    """
    ev, bench = sources
    rules = _readable(eval_metrics, bench_metrics, sources)
    eval_metrics = eval_metrics if isinstance(eval_metrics, Mapping) else {}
    bench_metrics = bench_metrics if isinstance(bench_metrics, Mapping) else {}
    fps, latency_p95 = speed_rules(thresholds, bench_metrics, bench, profile)
    accuracy = _accuracy(thresholds, eval_metrics, ev, profile, rescored)
    rules += [fps, *with_dropped(accuracy, val_negatives_dropped), latency_p95]
    rules.append(_cross_check_rule(eval_metrics, ev, cross_check))
    rules.append(consistency_rule(eval_metrics, bench_metrics, sources, peers or {}, released))
    rules += [rescore_rule(eval_metrics, ev, rescored)] if rescored is not None else []
    rules += [*more_rules, *_identity_rules(eval_metrics, bench_metrics, sources, model_sha256)]
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


def _readable(eval_metrics: Any, bench_metrics: Any, sources: tuple[str, str]) -> list[dict[str, Any]]:
    """An invalid ``readable`` rule for each measured file that is not a JSON object."""
    rules = []
    for data, source in zip((eval_metrics, bench_metrics), sources, strict=True):
        if not isinstance(data, Mapping):
            why = f"expected a JSON object of metrics, got {type(data).__name__}"
            rules.append(result("readable", source, "==", "object", None, source, INVALID, why))
    return rules


def _identity_rules(
    eval_metrics: Mapping[str, Any], bench_metrics: Mapping[str, Any], sources: tuple[str, str], model_sha256: str
) -> list[dict[str, Any]]:
    """``same_model_evaluated`` / ``same_model_benchmarked``: each file's ``model_sha256`` is the gated file's."""
    pairs = zip(("evaluated", "benchmarked"), (eval_metrics, bench_metrics), sources, strict=True)
    return [
        compare(f"same_model_{what}", "model_sha256", "==", model_sha256, data.get("model_sha256"), source)
        for what, data, source in pairs
    ]


def _accuracy(
    g: DeviceGate, eval_metrics: Mapping[str, Any], ev: str, profile: str | None, rescored: Rescored | None
) -> list[dict[str, Any]]:
    """The accuracy rules over the lower of ``eval.json``'s figure and the gate's own (:func:`judged_scores`),
    the rule's reason saying so where the gate's was the lower."""
    scores, notes = judged_scores(eval_metrics, rescored)
    rules = accuracy_rules(g, scores, ev, profile)
    for rule in rules:
        note = notes.get(rule["name"])
        if note:
            rule["reason"] = f"{rule['reason']}; {note}" if rule["reason"] else note
    return rules


_IDENTITY = {"same_model_evaluated": "eval", "same_model_benchmarked": "bench"}  # check_gate's same_model_<what>
# The rules that vouch for a measured file as a whole, and the statuses in which they do not: an identity
# that differs or is not there (the file may be another model's), a file that contradicts itself or the
# second scorer (an edited figure). A threshold rule's own fail leaves its figure the model's.
_WHOLE_FILE = {
    "same_model_evaluated": (FAIL, INVALID, INCONCLUSIVE),
    "same_model_benchmarked": (FAIL, INVALID, INCONCLUSIVE),
    CONSISTENT: (INVALID,),
    RESCORED: (INVALID,),
    "val_identity": (INVALID,),  # edgeproof.val_identity: eval.json scored on a val other than the data stage's
    "cross_check": (INVALID,),
    "readable": (INVALID,),
}


def unheld_files(report: Mapping[str, Any]) -> dict[str, str]:
    """``{"eval" | "bench": why}``: the measured files whose figures ``report`` (:func:`check_gate`'s) does not
    hold as the gated model's, each with the first rule that says so (``gate rule same_model_benchmarked:
    fail``). A figure there may be possible, yet not this model's: the headline withholds it. A file is
    told from its ``same_model_*`` rule's source; a rule naming a file that is neither withholds both."""
    rules = [r for r in report.get("rules") or [] if isinstance(r, Mapping)]
    roles = {r.get("source"): _IDENTITY[r["name"]] for r in rules if r.get("name") in _IDENTITY}
    out: dict[str, str] = {}
    for rule in rules:
        if rule.get("status") not in _WHOLE_FILE.get(str(rule.get("name")), ()):
            continue
        named = [roles.get(source) for source in str(rule.get("source") or "").split(", ")]
        for role in named if all(named) else ("eval", "bench"):
            out.setdefault(str(role), f"gate rule {rule['name']}: {rule['status']}")
    return out


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
