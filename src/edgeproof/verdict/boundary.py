"""A measured figure shown beside its threshold with enough digits to read as it was judged (Python 3.8-clean).

A report rounds (``gate.md`` to 4 significant digits, the headline to a few decimals), and rounding can put a
figure on its threshold: ``fps_e2e`` 10.001 passes ``> 10`` but reads ``10``, as 10.0 does, which fails. Near a
threshold these helpers keep more digits, as many as it takes for the shown figure to compare with the shown
threshold as the unrounded one does; away from it they change nothing.
"""

from __future__ import annotations

from typing import Any, Iterable, Tuple

from edgeproof.markdown import cell
from edgeproof.verdict.rules import OPS, is_number, spelled

_MAX_DIGITS = 17  # a float's repr never needs more significant digits: at 17 every float reads as itself
_MAX_DECIMALS = 400  # round(x, 400) is x for every float (the smallest is 5e-324)


def reads_as_judged(shown: float, measured: Any, op: str, threshold: Any, shown_threshold: Any = None) -> bool:
    """Whether ``shown`` (``measured`` rounded) compares with ``shown_threshold`` (``threshold`` as shown, by
    default itself) under ``op`` as ``measured`` does with ``threshold``, and equals it only where they are
    equal. True for anything that is not an order rule over two numbers: nothing to misread there."""
    if op not in OPS or not (is_number(measured) and is_number(threshold)):
        return True
    t = threshold if shown_threshold is None else shown_threshold
    same = (shown == t) is (measured == threshold)
    return same and OPS[op](shown, t) is OPS[op](measured, threshold)


def cells(measured: Any, op: str, threshold: Any) -> Tuple[str, str]:
    """``(measured, threshold)`` as table cells (:func:`~edgeproof.markdown.cell`), to more significant digits
    where 4 would misread (``100.004`` beside ``<= 100``: ``100.004``, not ``100``). An identity rule's
    values that differ but read alike (a sha256's first 12 digits, the string ``"true"`` and ``true``) are
    spelled as the file has them."""
    if op == "==":
        differ = type(measured) is not type(threshold) or measured != threshold
        shown = cell(measured), cell(threshold)
        return (spelled(measured, 80), spelled(threshold, 80)) if differ and shown[0] == shown[1] else shown
    digits = 4
    while True:
        shown = cell(measured, digits), cell(threshold, digits)
        if digits >= _MAX_DIGITS or _reads(shown, measured, op, threshold):
            return shown
        digits += 1


def _reads(shown: Tuple[str, str], measured: Any, op: str, threshold: Any) -> bool:
    try:
        return reads_as_judged(float(shown[0]), measured, op, threshold, float(shown[1]))
    except ValueError:  # not a number (a missing figure's dash): nothing to compare
        return True


def rounded(measured: float, decimals: int, judged: Iterable[Tuple[str, Any]] = ()) -> float:
    """``measured`` rounded to ``decimals``, or to more where the rounded figure would read otherwise than
    ``measured`` was judged against one of the ``judged`` ``(op, threshold)`` pairs (fps 10.04 beside
    ``> 10`` is 10.04, not 10.0, which fails it)."""
    judged = list(judged)
    shown = round(measured, decimals)
    while decimals < _MAX_DECIMALS and not all(reads_as_judged(shown, measured, op, t) for op, t in judged):
        decimals += 1
        shown = round(measured, decimals)
    return shown
