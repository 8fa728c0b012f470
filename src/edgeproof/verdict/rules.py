"""The one rule engine: every release rule, build side and device side, is judged here (Python 3.8-clean).

A rule compares one measured figure with a threshold and has one of four statuses:

``pass``
    a valid measurement that meets the threshold.
``fail``
    a valid measurement that misses it (or an identity that differs).
``invalid``
    the figure cannot be a real measurement: not a number, a bool, non-finite, negative or outside
    what the metric can physically be (:data:`BOUNDS`), or its path crosses a value that is not an
    object (``latency_ms: "12.5"``: :func:`get_figure`). Counts as a failure; the reason names the key
    and what was found.
``inconclusive``
    the figure is missing (absent or null) or was not measurable (``reason`` says why). Never a pass.

The verdict over a set of rules (:func:`verdict`):

- ``fail`` (exit 1) when any rule is ``invalid``, or any rule fails that a hot or down-clocked device
  cannot explain (identity, accuracy, providers, ...);
- ``inconclusive`` (exit 3) when the device throttled, or (nothing failed and) a rule could not be
  judged: a board that was not ready, results that never arrived, a figure that was not measurable;
- ``fail`` (exit 1) when a speed rule fails on a device that did not throttle;
- ``pass`` (exit 0) only when every rule passed.

A judged value never raises: a rule over a string, NaN or a missing key is a rule result like any
other, and its ``measured`` is always strict-JSON-writable (:func:`json_safe`).
"""

from __future__ import annotations

import json
import math
import operator
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from edgeproof.profiles import MAX_ENERGY_MJ_PER_FRAME, MAX_LATENCY_MS, MAX_MEMORY_MB, MAX_POWER_W

PASS, FAIL, INVALID, INCONCLUSIVE = "pass", "fail", "invalid", "inconclusive"
# The order rules, one each: ``==`` (identities) is judged apart, on type and value.
OPS: Dict[str, Callable[[Any, Any], bool]] = {">": operator.gt, ">=": operator.ge, "<=": operator.le}
STATUSES = (PASS, FAIL, INVALID, INCONCLUSIVE)
EXIT = {"pass": 0, "fail": 1, "inconclusive": 3}

# Rules a throttled (hot, down-clocked, loaded) device can make fail without saying anything about the
# model: their failure on such a run is inconclusive, not fail.
SPEED_RULES = frozenset(("fps", "latency_p95", "regression_fps", "energy", "power", "regression_energy"))
# The device gate's rules that tie bench.json's figures to the released file, measured for the profile on a
# board its rules take, with this bundle, at the judging rules' settings: while one of them does not pass
# (another file or bundle, another machine, other settings), the figures are possible but not the model's
# on that board, and nothing shows them as such (the headline leaves them out).
FIGURE_TIES = frozenset(
    (
        "same_profile",
        "same_model_benchmarked",
        "same_model_released",
        "same_bundle",
        "machine_match",
        "measured_as_judged",
    )
)

