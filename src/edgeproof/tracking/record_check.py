"""What an outbox record must satisfy before it is sent (no MLflow import here).

The content id (:func:`edgeproof.tracking.record.content_id`) catches a record changed by accident
after it was written. It is no signature: anyone who can write the outbox can recompute it (or edit
the metrics files before the record is built), so it says nothing against a deliberate edit. What
can still be checked is that a record agrees with itself and with the files travelling with it: its
``passed`` with its own build verdict and with its ``gate.json``, the model file with the sha256 it
claims, its times with the clock. An edit of one of them (a failed run turned into a pass) is
refused; an edit of all of them together is not detectable without a signing key, which edgeproof
does not have. The alias a record earns is recomputed from its tags, never read from it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.io import sha256_file
from edgeproof.tracking.context import alias_for
from edgeproof.tracking.params import TrackParams

log = logging.getLogger(__name__)

SHA256 = re.compile(r"[0-9a-f]{64}")
GATE_REPORT = Path("artifacts") / "reports" / "gate.json"
"""The gate report as :func:`edgeproof.tracking.record.snapshot` copies it next to the record."""


class EditedRecordError(ValueError):
    """An outbox record that was changed after its run wrote it, or does not agree with itself:
    it is not sent and stays in the outbox."""


def _refuse(path: Path, field: str, why: str) -> EditedRecordError:
    return EditedRecordError(f"{path}: {field}: {why}; it is not sent and stays in the outbox")


def _gate_report(folder: Path) -> dict[str, Any] | None:
    path = folder / GATE_REPORT
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _refuse(path, "gate.json", f"does not parse ({exc})") from None
    if not isinstance(report, dict):
        raise _refuse(path, "gate.json", f"expected a JSON object, found {type(report).__name__}")
    return report


def _check_passed(path: Path, record: Mapping[str, Any], gate: Mapping[str, Any] | None) -> bool:
    """``record["passed"]``, once it agrees with the record's own build verdict and its gate report."""
    passed = record.get("passed")
    if not isinstance(passed, bool):
        raise _refuse(path, "passed", f"expected true or false, found {passed!r}")
    verdicts = record.get("verdicts") or {}
    for profile, verdict in verdicts.items() if isinstance(verdicts, Mapping) else ():
        if isinstance(verdict, Mapping) and not verdict.get("device") and verdict.get("passed") is not passed:
            said = verdict.get("passed")
            raise _refuse(path, "passed", f"is {passed} but its build verdict verdicts.{profile}.passed is {said!r}")
    if gate is not None and gate.get("passed") is not passed:
        raise _refuse(path, "passed", f"is {passed} but {GATE_REPORT} says passed: {gate.get('passed')!r}")
    return passed


def _check_model(path: Path, record: Mapping[str, Any], gate: Mapping[str, Any] | None, models: list[Path]) -> None:
    """A record that registers a model names it by a sha256 that its gate report and the file agree on."""
    sha = (record.get("tags") or {}).get("model_sha256")
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        raise _refuse(path, "tags.model_sha256", f"expected 64 lowercase hex digits, found {sha!r}")
    if gate is None:
        raise _refuse(path, str(GATE_REPORT), "missing: a model is registered only with the gate report that judged it")
    if gate.get("model_sha256") != sha:
        raise _refuse(path, "tags.model_sha256", f"{sha} but {GATE_REPORT} judged {gate.get('model_sha256')!r}")
    for model in models:
        actual = sha256_file(model)
        if actual != sha:
            raise _refuse(path, "tags.model_sha256", f"{sha} but the model file {model.name} has sha256 {actual}")


def checked_alias(folder: Path, record: dict[str, Any], models: list[Path], track: TrackParams | None) -> str:
    """Check the record in ``folder`` agrees with itself and the files next to it (raises
    :class:`EditedRecordError` naming the file and field), and return the alias it earns: recomputed
    from its tags and verdict with ``track`` (the sender's params), not taken from ``record["alias"]``."""
    path = folder / "record.json"
    gate = _gate_report(folder)
    passed = _check_passed(path, record, gate)
    if models:
        _check_model(path, record, gate, models)
    track = track or TrackParams()
    tags = {k: str(v) for k, v in (record.get("tags") or {}).items()}
    alias = alias_for(tags, passed, track.candidate_alias, track.champion_alias, track.release_branches)
    if (record.get("alias") or "") != alias:
        log.warning("%s says alias %r; its tags and verdict earn %r under track params: %r it is",
                    path, record.get("alias"), alias, alias)  # fmt: skip
    return alias
