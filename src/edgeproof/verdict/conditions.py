"""Whether a device run's conditions let its figures speak for the model: the board's recorded readings
(``conditions.json``: temperature, clocks, load, power mode during the run) judged by the profile's rules,
and whether the run throttled by the board's own flag and reasons or the judging rules'.

A hot, down-clocked or loaded board makes speed fail without saying anything about the model: such a run's
speed failures are inconclusive (:func:`edgeproof.verdict.rules.verdict`); reports, the headline and the
chart withhold its figures (:func:`edgeproof.verdict.flags.throttle_problem`). Python 3.8 (the device gate
runs beside the board's files).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from edgeproof.device.conditions import DURING_KEYS, throttle_reasons
from edgeproof.profiles import Profile
from edgeproof.verdict.rules import INCONCLUSIVE, PASS, Malformed, compare, result


def conditions_rule(cond: Dict[str, Any]) -> Dict[str, Any]:
    """Did the board record its readings during the run? Without them nothing shows it did not throttle."""
    name, metric, during = "conditions_recorded", "conditions.json during", cond.get("during")
    if during is None:
        why = "conditions.json: no 'during' readings (temperature, clocks, over-current): "
        why += "cannot show the run did not throttle"
        return result(name, metric, "==", "readings", None, "device", INCONCLUSIVE, why)
    if not isinstance(during, dict):
        return compare(name, metric, "==", "readings", Malformed("during", during, "an object"), "device")
    missing = [k for k in DURING_KEYS if k not in during]  # the readings throttle_reasons judges
    if missing:
        why = "conditions.json during: no {}: cannot show the run did not throttle".format(", ".join(missing))
        return result(name, metric, "==", "readings", None, "device", INCONCLUSIVE, why)
    return result(name, metric, "==", "readings", "readings", "device", PASS)


def throttled_under(profile: Optional[Profile], cond: Dict[str, Any]) -> List[str]:
    """Why the run's conditions fail the judging rules (temperature, clocks, load, power mode), from the
    board's recorded readings; a reading that is missing or cannot be judged is itself a reason."""
    facts, during = cond.get("machine"), cond.get("during")
    if profile is None:
        return []
    if not isinstance(during, dict):
        return ["conditions.json: no 'during' readings: cannot show the run did not throttle"]
    try:
        return throttle_reasons(profile, facts if isinstance(facts, dict) else {}, during)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        return ["conditions.json readings cannot be judged ({}: {})".format(type(exc).__name__, exc)]


def run_throttled(got: Dict[str, Any]) -> Tuple[bool, List[str]]:
    """(throttled, why) for the run ``got`` read: the board's own flag and reasons, and the judging rules'
    reasons over its recorded readings (every variant measured in the run shares them)."""
    cond = got.get("conditions") if isinstance(got.get("conditions"), dict) else {}
    board = cond.get("reasons")
    reasons = [str(r) for r in board] if isinstance(board, list) else []
    reasons += [r for r in throttled_under(got.get("profile"), cond) if r not in reasons]
    return cond.get("throttled") is True or bool(reasons), reasons
