"""Candidates on the board: would they pass the profile's rules, and are they faster than the released one?

The device measures a profile's ``candidates`` after the released variant (:mod:`edgeproof.device.candidates`).
Here, on the CI side, each is judged like the released file but never gates: the same evidence
rules (:func:`edgeproof.verdict.evidence.variant_evidence`: its detections checked against the bundle,
reproduced by the candidate's bundled model re-run here and scored with pycocotools; the machine,
conditions, settings, results consistency, providers and node placement, and its identity: the sha256
the bundle shipped), then the profile's speed and accuracy rules, its mAP budget against the
released variant's on-device mAP and its energy, power and memory budgets give it a verdict of its own,
with the run's throttling. The board measures no energy, power or memory figure for a candidate
(:mod:`edgeproof.device.candidates`), so a profile that sets those budgets leaves it inconclusive, the
budgets named (``not_judged``), never "would pass". A candidate whose evidence is missing,
inconsistent or not reproduced is never advised for release. A candidate that would pass and is faster
gets the one-line change that releases it; the next pull request's device gate then gates exactly that
file. One that is faster and passes every rule it was measured against, its budgets not judged, is not
advised: ``next_step`` says only a pull request releasing it has them judged.
Python 3.8 (the device gate runs beside the board's artifacts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping

from edgeproof.profiles import VARIANTS
from edgeproof.verdict.conditions import run_throttled
from edgeproof.verdict.eval_size import held_by_size
from edgeproof.verdict.evidence import Unreadable, load_results, variant_evidence
from edgeproof.verdict.measured import BUDGET_RULES, energy_rules
from edgeproof.verdict.rules import (
    INCONCLUSIVE,
    INVALID,
    PASS,
    compare,
    get_path,
    is_number,
    verdict,
)
from edgeproof.verdict.thresholds import accuracy_rules, speed_rules

FOLDER = "candidates"


def _view(got: Dict[str, Any], folder: Path, entry: Mapping[str, Any], shipped: Mapping[str, Any]) -> Dict[str, Any]:
    """The run as the candidate's own measurement: its manifest entry and results files, the run's machine,
    conditions and settings. Its status record is the run's, with the FPS the run's bench.json lists for
    it (``candidates[]``: the board writes both from one run, like measure.json's for the released file)."""
    files = {}
    for key in ("bench", "eval"):
        files[key] = load_results(folder / "{}.json".format(key))
        if files[key] is not None and not isinstance(files[key], dict):
            raise Unreadable("{}: expected a JSON object".format(folder / "{}.json".format(key)))
    status = {k: v for k, v in (got.get("measure") or {}).items() if k != "fps_e2e"}
    status["fps_e2e"] = entry.get("fps_e2e")
    return {**got, **files, "entry": dict(shipped), "measure": status, "notes": []}


def _rules(
    name: str, profile: Any, bench: Mapping[str, Any], scores: Mapping[str, Any], released_map: Any
) -> List[Dict[str, Any]]:
    """The profile's speed and accuracy thresholds, the mAP budget against the released variant's (its accuracy
    rules inconclusive over too small a val set, :mod:`edgeproof.verdict.eval_size`), and its energy, power
    and memory budgets (inconclusive where the candidate's bench.json did not measure them)."""
    map_now = scores.get("map50_95")
    drop = round(released_map - map_now, 6) if is_number(released_map) and is_number(map_now) else None
    map_drop = compare("map_drop", "released map50_95 - candidate's", "<=", profile.max_map_drop, drop, "detections")
    return [
        *speed_rules(profile.gate, bench, "bench.json", name),
        *accuracy_rules(profile.gate, scores, "detections", name),
        *held_by_size([map_drop], profile.gate, scores, name),
        *energy_rules(profile, bench),
    ]


def _next_step(name: str, variant: Any, rules: List[Dict[str, Any]], throttled: bool, speedup: Any) -> Dict[str, Any]:
    """``advice`` for a candidate that would pass and is faster; for one faster that passes every rule but
    budgets not measured for it, ``not_judged`` and a ``next_step`` that says it is not advised (a budget
    nobody measured is no pass); else nothing."""
    change = "profiles.{}.variant: {}".format(name, variant)
    unjudged = [r["name"] for r in rules if r["name"] in BUDGET_RULES and r["status"] == INCONCLUSIVE]
    out: Dict[str, Any] = {"not_judged": unjudged} if unjudged else {}
    if speedup is None or speedup <= 1.0:
        return out
    if verdict(rules, throttled) == PASS:
        return {"advice": "would pass at {}x the released variant's FPS: set {} to release it".format(speedup, change)}
    if unjudged and verdict([r for r in rules if r["name"] not in unjudged], throttled) == PASS:
        why = "{}x the released variant's FPS on the rules it was measured against, but {} not measured for a"
        why += " candidate: not advised; only a pull request that releases it ({}) has its device gate judge them"
        out["next_step"] = why.format(speedup, ", ".join(unjudged), change)
    return out


def _one(
    bundle: Path, results: Path, name: str, got: Dict[str, Any], entry: Mapping[str, Any], released: Mapping[str, Any]
) -> Dict[str, Any]:
    variant = entry.get("variant")
    shipped = {c.get("variant"): c for c in got["entry"].get("candidates") or [] if isinstance(c, dict)}
    out: Dict[str, Any] = {"variant": variant, "status": entry.get("status"), "reason": entry.get("reason")}
    skipped = {c.get("variant") for c in got["entry"].get("candidates_skipped") or []}
    if entry.get("status") == "not shipped" and variant in skipped:  # the bundle left it out, and said why
        out["verdict"] = INCONCLUSIVE
        return out
    if variant not in VARIANTS or variant not in shipped:
        out.update(verdict=INVALID, reason="not a candidate the bundle shipped for this profile")
        return out
    if entry.get("status") != "measured":
        out["verdict"] = INCONCLUSIVE
        return out
    view = _view(got, results / FOLDER / variant, entry, shipped[variant])
    scores, source, rules = variant_evidence(bundle, results / FOLDER / variant, name, view)
    bench = view["bench"] or {}
    rules += _rules(name, got["profile"], bench, scores, released.get("map50_95"))
    fps, base = bench.get("fps_e2e"), released.get("fps_e2e")
    speedup = round(fps / base, 3) if is_number(fps) and is_number(base) and base > 0 else None
    throttled = run_throttled(got)[0]
    final = verdict(rules, throttled)  # a hot board's figures say nothing for a candidate either
    out.update(
        verdict=final,
        rules=rules,
        map_source=source,
        fps_e2e=fps,
        latency_ms_p95=get_path(bench, "latency_ms.p95"),
        map50_95=scores.get("map50_95"),
        map50=scores.get("map50"),
        speedup=speedup,
        model_sha256=shipped[variant].get("sha256"),
        **_next_step(name, variant, rules, throttled, speedup),
    )
    return out


def judge_candidates(
    bundle: Path, name: str, results: Path, got: Dict[str, Any], released: Mapping[str, Any]
) -> List[Dict[str, Any]]:
    """Each candidate in the device's ``bench.json``, judged; ``released``: the released variant's measured
    figures (``fps_e2e``, ``map50_95``). Never raises for a candidate: what cannot be judged says why."""
    out = []
    for entry in get_path(got.get("bench") or {}, "candidates") or []:
        if not isinstance(entry, dict):
            continue
        try:
            out.append(_one(Path(bundle), Path(results), name, got, entry, released))
        except Exception as exc:  # evidence, never the verdict
            out.append(
                {
                    "variant": entry.get("variant"),
                    "verdict": INVALID,
                    "reason": "{}: {}".format(type(exc).__name__, exc),
                }
            )
    return out
