"""The board's own flags on its figures, read strictly: whether it measured a figure (``energy.measurable``,
``memory.measurable``) and whether its run throttled (``conditions.throttled``). A flag that is missing
says nothing either way, so it never lets a figure count: a rule over it is inconclusive, and reports,
the headline and the chart do not show the figure. Python 3.8 (read beside the board's files).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from edgeproof.verdict.rules import INCONCLUSIVE, Malformed, compare, get_figure, get_path, invalid_reason, result


def not_measurable(
    data: Any, record: str, name: str, metric: str, op: str, threshold: Any, source: str, shown: Any = None
) -> Optional[Dict[str, Any]]:
    """The rule ``name`` over a figure whose record (``data[record]``: ``energy``, ``memory``) says the board
    could not measure it; ``None`` where it says it could (``measurable`` true). A record that is no object,
    or a flag that is none of true, false and null, is invalid (named); no record, or the flag null or
    false, is inconclusive with the board's reason (``shown``: the measured value the rule keeps)."""
    flag = get_figure(data, "{}.measurable".format(record))
    if flag is True:
        return None
    if not isinstance(flag, Malformed) and flag is not None and flag is not False:
        flag = Malformed("{}.measurable".format(record), flag, "true, false or null")
    if isinstance(flag, Malformed):
        return compare(name, metric, op, threshold, flag, source)
    why = "{} not measurable on this board: {}".format(
        record, get_path(data, "{}.reason".format(record)) or "no {} record in bench.json".format(record)
    )
    return result(name, metric, op, threshold, shown, source, INCONCLUSIVE, why)


def shown_figure(data: Any, key: str, record: str) -> Tuple[Any, Optional[str]]:
    """``data[key]`` as a report, headline or chart may show it: ``(value, None)`` only where the board's
    record ``data[record]`` (``energy``, ``memory``) says it measured it and the value is possible
    (:func:`invalid_reason`); else ``(None, why)``. A figure the board did not measure is never shown."""
    flag = get_figure(data, "{}.measurable".format(record))
    if flag is False or flag is None:
        why = get_path(data, "{}.reason".format(record)) or "no {} record".format(record)
        return None, "not measurable ({})".format(why)
    if flag is not True:
        return None, (flag if isinstance(flag, Malformed) else Malformed(record, flag, "true or false")).reason()
    value = get_figure(data, key)
    if value is None:
        return None, "not measured (no {})".format(key)
    why = invalid_reason(key, value)
    return (None, "impossible ({})".format(why)) if why else (value, None)


def throttle_problem(conditions: Any) -> Optional[str]:
    """Why a device verdict's ``conditions`` do not show a run that did not throttle (None: they do): the
    one test by which the headline and the chart (:mod:`edgeproof.verdict.shown`) and the gate's own
    report (``gate.md``, so the PR comment: :mod:`edgeproof.verdict.report`) withhold a run's figures. The
    device gate writes ``throttled: true`` for a hot or down-clocked run and for one whose readings cannot
    show it was not; a verdict without the flag shows nothing either way."""
    flag = conditions.get("throttled") if isinstance(conditions, Mapping) else None
    if flag is False:
        return None
    if flag is True:
        reasons = conditions.get("reasons")
        said = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) and reasons else "no reason given"
        return "the run throttled ({}): its figures say nothing about the model".format(said)
    said = "missing" if flag is None else "{!r}, not false".format(flag)
    return "conditions.throttled is {}: nothing shows the run did not throttle".format(said)
