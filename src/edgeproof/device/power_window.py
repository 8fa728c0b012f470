"""Energy over a window from timed readings: power samples integrated (tegrastats, the INA3221), or a
cumulative energy counter differenced (RAPL), and how many readings each figure rests on.

Pure functions, no I/O (:mod:`edgeproof.device.energy` reads the sources). Device side: Python 3.8.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

# An energy figure rests on at least two power readings: one reading held flat across a window is a
# guess, and a cumulative counter (RAPL) needs two readings for any difference. The device gate holds
# a bench.json that says "measurable" with fewer to be invalid (the same constant).
MIN_POWER_READINGS = 2
# A reading may go missing (a tegrastats line without the rail) and the trapezoid spans it; no reading for
# more than three intervals is a stalled sampler, and spanning it would be inventing the draw in between.
MAX_GAP_INTERVALS = 3
# A figure rests on at least one reading the sensor took during the timed frames: with none inside, its
# energy, mean and peak are the straight line between a reading in the warm-up and one after the run (a
# window shorter than the interval on a fast board, or the one reading inside it missing). The device
# gate checks the record's ``inside_samples`` against the same constant.
MIN_INSIDE_READINGS = 1

Sample = Tuple[float, Optional[float]]  # (seconds, mW) -- mW None: a missing reading


def _pairs(seq: Sequence[Any]) -> List[Tuple[Any, Any]]:
    """Successive pairs (``itertools.pairwise`` is Python 3.10+; the device side runs 3.8)."""
    return list(zip(seq[:-1], seq[1:]))  # noqa: RUF007


def _rests_on(points: List[Tuple[float, float]], t0: float, t1: float) -> List[Tuple[float, float]]:
    """The readings a window's figure rests on: those inside ``[t0, t1]`` and the nearest one each side that
    its edges are interpolated (or held) from (``points`` sorted by time)."""
    before = [p for p in points if p[0] < t0][-1:]
    after = [p for p in points if p[0] > t1][:1]
    return before + _inside(points, t0, t1) + after


def _inside(points: List[Tuple[float, float]], t0: float, t1: float) -> List[Tuple[float, float]]:
    """The readings taken during ``[t0, t1]`` (an edge included): what the sensor read of the timed frames."""
    return [p for p in points if t0 <= p[0] <= t1]


def _none_inside(points: List[Tuple[float, float]], t0: float, t1: float) -> Optional[str]:
    """Why ``points`` hold fewer than :data:`MIN_INSIDE_READINGS` readings inside ``[t0, t1]`` (``None``: they
    do not), with how far the nearest reading each side is."""
    inside = len(_inside(points, t0, t1))
    if inside >= MIN_INSIDE_READINGS:
        return None
    beside = []
    before = [t for t, _ in points if t < t0][-1:]
    after = [t for t, _ in points if t > t1][:1]
    if before:
        beside.append(f"the nearest {t0 - before[0]:.3g} s before its start")
    if after:
        beside.append(f"{after[0] - t1:.3g} s after its end")
    why = "{} power reading(s) inside the {:.3g} s window, fewer than {} ({}): its figure would be interpolated"
    why += " between readings outside the timed frames, not read"
    return why.format(inside, t1 - t0, MIN_INSIDE_READINGS, ", ".join(beside))


def _used(points: List[Tuple[float, float]], t0: float, t1: float) -> int:
    """How many readings a window's figure rests on (:func:`_rests_on`)."""
    return len(_rests_on(points, t0, t1))


def reading_problem(samples: Sequence[Sample], t0: float, t1: float, counter: bool = False) -> Optional[str]:
    """Why the readings ``[t0, t1]`` rests on are impossible (``None``: they are not): a board always draws
    power, so a reading at or below 0 W, or one that is not finite, is a sensor or driver fault, never the
    model's figure; a cumulative counter (``counter``) that did not advance over the window is stuck. The
    device gate holds a figure under its physical floor to be invalid, so the board records it unmeasured."""
    points = sorted((t, v) for t, v in samples if v is not None)
    used = _rests_on(points, t0, t1)
    bad = [v for _, v in used if not math.isfinite(v) or (not counter and v <= 0)]
    if bad:
        what = "energy counter reading(s) not finite" if counter else "power reading(s) at or below 0 W or not finite"
        unit = "" if counter else " mW"
        return f"{len(bad)} {what} (first {bad[0]!r}{unit}): a sensor fault, not the board's draw"
    if counter and len(used) >= MIN_POWER_READINGS and _at(points, t1) - _at(points, t0) <= 0:
        return "the energy counter did not advance over the window (stuck): no energy figure"
    return None


def min_readings(window_s: float, interval_s: float) -> int:
    """The fewest readings a window's figure may rest on at one reading per ``interval_s``: half of those
    it should have (a window with fewer rests more on interpolation than on readings), and never fewer than
    :data:`MIN_POWER_READINGS`. The device gate holds a record that says "measurable" on fewer to be invalid."""
    return max(MIN_POWER_READINGS, int(window_s / interval_s / 2.0))


