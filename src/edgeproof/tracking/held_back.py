"""Why a model version earns no alias from what is recorded on it, whatever the record now sending says.

A record moves an alias only when every verdict it carries about its own file passed
(:func:`edgeproof.tracking.history.passed_every_own_verdict`). A device verdict is a CI artifact that
expires (30 days): a run after that carries the build gate's verdict alone, and moved ``champion`` to
a file the device had failed, whose promotion record said ``passed: false``. The version remembers
every verdict on its file, so the alias is refused on what it remembers too. No MLflow import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeproof.tracking.history import DEVICE_PROVENANCE, history, own_verdicts
from edgeproof.tracking.promotion import promotion


def build_profile_of(record: Mapping[str, Any]) -> str | None:
    """The profile of the record's own (build) verdict: the one not marked ``device``."""
    return next((p for p, v in (record.get("verdicts") or {}).items() if not (v or {}).get("device")), None)


def unpassed_device_verdicts(tags: Mapping[str, str], record: Mapping[str, Any]) -> list[str]:
    """``<profile>: <words>`` for each device profile whose latest verdict on the version's file did not
    pass: the verdicts recorded on the version (its promotion record, then its history, oldest first:
    a device report that has expired since still counts) and then the record's own. A build verdict
    (``record``'s build profile, in a pipeline run's entry) is not one: a what-if experiment that fails
    the file under other thresholds never holds its alias back."""
    build = build_profile_of(record)
    promoted = promotion(tags)
    recorded = [(False, promoted["verdicts"])] if promoted else []
    recorded += [(e.get("provenance") == DEVICE_PROVENANCE, e.get("verdicts")) for e in history(tags)]
    latest: dict[str, str] = {}
    for device, verdicts in [*recorded, (False, own_verdicts(record))]:
        for profile, words in (verdicts or {}).items() if isinstance(verdicts, Mapping) else ():
            if device or profile != build:
                latest[profile] = str(words)
    return [f"{p}: {w}" for p, w in sorted(latest.items()) if w != "passed"]
