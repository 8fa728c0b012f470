"""The device gate's rules over a measurement that happened: machine, providers, the sha256 chain,
accuracy, speed, energy and memory, and the regression rules against main's last verdict.

Energy and memory fields of the device's ``bench.json`` (written by the board side):
``energy_mj_per_frame`` (gross), ``energy_net_mj_per_frame``, ``power_w_mean``, ``power_w_peak``,
``energy: {measurable, reason, source, interval_ms, samples, inside_samples, idle_w}``, ``peak_memory_mb``
(VmHWM of the measuring process from just before the gated session was built: ``memory.peak_covers``),
``memory_growth_mb``, ``memory_leak``, ``system_ram_delta_mb`` (what the run
adds over the idle window just before it, the model already loaded in both). An energy figure the
board could not measure (``energy.measurable`` false) makes the energy rules inconclusive, with the
board's reason, and so does ``memory.measurable`` false (or no ``memory``
record) for the memory rules; ``max_power_w`` judges the mean power over the timed window.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from edgeproof.device.results import recorded_settings
from edgeproof.profiles import Profile, match_machine, mismatches
from edgeproof.verdict.baseline import regression_rules
from edgeproof.verdict.conditions import conditions_rule
from edgeproof.verdict.consistency import consistency_rule
from edgeproof.verdict.energy import energy_not_judged
from edgeproof.verdict.eval_size import held_by_size
from edgeproof.verdict.flags import not_measurable
from edgeproof.verdict.placement import providers_rule
from edgeproof.verdict.reference import map_drop_rule
from edgeproof.verdict.rules import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Malformed,
    compare,
    get_path,
    result,
)
from edgeproof.verdict.thresholds import accuracy_rules, speed_rules
from edgeproof.verdict.timed_frames import held_by_frames

ENERGY_FIELDS = (
    "energy_mj_per_frame",
    "energy_net_mj_per_frame",
    "power_w_mean",
    "power_w_peak",
    "peak_memory_mb",
    "memory_growth_mb",
    "memory_leak",
    "system_ram_delta_mb",
)


def _identity(name: str, got: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The file the results name is the variant's (``got["entry"]``): benchmarked, and evaluated."""
    sha, bench, ev, profile = got["entry"].get("sha256"), got.get("bench"), got.get("eval"), got["profile"]
    rules = [
        compare("same_profile", "profile", "==", name, get_path(bench, "profile"), "bench.json"),
        compare("same_model_benchmarked", "model_sha256", "==", sha, get_path(bench, "model_sha256"), "bench.json"),
    ]
    if profile.evaluate_on_device:
        rules.append(
            compare("same_model_evaluated", "model_sha256", "==", sha, get_path(ev, "model_sha256"), "eval.json")
        )
    else:  # the build machine's evaluation of this very file stands in (it must have been evaluated there)
        build = get_path(got["build_release"], "variants.{}".format(got["entry"].get("variant"))) or {}
        evaluated = build.get("sha256") if build.get("evaluated") else None
        rules.append(compare("same_model_evaluated", "model_sha256", "==", sha, evaluated, "build/release.json"))
    return rules


def _released(name: str, got: Dict[str, Any], release: Any, release_src: str) -> Dict[str, Any]:
    released = get_path(release, "profiles.{}.sha256".format(name))
    why = "{}: unreadable or no entry for this profile".format(release_src)
    return compare("same_model_released", "model_sha256", "==", got["entry"].get("sha256"), released, release_src, why)


def _accuracy(
    name: str, profile: Profile, scores: Dict[str, Any], got: Dict[str, Any], source: str
) -> List[Dict[str, Any]]:
    # map_drop's fp32 reference is measured here, never the build's claim alone (edgeproof.verdict.reference)
    drop = map_drop_rule(name, profile, scores, got, source)
    return [*accuracy_rules(profile.gate, scores, source, name), drop]  # measured_rules holds drop by the val size


# The rules energy_rules gives: a profile's energy, power and memory budgets
BUDGET_RULES = ("energy", "power", "peak_memory", "memory_leak")