_INF = float("inf")
# What each figure can physically be: (low, high, low included). The FPS ceiling: a frame needs at
# least one image decode, and nothing decodes and runs a detector 100000 times a second on one board;
# 1e300 FPS is a forged file. The latency floor is its mirror (10 microseconds per frame).
# Energy, power and memory have floors for the same reason ("at most" rules would take 5e-324):
# - power 0.01 W: a board running a detector draws watts (a Nano idles near 1 W, a CPU package's RAPL
#   counter reads watts too); 10 mW is two orders of magnitude under anything that computes a frame;
# - energy 0.001 mJ/frame: 1 microjoule per frame is 0.1 W at 100000 FPS (the FPS ceiling): nothing
#   decodes and runs a detector on that; a real board spends tens of mJ per frame;
# - peak resident memory 1 MB: the measuring process holds Python, numpy and ONNX Runtime (tens of MB).
# The ceilings live with the profile caps (edgeproof.profiles), which may not exceed them.
BOUNDS: Dict[str, Tuple[float, float, bool]] = {
    "fps_e2e": (0.0, 100_000.0, False),
    "latency_ms.p95": (0.01, MAX_LATENCY_MS, True),
    "map50": (0.0, 1.0, True),
    "map50_95": (0.0, 1.0, True),
    "map75": (0.0, 1.0, True),
    "energy_mj_per_frame": (0.001, MAX_ENERGY_MJ_PER_FRAME, True),
    "power_w_mean": (0.01, MAX_POWER_W, True),
    "power_w_peak": (0.01, MAX_POWER_W, True),
    "peak_memory_mb": (1.0, MAX_MEMORY_MB, True),
    "memory.rss_start_mb": (1.0, MAX_MEMORY_MB, True),  # the resident memory peak_memory_mb is the peak of
    "memory.rss_end_mb": (1.0, MAX_MEMORY_MB, True),
}


