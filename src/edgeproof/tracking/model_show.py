"""``edgeproof model show``: which version holds an alias, the records behind it and what holds it back."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from edgeproof.tracking import history
from edgeproof.tracking.aliases import MOVER_TAG, ROLLBACK_TAG, alias_history, alias_holder
from edgeproof.tracking.held_back import held_back
from edgeproof.tracking.history import SHA_TAG
from edgeproof.tracking.promotion import alias_record, promotion

log = logging.getLogger(__name__)


def _gate_report(client: Any, run_id: str | None) -> Any:
    if not run_id:
        return None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return json.loads(Path(client.download_artifacts(run_id, "reports/gate.json", tmp)).read_text())
    except Exception as exc:  # an old run without the report, or one whose artifacts were deleted
        log.warning("no gate report for run %s: %s", run_id, type(exc).__name__)
        return None


def _unsettled(client: Any, run_id: str | None) -> str | None:
    """Why the move by ``run_id`` is not settled yet (its run is not FINISHED: a send killed after it
    moved the alias), or ``None``."""
    if not run_id:
        return None
    try:
        status = client.get_run(run_id).info.status
    except Exception:  # a run deleted since: nothing to say about its send
        return None
    if status == "FINISHED":
        return None
    return (
        f"the run that moved the alias here ({run_id}) is {status}: its send did not finish, so its record waits in "
        "the outbox; the next gate run or `edgeproof track replay` settles it, which can move the alias back and "
        "register this file again under a new version number"
    )


def show(client: Any, name: str, alias: str, build_profile: str | None = None) -> dict[str, Any]:
    """Which version holds ``alias``: its sha256, the record of the run that last moved ``alias`` to it
    (``promoted``: its verdicts, key metrics and provenance, with its gate report; ``rollback``: how a
    rollback put it back since, when one did), the fixed promotion
    record of the run that registered the file (``promotion``, which may be another run's: a what-if
    experiment's or a not-clean one's), every verdict on the file since (``history``) and, with a
    warning, the device verdicts on the file whose latest did not pass (``held_back``, :func:`held_back`:
    a device that failed the file after the alias moved there). ``promoted["unsettled"]``, with a
    warning, when the run that moved the alias is not FINISHED (:func:`_unsettled`)."""
    version = alias_holder(client, name, alias)
    if version is None:
        raise ValueError(f"{name}@{alias}: no version holds this alias")
    tags = dict(version.tags)
    promoted = promotion(tags)
    fixed = promoted is not None
    if promoted is None:  # registered before promotion records existed: its tags may have been rewritten
        promoted = {"run_id": version.run_id, "note": "registered before fixed promotion records; tags may be later"}
    promoted["gate"] = _gate_report(client, promoted.get("run_id"))
    moved = alias_record(tags, alias)  # the run that last moved the alias here (alias.<alias>.run_id)
    mover = tags.get(f"promoted.{alias}.run_id") or tags.get(MOVER_TAG.format(alias=alias))
    if moved is None and fixed and mover and mover == promoted.get("run_id"):  # moved by code before these records
        moved = {**promoted, "note": f"the promotion record: the run that registered the version moved {alias} here"}
    elif moved is None:  # moved by a device verdict, or by a run whose record was never written
        moved = {"run_id": mover, "note": f"no record of a run promoting it to {alias}"}
    else:
        moved["gate"] = _gate_report(client, moved.get("run_id"))
    if ROLLBACK_TAG.format(alias=alias) in tags:  # its record is of the run that moved it here before
        moved["rollback"] = f"back on this version by a rollback {tags[ROLLBACK_TAG.format(alias=alias)]}"
    unsettled = _unsettled(client, tags.get(MOVER_TAG.format(alias=alias)))
    if unsettled:
        log.warning("%s@%s: version %s: %s", name, alias, version.version, unsettled)
        moved["unsettled"] = unsettled
    held = held_back(tags, build_profile)
    if held:
        log.warning("%s@%s: version %s is held back: %s", name, alias, version.version, "; ".join(held))
    return {
        "name": name,
        "alias": alias,
        "version": str(version.version),
        "held_back": held,
        "model_sha256": tags.get(SHA_TAG),
        "source": version.source,
        "promoted": moved,
        "promotion": promoted,
        "history": history.history(tags),
        "alias_history": alias_history(client, name, alias),
    }
