"""A profile gate's thresholds as rules: the one home of the ``fps``, ``latency_p95``, ``map50`` and
``map50_95`` rules, which the build gate (:mod:`edgeproof.gate`), the device gate's released file
(:mod:`edgeproof.verdict.measured`) and its candidates (:mod:`edgeproof.verdict.candidates`) apply
alike. Device side: Python 3.8, no imports beyond the rule engine, the evaluation's size and the timed frames.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from edgeproof.verdict.eval_size import held_by_size
from edgeproof.verdict.rules import compare, get_figure
from edgeproof.verdict.timed_frames import held_by_frames


def speed_rules(
    gate: Any, bench: Any, source: str, profile: Optional[str] = None
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``fps`` (end-to-end FPS ``>`` ``min_fps``: the mission's "FPS > 10", so exactly 10 fails) and
    ``latency_p95`` (end-to-end p95 ms ``<=`` ``max_latency_p95_ms``) from a ``bench.json`` named
    ``source``; ``gate``: a profile's ``gate``. Inconclusive over too few timed frames
    (:func:`~edgeproof.verdict.timed_frames.held_by_frames`, whose reasons name ``profile``'s key)."""
    fps = compare("fps", "fps_e2e", ">", gate.min_fps, get_figure(bench, "fps_e2e"), source)
    p95 = get_figure(bench, "latency_ms.p95")
    p95_rule = compare("latency_p95", "latency_ms.p95", "<=", gate.max_latency_p95_ms, p95, source)
    fps, p95_rule = held_by_frames([fps, p95_rule], gate, bench, profile)
    return fps, p95_rule


def accuracy_rules(gate: Any, scores: Any, source: str, profile: Optional[str] = None) -> List[Dict[str, Any]]:
    """``map50`` (``>=`` ``min_map50``) and, where the profile sets it, ``map50_95`` from ``scores``
    (an ``eval.json`` or the scores of detections) named ``source``; inconclusive over too small a val set
    (:func:`~edgeproof.verdict.eval_size.held_by_size`, whose reasons name ``profile``'s keys)."""
    rules = [compare("map50", "map50", ">=", gate.min_map50, get_figure(scores, "map50"), source)]
    if gate.min_map50_95 is not None:
        rules.append(compare("map50_95", "map50_95", ">=", gate.min_map50_95, get_figure(scores, "map50_95"), source))
    return held_by_size(rules, gate, scores, profile)
