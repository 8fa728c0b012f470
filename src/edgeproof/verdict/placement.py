"""The device gate's ``providers`` rule: the session ran on exactly the profile's execution providers, and
the board's node placement record (which provider ran how many of the graph's nodes) proves it, read with
the board's own check (:func:`edgeproof.device.providers.count_problems`). Device side: Python 3.8.
"""

from __future__ import annotations

import json
from typing import Any, Dict

from edgeproof.device.providers import count_problems
from edgeproof.profiles import Profile
from edgeproof.verdict.rules import FAIL, INVALID, Malformed, compare, get_figure, result


def _placement_record(record: Dict[str, Any]) -> Any:
    """The record's ``problems`` and ``nodes`` (``None``: one is missing), or :class:`Malformed` (named)."""
    problems, nodes = record.get("problems"), record.get("nodes")
    if problems is None or nodes is None:
        return None
    if not isinstance(problems, list):
        return Malformed("providers.problems", problems, "a list of reasons")
    counts_ok = isinstance(nodes, dict) and all(type(n) is int and n >= 0 for n in nodes.values())
    if not counts_ok:
        return Malformed("providers.nodes", nodes, "an object of provider -> node count (an integer >= 0)")
    return problems, nodes


def providers_rule(profile: Profile, bench: Dict[str, Any]) -> Dict[str, Any]:
    """The session ran on exactly the profile's providers and the board's node placement record proves it:
    its node counts must add up to what the board's own check (:func:`count_problems`) would have passed."""
    name, metric, wanted = "providers", "session + node placement", list(profile.provider_names)
    record = get_figure(bench, "providers")
    if record is not None and not isinstance(record, (dict, Malformed)):
        record = Malformed("providers", record, "an object")
    if not isinstance(record, dict):
        return compare(name, metric, "==", True, record, "bench.json")
    placed = _placement_record(record)
    if placed is None or record.get("session") is None:
        missing = [k for k in ("session", "problems", "nodes") if record.get(k) is None]
        why = "bench.json providers has no {}: where the nodes ran is not shown".format(" or ".join(missing))
        return compare(name, metric, "==", True, None, "bench.json", why)
    if isinstance(placed, Malformed):
        return compare(name, metric, "==", True, placed, "bench.json")
    problems, nodes = placed
    if problems:
        return result(name, metric, "==", True, False, "bench.json", FAIL, "; ".join(str(p) for p in problems))
    unproven = count_problems(wanted, nodes)
    if unproven:
        why = "providers.nodes {}: {}, yet providers.problems is empty".format(
            json.dumps(nodes, sort_keys=True), "; ".join(unproven)
        )
        return result(name, metric, "==", True, nodes, "bench.json", INVALID, why)
    return compare(name, metric, "==", True, record.get("session") == wanted, "bench.json")
