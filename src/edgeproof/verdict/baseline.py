"""The regression rules against main's last verdict for the profile (its ``gate.json``: the baseline).

Only main's *passed* verdict for the same profile is a baseline (``ci/artifacts.py latest`` finds the
one the device-gate workflow made for main; this module checks what it says). Rules: the FPS drop,
the mAP50-95 drop and the energy rise against main's figures (``profiles.<name>.regression``), and
whether the accuracy was judged on the same val set as main's (``same_val_set``): the bundle's images
and ground truth come from the pull request's build, so accuracy on a val set main never judged is
not comparable, and is inconclusive until a reviewer accepts the new set (merged, it is main's).

A baseline that cannot support a rule (its figure missing, impossible or in an older record that the
rules no longer judge, e.g. an energy record without ``inside_samples``) leaves that rule inconclusive on a
pull request. On a run that may go without a baseline (``got["baseline_optional"]``: a push to main that
``ci/main_push.sh`` proved) the rule is judged as if main had no baseline -- left out, with a note naming
the file and why -- so that main's passing push can replace a baseline that a stricter reader rejects
(only a passing push to main uploads one: without this, it never could).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.profiles import Profile
from edgeproof.verdict.energy import energy_not_judged, inside_unrecorded, readings_short
from edgeproof.verdict.flags import shown_figure
from edgeproof.verdict.rules import (
    INCONCLUSIVE,
    INVALID,
    PASS,
    compare,
    get_figure,
    get_path,
    invalid_reason,
    is_number,
    result,
)

log = logging.getLogger(__name__)

NO_BASELINE = "no baseline on main: regression not judged"
# a rule main's baseline cannot support, on a run that may go without one (a push to main)
AS_IF_NONE = (
    "main's baseline {} cannot judge {} ({}): not judged, as on a push to main without a baseline; "
    "this verdict, if it passes, is uploaded as main's new baseline"
)


def val_digest(manifest: Any) -> Optional[str]:
    """One sha256 over the bundle's val files (images and ground truth) as its manifest lists them."""
    files = get_path(manifest, "files")
    if not isinstance(files, dict):
        return None
    rows = sorted("{} {}".format(k, get_path(v, "sha256")) for k, v in files.items() if k.startswith("val/"))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest() if rows else None


