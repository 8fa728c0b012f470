"""The device gate's rules over a measurement that happened: machine, providers, the sha256 chain,
accuracy, speed, energy and memory, and the regression rules against main's last verdict.

Energy and memory fields of the device's ``bench.json`` (written by the board side):
``energy_mj_per_frame`` (gross), ``energy_net_mj_per_frame``, ``power_w_mean``, ``power_w_peak``,
``energy: {measurable, reason, source, interval_ms, samples, idle_w}``, ``peak_memory_mb`` (VmHWM of
the measuring process), ``memory_growth_mb``, ``memory_leak``, ``system_ram_delta_mb``. An energy
figure the board could not measure (``energy.measurable`` false) makes the energy rules
inconclusive, with the board's reason; ``max_power_w`` judges the mean power over the timed window.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from edgeproof.profiles import Profile
from edgeproof.verdict.rules import INCONCLUSIVE, compare, is_number, result

NO_BASELINE = "no baseline on main: regression not judged"
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


def get_path(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; ``None`` where any step is missing or not a mapping."""
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _identity(name: str, got: Dict[str, Any], release: Any, release_src: str) -> List[Dict[str, Any]]:
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
    released = get_path(release, "profiles.{}.sha256".format(name))
    why = "{}: unreadable or no entry for this profile".format(release_src)
    rules.append(compare("same_model_released", "model_sha256", "==", sha, released, release_src, missing=why))
    return rules


def _accuracy(profile: Profile, scores: Dict[str, Any], manifest: Any, source: str) -> List[Dict[str, Any]]:
    g = profile.gate
    rules = [compare("map50", "map50", ">=", g.min_map50, scores.get("map50"), source)]
    if g.min_map50_95 is not None:
        rules.append(compare("map50_95", "map50_95", ">=", g.min_map50_95, scores.get("map50_95"), source))
    ref, now = get_path(manifest, "reference.map50_95"), scores.get("map50_95")
    drop = round(ref - now, 6) if is_number(ref) and is_number(now) else None
    rules.append(compare("map_drop", "fp32 map50_95 - map50_95", "<=", profile.max_map_drop, drop, source))
    return rules


def _energy(profile: Profile, bench: Dict[str, Any]) -> List[Dict[str, Any]]:
    g, rules = profile.gate, []
    energy = bench.get("energy") if isinstance(bench.get("energy"), dict) else {}
    unmeasurable = energy.get("measurable") is not True
    why = "energy not measurable on this board: {}".format(energy.get("reason") or "no energy record in bench.json")
    for rule, metric, limit in (
        ("energy", "energy_mj_per_frame", g.max_energy_mj_per_frame),
        ("power", "power_w_mean", g.max_power_w),
    ):
        if limit is None:
            continue
        if unmeasurable:
            rules.append(result(rule, metric, "<=", limit, bench.get(metric), "bench.json", INCONCLUSIVE, why))
        else:
            rules.append(compare(rule, metric, "<=", limit, bench.get(metric), "bench.json"))
    if g.max_peak_memory_mb is not None:
        peak = bench.get("peak_memory_mb")
        rules.append(compare("peak_memory", "peak_memory_mb", "<=", g.max_peak_memory_mb, peak, "bench.json"))
        rules.append(compare("memory_leak", "memory_leak", "==", False, bench.get("memory_leak"), "bench.json"))
    return rules


def _change_pct(base: Any, now: Any) -> Optional[float]:
    return round(100.0 * (now - base) / base, 3) if is_number(base) and is_number(now) and base > 0 else None


def _regression(profile: Profile, baseline: Any, bench: Dict[str, Any], scores: Dict[str, Any], notes: List[str]):
    r, rules = profile.regression, []
    wanted = [v for v in (r.max_fps_drop_pct, r.max_map_drop, r.max_energy_increase_pct) if v is not None]
    if not wanted:
        return rules
    if not isinstance(baseline, dict) or not isinstance(baseline.get("measured"), dict):
        notes.append(NO_BASELINE)
        return rules
    base = baseline["measured"]
    why = "the baseline or this run has no valid figure"
    if r.max_fps_drop_pct is not None:
        change = _change_pct(base.get("fps_e2e"), bench.get("fps_e2e"))
        drop = -change if change is not None else None
        rules.append(compare("regression_fps", "fps drop % vs main", "<=", r.max_fps_drop_pct, drop, "baseline", why))
    if r.max_map_drop is not None:
        b, now = base.get("map50_95"), scores.get("map50_95")
        drop = round(b - now, 6) if is_number(b) and is_number(now) else None
        rules.append(compare("regression_map", "map50_95 drop vs main", "<=", r.max_map_drop, drop, "baseline", why))
    if r.max_energy_increase_pct is not None:
        rise = _change_pct(base.get("energy_mj_per_frame"), bench.get("energy_mj_per_frame"))
        limit = r.max_energy_increase_pct
        rules.append(compare("regression_energy", "mJ/frame rise % vs main", "<=", limit, rise, "baseline", why))
    return rules


def measured_rules(
    name: str, got: Dict[str, Any], release: Any, release_src: str, scores: Dict[str, Any], source: str, baseline: Any
) -> List[Dict[str, Any]]:
    """Every rule over a measurement that happened (``got``: the inputs read by the device gate).

    ``baseline`` is main's last ``gate.json`` for the profile (parsed), or None.
    """
    profile = got["profile"]
    bench = got.get("bench") if isinstance(got.get("bench"), dict) else {}
    cond = got.get("conditions") if isinstance(got.get("conditions"), dict) else {}
    rules = [compare("machine_match", "conditions.json match", "==", True, get_path(cond, "match.matched"), "device")]
    providers = get_path(bench, "providers")
    ok = None
    if isinstance(providers, dict):
        ok = providers.get("session") == list(profile.provider_names) and not providers.get("problems")
    rules.append(compare("providers", "session + node placement", "==", True, ok, "bench.json"))
    rules += _identity(name, got, release, release_src)
    rules += _accuracy(profile, scores, got["manifest"], source)
    g = profile.gate
    rules.append(compare("fps", "fps_e2e", ">=", g.min_fps, bench.get("fps_e2e"), "bench.json"))
    p95 = get_path(bench, "latency_ms.p95")
    rules.append(compare("latency_p95", "latency_ms.p95", "<=", g.max_latency_p95_ms, p95, "bench.json"))
    rules += _energy(profile, bench)
    return rules + _regression(profile, baseline, bench, scores, got["notes"])


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
    }
    figures.update({k: bench.get(k) for k in ENERGY_FIELDS})
    return figures