def _readings_cover(points: List[Tuple[float, float]], t0: float, t1: float, interval_s: float) -> Optional[str]:
    """Why ``points`` do not cover ``[t0, t1]`` as a sampler every ``interval_s`` does (``None``: they do):
    no reading within :data:`MAX_GAP_INTERVALS` intervals of an edge, a longer gap between the readings the
    figure rests on (inside and the nearest each side), or fewer than :func:`min_readings` of them."""
    limit = MAX_GAP_INTERVALS * interval_s
    for name, edge in (("start", t0), ("end", t1)):
        if not any(abs(t - edge) <= limit for t, _ in points):
            nearest = min(abs(t - edge) for t, _ in points)
            why = "no power reading within {:g} s ({} intervals) of the window's {} (the nearest {:.3g} s away)"
            return why.format(limit, MAX_GAP_INTERVALS, name, nearest)
    before = [t for t, _ in points if t < t0][-1:]
    after = [t for t, _ in points if t > t1][:1]
    times = before + [t for t, _ in points if t0 <= t <= t1] + after
    gap = max([tb - ta for ta, tb in _pairs(times)] or [0.0])
    if gap > limit:
        why = "a gap of {:.3g} s between power readings (more than {} intervals of {:g} s: a stalled sampler)"
        why += " in a {:.3g} s window"
        return why.format(gap, MAX_GAP_INTERVALS, interval_s, t1 - t0)
    least = min_readings(t1 - t0, interval_s)
    if len(times) < least:
        why = "{} power readings over a {:.3g} s window, fewer than {} (half of one per {:g} s)"
        return why.format(len(times), t1 - t0, least, interval_s)
    return None


def window_problem(
    samples: Sequence[Sample], t0: float, t1: float, interval_s: Optional[float] = None
) -> Optional[str]:
    """Why ``samples`` give no figure over ``[t0, t1]`` (``None``: they do), as ``energy.reason`` says it:
    an empty window, no valid reading, fewer than :data:`MIN_POWER_READINGS` around it, or -- with the
    sampler's ``interval_s`` -- readings that do not cover it (:func:`_readings_cover`); and fewer than
    :data:`MIN_INSIDE_READINGS` inside it (:func:`_none_inside`). The one test of :func:`window_power` and
    :func:`counter_window`."""
    points = sorted((t, v) for t, v in samples if v is not None)
    if t1 <= t0:
        return f"an empty window ({t0:.6g} s to {t1:.6g} s)"
    if not points:
        return "no power readings"
    if interval_s is not None:  # which edge, gap or count: what a board's record can say
        why = _readings_cover(points, t0, t1, interval_s)
    else:
        used = _used(points, t0, t1)
        why = None
        if used < MIN_POWER_READINGS:
            why = f"{used} power reading(s) inside the window and beside it, fewer than {MIN_POWER_READINGS}"
    return why or _none_inside(points, t0, t1)


def _at(points: List[Tuple[float, float]], t: float) -> float:
    """Linear interpolation of ``points`` (sorted by time) at ``t``, held flat outside them."""
    if t <= points[0][0]:
        return points[0][1]
    for (ta, pa), (tb, pb) in _pairs(points):
        if t <= tb:
            return pa + (pb - pa) * (t - ta) / (tb - ta) if tb > ta else pb
    return points[-1][1]


def window_power(
    samples: Sequence[Sample], t0: float, t1: float, interval_s: Optional[float] = None
) -> Optional[Dict[str, Any]]:
    """Energy (mJ), mean and peak power (W) of ``samples`` over ``[t0, t1]``, and how many readings they
    rest on (``samples``: inside the window and the nearest each side of it; ``inside_samples``: inside it
    only). The peak is the highest reading inside the window, never an interpolated edge value.

    ``None`` when there is not enough to integrate (:func:`window_problem` says why: fewer than
    :data:`MIN_POWER_READINGS` valid readings, an empty window, or -- with the sampler's ``interval_s`` --
    readings that do not cover the window; holding a stale value or filling in a gap is invention).
    """
    if window_problem(samples, t0, t1, interval_s) is not None or reading_problem(samples, t0, t1) is not None:
        return None
    points = sorted((t, mw) for t, mw in samples if mw is not None)
    inside = [p for p in points if t0 < p[0] < t1]
    curve = [(t0, _at(points, t0)), *inside, (t1, _at(points, t1))]
    mj = sum((tb - ta) * (pa + pb) / 2.0 for (ta, pa), (tb, pb) in _pairs(curve))
    in_window = [mw for _, mw in _inside(points, t0, t1)]  # never empty: window_problem asks for one
    return {
        "energy_mj": mj,
        "mean_w": mj / (t1 - t0) / 1000.0,
        "peak_w": max(in_window) / 1000.0,
        "samples": _used(points, t0, t1),
        "inside_samples": len(in_window),
        "missing": sum(1 for t, mw in samples if mw is None and t0 <= t <= t1),
    }


def counter_window(
    samples: Sequence[Sample], t0: float, t1: float, interval_s: Optional[float] = None
) -> Optional[Dict[str, Any]]:
    """A cumulative counter's window: energy from the edges, peak from consecutive readings. With the
    poller's ``interval_s``, readings that do not cover the window (:func:`window_problem`) are ``None``:
    a counter held flat past its last reading counts no energy, and across a long gap it may have wrapped
    more than once."""
    if window_problem(samples, t0, t1, interval_s) is not None:  # both readings on one side rest it on one
        return None
    if reading_problem(samples, t0, t1, counter=True) is not None:
        return None
    points = sorted((t, mj) for t, mj in samples if mj is not None)
    used = _used(points, t0, t1)
    mj = _at(points, t1) - _at(points, t0)
    inside = [(ta, a, tb, b) for (ta, a), (tb, b) in _pairs(points) if t0 <= ta and tb <= t1 and tb > ta]
    peak = max([(b - a) / (tb - ta) / 1000.0 for ta, a, tb, b in inside] or [mj / (t1 - t0) / 1000.0])
    return {
        "energy_mj": mj,
        "mean_w": mj / (t1 - t0) / 1000.0,
        "peak_w": peak,
        "samples": used,
        "inside_samples": len(_inside(points, t0, t1)),
        "missing": 0,
    }