def usable_baseline(name: str, baseline: Any, notes: List[str]) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(main's verdict if it can be a baseline for profile ``name``: a pass, same profile; else None, and why
    a baseline that is there cannot be used: None when there is none at all, with a note)."""
    if baseline is None:
        notes.append(NO_BASELINE)
        return None, None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("measured"), dict):
        return None, "main's baseline is no gate.json with measured figures"
    if baseline.get("verdict") != PASS or baseline.get("profile") != name:
        why = "main's baseline is verdict {!r} for profile {!r}, not a pass for {!r}"
        return None, why.format(baseline.get("verdict"), baseline.get("profile"), name)
    return baseline, None


FETCH_AGAIN = "rerun once main's passed verdict for the profile can be fetched (a passing push to main makes one)"
MAIN_AGAIN = "main's last device verdict for the profile must be a readable pass: rerun main's device gate"


def _not_judged(r: Any, why: str, todo: str) -> List[Dict[str, Any]]:
    """The rules main's baseline would judge, inconclusive: a baseline that exists but could not be fetched
    or used is never the same as none (a pull request must not pass by hiding main's figures); ``todo``
    says what would let them be judged."""
    why = "{}: regression not judged; {}".format(why, todo)
    rows = [("same_val_set", "val images + ground truth sha256", "==", "main's")]
    rows += [
        (rule, metric, "<=", limit)
        for rule, metric, limit in (
            ("regression_fps", "fps drop % vs main", r.max_fps_drop_pct),
            ("regression_map", "map50_95 drop vs main", r.max_map_drop),
            ("regression_energy", "mJ/frame rise % vs main", r.max_energy_increase_pct),
        )
        if limit is not None
    ]
    return [result(name, metric, op, limit, None, "baseline", INCONCLUSIVE, why) for name, metric, op, limit in rows]


def _change_pct(base: Any, now: Any) -> Optional[float]:
    return round(100.0 * (now - base) / base, 3) if is_number(base) and is_number(now) and base > 0 else None


def _same_val_set(baseline: Dict[str, Any], got: Dict[str, Any]) -> List[Dict[str, Any]]:
    theirs, ours = baseline.get("val_sha256"), val_digest(got.get("manifest"))
    if theirs is None:  # a baseline from before val sets were recorded: it cannot show the set is main's
        why = "main's baseline records no val_sha256 (made before val sets were recorded)"
        if got.get("baseline_optional"):  # main's push: as without a baseline, and it makes the next one
            got["notes"].append("{}: same_val_set not judged, as on a push to main without a baseline".format(why))
            return []
        why += ": the bundle's val set cannot be compared with main's; rerun after a passing push to main"
        return [
            result("same_val_set", "val images + ground truth sha256", "==", None, ours, "baseline", INCONCLUSIVE, why)
        ]
    rule = compare("same_val_set", "val images + ground truth sha256", "==", theirs, ours, "baseline")
    if rule["status"] != PASS:
        why = "the bundle's val set differs from main's last passed verdict's: accuracy is judged on images and "
        why += "ground truth this pull request supplies; a reviewer must accept the new set (merged, it is main's)"
        rule.update(status=INCONCLUSIVE, passed=False, reason=why)
    return [rule]


def regression_rules(
    name: str, profile: Profile, baseline: Any, bench: Dict[str, Any], scores: Dict[str, Any], got: Dict[str, Any]
) -> List[Dict[str, Any]]:
    """The rules against main's baseline. None, with a note, when there is none and none was required (a push
    to main making its first, a local run); inconclusive when main's baseline could not be fetched or a pull
    request has none (``got["baseline_unavailable"]``: why; same_val_set, and the profile's regression
    rules), or is not a usable one (its regression rules)."""
    r = profile.regression
    wanted = [v for v in (r.max_fps_drop_pct, r.max_map_drop, r.max_energy_increase_pct) if v is not None]
    unavailable = got.get("baseline_unavailable")
    if unavailable and baseline is None:  # same_val_set too: the val set is the PR's to supply otherwise
        return _not_judged(r, unavailable, FETCH_AGAIN)
    if not wanted and baseline is None:
        return []
    base_report, why = usable_baseline(name, baseline, got["notes"])
    if base_report is None:
        if why and not wanted:
            got["notes"].append("main's baseline not used ({}): same_val_set not judged".format(why))
        return _not_judged(r, why, MAIN_AGAIN) if why and wanted else []
    rules, base = _same_val_set(base_report, got), base_report["measured"]
    why = "the baseline or this run has no valid figure"
    optional = bool(got.get("baseline_optional"))
    gaps = _baseline_gaps(r, base, bench, scores) if optional else {}
    if r.max_fps_drop_pct is not None and "regression_fps" not in gaps:
        change = _change_pct(base.get("fps_e2e"), bench.get("fps_e2e"))
        drop = -change if change is not None else None
        rules.append(compare("regression_fps", "fps drop % vs main", "<=", r.max_fps_drop_pct, drop, "baseline", why))
    if r.max_map_drop is not None and "regression_map" not in gaps:
        b, now = base.get("map50_95"), scores.get("map50_95")
        drop = round(b - now, 6) if is_number(b) and is_number(now) else None
        rules.append(compare("regression_map", "map50_95 drop vs main", "<=", r.max_map_drop, drop, "baseline", why))
    if r.max_energy_increase_pct is not None:
        energy = _energy_regression(r.max_energy_increase_pct, base, bench, why, gaps if optional else None)
        rules += [energy] if energy is not None else []
    for rule in (n for n in ("regression_fps", "regression_map", "regression_energy") if n in gaps):
        note = AS_IF_NONE.format(got.get("baseline_file") or "(unnamed)", rule, gaps[rule])
        log.warning("%s", note)
        got["notes"].append(note)
    return rules


def _baseline_gaps(r: Any, base: Dict[str, Any], bench: Dict[str, Any], scores: Dict[str, Any]) -> Dict[str, str]:
    """Rule -> why main's FPS or mAP figure cannot support it (of the rules ``r`` sets), where this run's own
    figure could be judged: this run's missing figure stays its own inconclusive rule. Energy's are found by
    :func:`_energy_regression`, after this run's own checks."""
    gaps = {}
    fps, now = base.get("fps_e2e"), bench.get("fps_e2e")
    if r.max_fps_drop_pct is not None and not (is_number(fps) and fps > 0) and is_number(now):
        gaps["regression_fps"] = "main's baseline fps_e2e: {!r}, no positive number".format(fps)
    if r.max_map_drop is not None and not is_number(base.get("map50_95")) and is_number(scores.get("map50_95")):
        gaps["regression_map"] = "main's baseline map50_95: {!r}, no number".format(base.get("map50_95"))
    return gaps


def _energy_regression(
    limit: float, base: Dict[str, Any], bench: Dict[str, Any], why: str, gaps: Optional[Dict[str, str]] = None
) -> Optional[Dict[str, Any]]:
    """The energy rise against main's: judged only on a measurable, possible figure on both sides. This run's
    impossible figure is invalid; main's is no baseline (inconclusive, like the FPS rule's): a pull request
    neither fails nor passes on a figure main's board did not measure. With ``gaps`` (a run that may go
    without a baseline), main's unusable figure goes there instead, and no rule (None): judged as none."""
    name, metric, key = "regression_energy", "mJ/frame rise % vs main", "energy_mj_per_frame"
    value = bench.get(key)
    if value is not None and invalid_reason(key, value):
        bad = "this run {}".format(invalid_reason(key, value))  # the reason names the key
        return result(name, metric, "<=", limit, value, "baseline", INVALID, bad)
    held = energy_not_judged(bench, name, metric, limit, "baseline")
    if held is not None:
        return held
    unusable = _baseline_energy_unusable(base, key)
    if unusable is not None and gaps is not None:
        gaps["regression_energy"] = unusable
        return None
    if unusable is not None:
        return result(name, metric, "<=", limit, None, "baseline", INCONCLUSIVE, "{}; {}".format(unusable, MAIN_AGAIN))
    rise = _change_pct(base.get(key), bench.get(key))
    return compare(name, metric, "<=", limit, rise, "baseline", why)


def _baseline_energy_unusable(base: Dict[str, Any], key: str) -> Optional[str]:
    """Why main's energy figure cannot be compared with (None: it can): read as this run's is, by
    :func:`~edgeproof.verdict.flags.shown_figure` (its board's record says it measured the figure, and the
    figure is possible), :func:`~edgeproof.verdict.energy.readings_short` (on enough power readings) and
    :func:`~edgeproof.verdict.energy.inside_unrecorded` (some of them inside its window).
    A baseline that never said it measured energy has no figure to compare with."""
    _value, why = shown_figure(base, key, "energy")
    if why is None:
        why = readings_short(get_figure(base, "energy")) or inside_unrecorded(get_figure(base, "energy"))
    return "main's baseline {}: {}".format(key, why) if why else None
