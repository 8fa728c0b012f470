"""Is a board's energy record one the energy rules can judge? One reading for every energy rule (Python 3.8-clean).

A record that says ``measurable: true`` must rest on the readings the board itself needs to call its
window measurable (:func:`edgeproof.device.power_window.min_readings`: half of those its length should
have at the sampler's interval, never fewer than :data:`~edgeproof.device.power_window.MIN_POWER_READINGS`).
At least :data:`~edgeproof.device.power_window.MIN_INSIDE_READINGS` of them must lie inside the timed
window (``inside_samples``, at most ``samples``): a figure with none inside is a line drawn between
readings outside the timed frames. This run's energy rules (``energy``, ``power``, ``regression_energy``),
the cross-check of the record (``results_consistent``) and main's baseline for ``regression_energy`` all
ask :func:`readings_short`; a record without ``inside_samples`` (written before the board counted them)
cannot show a reading fell inside its window, and its energy rules are inconclusive
(:func:`inside_unrecorded`), never judged on its figure.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

from edgeproof.device.power_window import MIN_INSIDE_READINGS, MIN_POWER_READINGS, min_readings
from edgeproof.verdict.flags import not_measurable, shown_figure
from edgeproof.verdict.rules import (
    INCONCLUSIVE,
    INVALID,
    Malformed,
    get_figure,
    is_number,
    result,
)


def _least(record: Any) -> Optional[int]:
    """The readings a record's window needs (``window_s`` at ``interval_ms``), :data:`MIN_POWER_READINGS`
    where either is not a positive number; ``None`` where the pair asks for more than any count can be."""
    window, interval = get_figure(record, "window_s"), get_figure(record, "interval_ms")
    if not (is_number(window) and window > 0 and is_number(interval) and interval > 0):
        return MIN_POWER_READINGS
    per_reading = interval / 1000.0
    if per_reading <= 0 or not math.isfinite(window / per_reading):  # a forged pair: no count is enough
        return None
    return min_readings(window, per_reading)


def readings_short(record: Any) -> Optional[str]:
    """Why an energy record that says measurable does not rest on enough power readings (``samples``, an
    integer, at least :func:`_least`; ``inside_samples``, where recorded, an integer from
    :data:`MIN_INSIDE_READINGS` to ``samples``; ``interval_ms``, which the board always writes, a positive
    number, as without it no count can be shown enough), naming the key; ``None`` where it does."""
    interval = get_figure(record, "interval_ms")
    if not (is_number(interval) and interval > 0):  # the board writes it: without it no count is enough
        found = interval.found if isinstance(interval, Malformed) else interval
        why = "energy.interval_ms: {!r} with energy.measurable true, expected milliseconds > 0 (the sampler's interval)"
        return why.format(found)
    count = get_figure(record, "samples")
    least = _least(record)
    if type(count) is int and least is not None and count >= least:
        return _inside_short(record, count)
    found = count.found if isinstance(count, Malformed) else count
    needs = "an integer >= {}".format(least if least is not None else "any count")
    if least is None or least > MIN_POWER_READINGS:  # the window's length set the count: say so
        needs += " for window_s {!r} at interval_ms {!r}".format(
            get_figure(record, "window_s"), get_figure(record, "interval_ms")
        )
    return "energy.samples: {!r} with energy.measurable true, expected {} (power readings)".format(found, needs)


def _inside_short(record: Any, samples: int) -> Optional[str]:
    """Why a recorded ``inside_samples`` is not a count of readings inside the window the figure can rest on
    (``None``: it is, or it is not recorded -- :func:`inside_unrecorded` says that)."""
    inside = get_figure(record, "inside_samples")
    if inside is None or (type(inside) is int and MIN_INSIDE_READINGS <= inside <= samples):
        return None
    found = inside.found if isinstance(inside, Malformed) else inside
    why = "energy.inside_samples: {!r} with energy.measurable true, expected an integer from {} to energy.samples {}"
    return (why + " (power readings inside the timed window)").format(found, MIN_INSIDE_READINGS, samples)


def inside_unrecorded(record: Any) -> Optional[str]:
    """Why an energy record that says measurable cannot show a power reading fell inside its window: no
    ``inside_samples`` (a board before the count was recorded); ``None`` where it has one."""
    if get_figure(record, "inside_samples") is not None:
        return None
    return (
        "energy.inside_samples not recorded (a board that did not count its readings inside the timed window): "
        "the figure may be interpolated between readings outside the timed frames; measure again"
    )


def energy_not_judged(
    bench: Dict[str, Any], name: str, metric: str, limit: float, source: str, shown: Any = None
) -> Optional[Dict[str, Any]]:
    """The rule ``name`` where bench.json's energy record does not let it be judged: not measurable
    (:func:`~edgeproof.verdict.flags.not_measurable`: inconclusive, or invalid for a record of the wrong
    shape), measurable on too few readings (:func:`readings_short`: invalid, named), or with no count of
    readings inside its window (:func:`inside_unrecorded`: inconclusive); ``None`` where it can be judged."""
    if get_figure(bench, "energy.measurable") is not True:
        return not_measurable(bench, "energy", name, metric, "<=", limit, source, shown)
    short = readings_short(get_figure(bench, "energy"))
    if short:
        return result(name, metric, "<=", limit, shown, source, INVALID, short)
    unshown = inside_unrecorded(get_figure(bench, "energy"))
    return result(name, metric, "<=", limit, shown, source, INCONCLUSIVE, unshown) if unshown else None


def shown_measured(data: Any, key: str, record: str) -> Tuple[Any, Optional[str]]:
    """``data[key]`` as the headline, the energy chart and the PR comment may show it:
    :func:`~edgeproof.verdict.flags.shown_figure`, and an energy figure only where the energy rules could
    judge its record (:func:`readings_short`, :func:`inside_unrecorded`), so nothing shows a figure the
    gate in the same run called inconclusive or invalid for its readings; ``(None, why)`` otherwise."""
    value, why = shown_figure(data, key, record)
    if why is None and record == "energy":
        unjudged = readings_short(get_figure(data, "energy")) or inside_unrecorded(get_figure(data, "energy"))
        if unjudged:
            return None, "not judged ({})".format(unjudged)
    return value, why