def is_number(value: Any) -> bool:
    """A real, finite number (not a bool, not NaN or infinity; a JSON integer of any size is finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def is_count(value: Any, minimum: int = 0) -> bool:
    """A count: a JSON whole number (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def gate_key(profile: Optional[str], name: str) -> str:
    """A profile's gate key as a reason names it: ``profiles.<profile>.gate.<name>``."""
    return "profiles.{}.gate.{}".format(profile, name) if profile else "the profile's gate.{}".format(name)


def get_path(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; ``None`` where any step is missing or not a mapping (the walk of
    :func:`get_figure`, with what it calls malformed read as missing)."""
    found = get_figure(data, dotted)
    return None if isinstance(found, Malformed) else found


class Malformed:
    """A present value of the wrong shape where a figure is read: a path crossing a value that is not an
    object (``latency_ms: "12.5"`` for ``latency_ms.p95``), or a flag that is none of its values. Not
    missing, so never "not measured", and no measurement either: :func:`compare` judges it invalid."""

    def __init__(self, where: str, found: Any, expected: str) -> None:
        self.where, self.found, self.expected = where, found, expected

    def reason(self) -> str:
        """``latency_ms: "12.5" is a string, expected an object with "p95"``."""
        return "{}: {} is {}, expected {}".format(self.where, spelled(self.found), _kind(self.found), self.expected)


def get_figure(data: Any, dotted: str) -> Any:
    """A measured figure at ``dotted``: like :func:`get_path`, but a step that is present and not an object
    is :class:`Malformed` (judged invalid by :func:`compare`), not ``None`` (which is "not measured")."""
    if not isinstance(data, Mapping):  # the whole file: its readers judge it, this is only its figures
        return None
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if data is None:
            return None
        if not isinstance(data, Mapping):
            return Malformed(".".join(parts[:i]), data, 'an object with "{}"'.format(part))
        data = data.get(part)
    return data


def spelled(value: Any, limit: int = 60) -> str:
    """``value`` as the file spells it (JSON), cut to ``limit`` characters: a forged file can be huge."""
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):  # not JSON data (a YAML date, a tuple key): Python's spelling
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):  # before int: JSON's true is not a number
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a {}".format(type(value).__name__)


def invalid_reason(metric: str, measured: Any) -> Optional[str]:
    """Why ``measured`` cannot be a value of ``metric``, naming both (None: it can; missing values are not
    judged here)."""
    if isinstance(measured, Malformed):
        return measured.reason()
    if isinstance(measured, bool) or not isinstance(measured, (int, float)):
        return "{}: {} is {}, expected a number".format(metric, spelled(measured), _kind(measured))
    if not is_number(measured):
        return "{}: {} is not a finite number".format(metric, spelled(measured))
    low, high, low_ok = BOUNDS.get(metric, (-_INF, _INF, True))
    if measured < low or (measured == low and not low_ok) or measured > high:
        bounds = "{}{:g}, {:g}]".format("[" if low_ok else "(", low, high)
        return "{}: {} is outside the possible range {}".format(metric, spelled(measured), bounds)
    return None


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings (at any depth): a report is always strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def result(
    name: str,
    metric: str,
    op: str,
    threshold: Any,
    measured: Any,
    source: str,
    status: str,
    reason: Optional[str] = None,
) -> Dict[str, Any]:
    """One rule result in ``gate.json``'s shape (``passed`` is ``status == "pass"``). An invalid list or
    object is kept as its first characters (:func:`spelled`): a forged file's value may be huge, and the
    result is shown in a PR comment."""
    if status not in STATUSES:
        raise ValueError("rule status must be one of {}, got {!r}".format(STATUSES, status))
    if status == INVALID and isinstance(measured, (list, tuple, Mapping)):
        measured = spelled(measured)
    return {
        "name": name,
        "metric": metric,
        "op": op,
        "threshold": json_safe(threshold),
        "measured": json_safe(measured),
        "status": status,
        "passed": status == PASS,
        "reason": reason,
        "source": source,
    }


def compare(
    name: str,
    metric: str,
    op: str,
    threshold: Any,
    measured: Any,
    source: str,
    missing: Optional[str] = None,
) -> Dict[str, Any]:
    """Judge ``measured op threshold`` (``>``, ``>=``, ``<=`` or ``==``).

    A missing figure (``None``) is ``inconclusive`` with ``missing`` (or "not measured") as the reason;
    a :class:`Malformed` one (from :func:`get_figure`) is ``invalid``, showing what was found.
    For ``==`` (identities: sha256, profile names) any present value that differs fails.
    """
    if measured is None:
        return result(name, metric, op, threshold, None, source, INCONCLUSIVE, missing or "not measured")
    if isinstance(measured, Malformed):
        return result(name, metric, op, threshold, measured.found, source, INVALID, measured.reason())
    if op == "==":
        if type(measured) is type(threshold) and measured == threshold:
            return result(name, metric, op, threshold, measured, source, PASS)
        return result(name, metric, op, threshold, measured, source, FAIL, missed(metric, op, threshold, measured))
    why = invalid_reason(metric, measured)
    if why is not None:
        return result(name, metric, op, threshold, measured, source, INVALID, why)
    if op not in OPS:
        raise ValueError("unknown rule operator {!r}".format(op))
    if OPS[op](measured, threshold):
        return result(name, metric, op, threshold, measured, source, PASS)
    return result(name, metric, op, threshold, measured, source, FAIL, missed(metric, op, threshold, measured))


def missed(metric: str, op: str, threshold: Any, measured: Any) -> str:
    """Why a figure failed its rule, both values unrounded and as the file spells them (a report's cells round
    ``100.004`` to ``100`` and show the string ``"true"`` as ``true``): ``latency_ms.p95 100.004 is not <= 100``.
    80 characters of each: a sha256 in full."""
    return "{} {} is not {} {}".format(metric, spelled(measured, 80), op, spelled(threshold, 80))


def failed_names(rules: Iterable[Mapping[str, Any]]) -> List[str]:
    """The rules that did not pass (fail, invalid or inconclusive), in order."""
    return [str(r["name"]) for r in rules if r["status"] != PASS]


def verdict(rules: Iterable[Mapping[str, Any]], throttled: bool = False) -> str:
    """``pass``, ``fail`` or ``inconclusive`` over the rule results (see the module docstring)."""
    rules = list(rules)
    statuses = {r["status"] for r in rules}
    if INVALID in statuses:
        return FAIL
    if any(r["status"] == FAIL and r["name"] not in SPEED_RULES for r in rules):
        return FAIL
    if throttled:
        return INCONCLUSIVE
    if FAIL in statuses:
        return FAIL
    if INCONCLUSIVE in statuses or not rules:
        return INCONCLUSIVE
    return PASS
