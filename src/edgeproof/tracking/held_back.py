"""Why a model version earns no alias from what is recorded on it, whatever the record now sending says.

A record moves an alias only when every verdict it carries about its own file passed
(:func:`edgeproof.tracking.history.passed_every_own_verdict`). A device verdict is a CI artifact that
expires (30 days): a run after that carries the build gate's verdict alone, and moved ``champion`` to
a file the device had failed, whose promotion record said ``passed: false``. The version remembers
every verdict on its file, so the alias is refused on what it remembers too; a rollback refuses such a
version, and ``model show`` flags a holder that a device failed after the alias moved there.
No MLflow import here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from edgeproof.tracking.history import DEVICE_PROVENANCE, build_profile_of, history, own_verdicts
from edgeproof.tracking.promotion import promotion
from edgeproof.tracking.verdicts import BUILD_PROFILE, OLDER_HAND_RUN, RULES_FIELD, older_hand_run


def unpassed_device_verdicts(
    tags: Mapping[str, str], record: Mapping[str, Any] | None = None, builds: Collection[str] = ()
) -> list[str]:
    """``<profile>: <words>`` for each device profile whose latest verdict on the version's file did not
    pass: the verdicts recorded on the version (its promotion record, then its history, oldest first:
    a device report that has expired since still counts) and then ``record``'s own, when a record is
    sending. A build verdict is not one: a what-if experiment that fails the file under other thresholds
    never holds its alias back. A history entry names its build profile; for one written before it did,
    the build profiles are ``record``'s and ``builds`` (e.g. params' ``release.build_profile``)."""
    own = build_profile_of(record) if record is not None else None
    known = {b for b in (own, *builds) if b}
    promoted = promotion(tags)
    recorded = [(False, None, promoted["verdicts"])] if promoted else []
    recorded += [(e.get("provenance") == DEVICE_PROVENANCE, e.get("build"), e.get("verdicts")) for e in history(tags)]
    if record is not None:
        recorded.append((False, own, own_verdicts(record)))
    latest: dict[str, str] = {}
    for device, build, verdicts in recorded:
        not_device = {build} if build else known
        for profile, words in (verdicts or {}).items() if isinstance(verdicts, Mapping) else ():
            if device or profile not in not_device:
                latest[profile] = str(words)
    return [f"{p}: {w}" for p, w in sorted(latest.items()) if w != "passed"]


def held_back(tags: Mapping[str, str], build_profile: str | None = None) -> list[str]:
    """:func:`unpassed_device_verdicts` of a version with no record sending (``model show``, a rollback): the
    build verdicts of entries that name no profile are ``build_profile``'s (params' ``release.build_profile``)
    and ``build``'s (:data:`~edgeproof.tracking.verdicts.BUILD_PROFILE`); and, last, a version registered by a
    hand-gated run that older code called clean (:data:`~edgeproof.tracking.verdicts.OLDER_HAND_RUN`)."""
    unpassed = unpassed_device_verdicts(tags, builds=[BUILD_PROFILE, *([build_profile] if build_profile else [])])
    promoted = promotion(tags) or {}
    entry = next((e for e in history(tags) if e.get("run_id") == promoted.get("run_id")), {})
    older = older_hand_run(promoted.get("provenance"), promoted.get("verdicts"), entry.get(RULES_FIELD))
    return [*unpassed, *([f"registered by a run {OLDER_HAND_RUN}"] if older else [])]
