"""How many frames a timing figure rests on, and whether that is enough to judge it.

The end-to-end FPS and p95 latency come from one timed run of ``e2e.samples`` frames (``benchmark.runs``
on the build machine, ``profiles.<p>.e2e_images`` on a board). A p95 over fewer than 20 frames has no
frame above it: it is the slowest frame, and over one frame p50 = p95 = that frame, which passed
"latency_p95 <= 100 ms" and "FPS > 10". As the accuracy rules are held over too small a val set
(:mod:`edgeproof.verdict.eval_size`), the timing rules (:data:`TIMED_RULES`) over fewer frames than the
profile's ``gate.min_timed_frames`` are *inconclusive*, never a pass nor a fail, their reason naming the
count and the key; a bench.json that does not say how many frames it timed is inconclusive too, and a
count that is no count invalid. Every timing rule carries ``over`` (:func:`over`): the timed frames its
figure comes from, which ``gate.md`` shows beside the metric (:func:`described`), as an accuracy rule's
``over`` names its val set. Python 3.8 (the device gate judges the board's bench.json with it).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

from edgeproof.verdict.rules import FAIL, INCONCLUSIVE, INVALID, PASS, gate_key, get_figure, is_count

# The rules whose figure is this run's end-to-end timing (regression_fps: its FPS against main's)
TIMED_RULES = frozenset(("fps", "latency_p95", "regression_fps"))
FRAMES_KEY = "min_timed_frames"
COUNT = "e2e.samples"  # bench.json: the frames the end-to-end run timed
OVER = "timed_frames"  # a timing rule's ``over`` (gate.json): how many frames its figure is over


def over(bench: Any) -> Optional[Dict[str, int]]:
    """A timing rule's ``over`` (gate.json): the frames ``bench``'s end-to-end run timed; None where it does
    not count them."""
    count = get_figure(bench, COUNT)
    return {OVER: count} if is_count(count, 1) else None


def described(found: Any) -> str:
    """A timing rule's ``over`` as ``gate.md`` shows it: ``over 200 timed frames``; "" where it has none
    (an accuracy rule's is :func:`edgeproof.verdict.eval_size.described`'s)."""
    count = found.get(OVER) if isinstance(found, Mapping) else None
    return "over {} timed frame{}".format(count, "" if count == 1 else "s") if is_count(count, 1) else ""


def too_few_frames(gate: Any, bench: Any, profile: Optional[str] = None) -> Optional[Dict[str, str]]:
    """``{"status", "reason"}`` where ``bench``'s timing cannot be judged under the profile ``gate``: fewer
    timed frames than ``gate.min_timed_frames`` or no count (inconclusive), a count that is no count
    (invalid); None where it can."""
    count = get_figure(bench, COUNT)
    if count is None:
        why = "bench.json has no {}: how many frames the timing rests on is unknown".format(COUNT)
        return {"status": INCONCLUSIVE, "reason": why}
    if not is_count(count, 1):
        return {"status": INVALID, "reason": "bench.json {} {!r} is not a count of timed frames".format(COUNT, count)}
    if count < gate.min_timed_frames:
        why = (
            "{} timed frames ({}), under {} {}: a p95 over so few is the slowest frame; time more frames "
            "(benchmark.runs / profiles.<p>.e2e_images), or lower the key knowingly"
        )
        return {
            "status": INCONCLUSIVE,
            "reason": why.format(count, COUNT, gate_key(profile, FRAMES_KEY), gate.min_timed_frames),
        }
    return None


def held_by_frames(
    rules: Iterable[Dict[str, Any]], gate: Any, bench: Any, profile: Optional[str] = None
) -> List[Dict[str, Any]]:
    """``rules`` with each of :data:`TIMED_RULES` given ``over`` (where ``bench`` counts its timed frames) and,
    where it passed or failed, made inconclusive (invalid) where :func:`too_few_frames` says so; a rule
    already not judged keeps its own reason. Idempotent."""
    rules = list(rules)
    held, frames = too_few_frames(gate, bench, profile), over(bench)
    for rule in (r for r in rules if r["name"] in TIMED_RULES):
        if frames is not None:
            rule["over"] = frames
        if held is not None and rule["status"] in (PASS, FAIL):
            rule.update(status=held["status"], passed=False, reason=held["reason"])
    return rules