def energy_rules(profile: Profile, bench: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The profile's energy, power and memory budgets (:data:`BUDGET_RULES`, those it sets) over ``bench``:
    a record that says the figure was not measured (or no record) makes its rule inconclusive, never a pass."""
    g, rules = profile.gate, []
    for rule, metric, limit in (
        ("energy", "energy_mj_per_frame", g.max_energy_mj_per_frame),
        ("power", "power_w_mean", g.max_power_w),
    ):
        if limit is None:
            continue
        value = bench.get(metric)
        held = energy_not_judged(bench, rule, metric, limit, "bench.json", value)
        rules.append(held or compare(rule, metric, "<=", limit, value, "bench.json"))
    if g.max_peak_memory_mb is None:
        return rules
    for rule, metric, op, limit in (
        ("peak_memory", "peak_memory_mb", "<=", g.max_peak_memory_mb),
        ("memory_leak", "memory_leak", "==", False),  # null: too few RSS samples for a rate, not judged
    ):
        value, unjudged = bench.get(metric), None
        if metric == "memory_leak" and value is not None and not isinstance(value, bool):
            value = Malformed(metric, value, "true or false")  # "false" or 0 is no answer: invalid, named
        if metric == "memory_leak" and value is None:
            unjudged = "leak not judged: {}".format(get_path(bench, "memory.leak_reason") or "no memory_leak figure")
        held = not_measurable(bench, "memory", rule, metric, op, limit, "bench.json", value)
        rules.append(held or _unreset_peak(compare(rule, metric, op, limit, value, "bench.json", unjudged), bench))
    if rules[-1]["name"] == "memory_leak" and rules[-1]["measured"] is True:
        rules[-1]["reason"] = _leak_reason(bench)
    return rules


def _unreset_peak(rule: Dict[str, Any], bench: Dict[str, Any]) -> Dict[str, Any]:
    """``rule``; a failed ``peak_memory`` on a peak the kernel would not reset (``memory.peak_reset`` false: the
    process's since it started, an upper bound) inconclusive: under the budget it passes, over it it cannot
    show that the model is."""
    if rule["name"] != "peak_memory" or rule["status"] != FAIL or get_path(bench, "memory.peak_reset") is not False:
        return rule
    why = "peak_memory_mb {!r} is over the budget, but the kernel refused the peak reset (memory.peak_reset false): "
    why += "it covers {}, an upper bound that includes memory not the model's; measure on a kernel that takes "
    why += "/proc/self/clear_refs 5"
    rule.update(status=INCONCLUSIVE, reason=why.format(rule["measured"], get_path(bench, "memory.peak_covers")))
    return rule


def _leak_reason(bench: Dict[str, Any]) -> str:
    """What the board saw grow: the resident memory over the timed frames, and its rate per frame."""
    rate, limit = get_path(bench, "memory.growth_kib_per_frame"), get_path(bench, "memory.leak_threshold_kib_per_frame")
    return "resident memory grew {!r} MB over the timed frames ({!r} KiB/frame, a leak above {!r})".format(
        bench.get("memory_growth_mb"), rate, limit
    )


def _machine(profile: Profile, cond: Dict[str, Any]) -> Dict[str, Any]:
    """The board's recorded machine facts against the judging rules' ``match`` (not the board's own answer,
    which a board measuring with other rules would have given against those)."""
    facts, metric = cond.get("machine"), "conditions.json machine vs match"
    if not isinstance(facts, dict):
        return compare("machine_match", metric, "==", True, None, "device", "conditions.json: no machine facts")
    try:
        bad = mismatches(match_machine(profile.match, facts))
    except (TypeError, AttributeError, ValueError) as exc:
        why = "conditions.json: machine facts unreadable ({}: {})".format(type(exc).__name__, exc)
        return result("machine_match", metric, "==", True, None, "device", INCONCLUSIVE, why)
    if not bad:
        return result("machine_match", metric, "==", True, True, "device", PASS)
    why = "measured on a machine the rules' match does not take ({}): says nothing about the model".format(
        "; ".join(bad)
    )
    return result("machine_match", metric, "==", True, False, "device", INCONCLUSIVE, why)


def _proposed_operating_point(got: Dict[str, Any]) -> List[str]:
    """Where the bundle's deploy.json (the pull request's build) and the device's mAP detections were made at
    other deploy or scoring settings than the base's: a proposed change, shown with both values."""
    out, base = [], got["operating"]
    for section in ("deploy", "map"):
        theirs, ours = get_path(got.get("setup"), section), base.get(section)
        if theirs != ours:
            out.append("deploy.json {} {} (proposed; the base's {})".format(section, _j(theirs), _j(ours)))
    scored = get_path(got.get("eval"), "settings")
    if got["profile"].evaluate_on_device and got.get("eval") is not None and scored != base.get("map"):
        out.append(
            "eval.json settings {} (the device's mAP detections; the base's map {})".format(
                _j(scored), _j(base.get("map"))
            )
        )
    return out


def _j(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _as_judged(profile: Profile, got: Dict[str, Any], bench: Dict[str, Any]) -> Dict[str, Any]:
    """Were the figures measured with the judging rules' settings (frames, warm-up, batch, input, deploy),
    and is the bundle's operating point (deploy and mAP scoring) the base's?"""
    name, metric, recorded = "measured_as_judged", "bench.json settings", bench.get("settings")
    if not isinstance(recorded, dict) or not isinstance(got.get("setup"), dict):
        return compare(name, metric, "==", "the rules' settings", None, "bench.json", "no recorded settings")
    try:
        variant = profile.for_variant(got["entry"].get("variant"))
        wanted = json.loads(json.dumps(recorded_settings(variant, {"deploy": got["operating"]["deploy"]})))
    except (KeyError, TypeError, ValueError) as exc:
        why = "the rules' settings for this bundle cannot be made ({}: {})".format(type(exc).__name__, exc)
        return result(name, metric, "==", "the rules' settings", None, "bench.json", INCONCLUSIVE, why)
    differ = sorted(k for k in set(wanted) | set(recorded) if wanted.get(k) != recorded.get(k))
    proposed = _proposed_operating_point(got)
    if not differ and not proposed:
        return result(name, metric, "==", "the rules' settings", "the rules' settings", "bench.json", PASS)
    why = []
    if differ:
        why.append(
            "measured with {}; the rules say {}: not what is judged, measure again with the base's params.yaml".format(
                ", ".join("{} {!r}".format(k, recorded.get(k)) for k in differ),
                ", ".join("{} {!r}".format(k, wanted.get(k)) for k in differ),
            )
        )
    if proposed:
        why.append("; ".join(proposed) + ": judged at the base's settings only; takes effect after merge")
    measured = {k: recorded.get(k) for k in differ} or "a proposed operating point"
    return result(name, metric, "==", "the rules' settings", measured, "bench.json", INCONCLUSIVE, "; ".join(why))


def evidence_rules(name: str, got: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The rules that say ``got["bench"]`` (and ``got["eval"]``) are a real measurement of exactly the file
    ``got["entry"]`` names, on the profile's machine, providers and settings: the same for the released
    file and for a candidate (:func:`edgeproof.verdict.evidence.variant_evidence`)."""
    profile = got["profile"]
    bench = got.get("bench") if isinstance(got.get("bench"), dict) else {}
    cond = got.get("conditions") if isinstance(got.get("conditions"), dict) else {}
    rules = [
        _machine(profile, cond),
        conditions_rule(cond),
        _as_judged(profile, got, bench),
        consistency_rule(name, bench, got),
        providers_rule(profile, bench),
    ]
    return rules + _identity(name, got)


def measured_rules(
    name: str, got: Dict[str, Any], release: Any, release_src: str, scores: Dict[str, Any], source: str, baseline: Any
) -> List[Dict[str, Any]]:
    """The released file's rules after its evidence (:func:`evidence_rules`): released, accuracy, speed,
    energy, memory and the regression rules (``got``: the inputs read by the device gate).

    ``baseline`` is main's last ``gate.json`` for the profile (parsed), or None.
    """
    profile = got["profile"]
    bench = got.get("bench") if isinstance(got.get("bench"), dict) else {}
    rules = [_released(name, got, release, release_src)]
    rules += _accuracy(name, profile, scores, got, source)
    rules += speed_rules(profile.gate, bench, "bench.json", name)
    rules += energy_rules(profile, bench)
    rules += regression_rules(name, profile, baseline, bench, scores, got)
    # regression_map is an mAP drop over the same val set: judged only over enough of it, as the floors are;
    # regression_fps is this run's FPS: judged only over enough timed frames, as the fps rule is
    return held_by_frames(held_by_size(rules, profile.gate, scores, name), profile.gate, bench, name)


def measured_figures(bench: Dict[str, Any], scores: Dict[str, Any]) -> Dict[str, Any]:
    """The report's ``measured`` section: speed, energy and memory from bench.json, mAP from the scores judged."""
    figures = {
        "fps_e2e": bench.get("fps_e2e"),
        "latency_ms_p95": get_path(bench, "latency_ms.p95"),
        "latency_model_ms_p50": get_path(bench, "latency_model_ms.p50"),
        "map50": scores.get("map50"),
        "map50_95": scores.get("map50_95"),
        "engine_build_s": get_path(bench, "engine.build_s"),
        "batch_sweep": bench.get("batch_sweep"),
        "energy": bench.get("energy"),
        "memory": bench.get("memory"),  # its measurable flag decides whether a report shows peak_memory_mb
    }
    figures.update({k: bench.get(k) for k in ENERGY_FIELDS})
    return figures
