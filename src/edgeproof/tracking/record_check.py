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

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.io import read_json, sha256_file
from edgeproof.tracking.aliases import CLOCK_ALLOWANCE_MS
from edgeproof.tracking.context import alias_for
from edgeproof.tracking.history import passed_every_own_verdict
from edgeproof.tracking.params import TrackParams
from edgeproof.tracking.verdicts import OLDER_HAND_RUN, RULES_FIELD, older_hand_run

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
        report = read_json(path)  # a key given twice is refused too
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


def earned_alias(tags: Mapping[str, Any], record: Mapping[str, Any], track: TrackParams) -> str:
    """The alias a record earns: a pass of every verdict it carries about its own file (a failed device
    verdict on the same file earns none), on a branch, commit and provenance that ``track`` releases from."""
    releasable = record.get("passed") is True and passed_every_own_verdict(record)
    return alias_for(tags, releasable, track.candidate_alias, track.champion_alias, track.release_branches)


def checked_alias(folder: Path, record: dict[str, Any], models: list[Path], track: TrackParams | None) -> str:
    """Check the record in ``folder`` agrees with itself and the files next to it (raises
    :class:`EditedRecordError` naming the file and field), and return the alias it earns: recomputed
    from its tags and verdict with ``track`` (the sender's params), not taken from ``record["alias"]``."""
    path = folder / "record.json"
    gate = _gate_report(folder)
    passed = _check_passed(path, record, gate)
    if models:
        _check_model(path, record, gate, models)
    _hold_to_todays_rules(path, record)
    tags = {k: str(v) for k, v in (record.get("tags") or {}).items()}
    alias = earned_alias(tags, {**record, "passed": passed}, track or TrackParams())
    if (record.get("alias") or "") != alias:
        log.warning("%s says alias %r; its tags and verdict earn %r under track params: %r it is",
                    path, record.get("alias"), alias, alias)  # fmt: skip
    return alias


def _hold_to_todays_rules(path: Path, record: dict[str, Any]) -> None:
    """A record older code wrote ``provenance: clean`` for a hand-gated run (:func:`older_hand_run`) is sent
    as not clean: logged and joining its file's history, registering nothing and moving no alias."""
    rules = record.get(RULES_FIELD)
    if older_hand_run(record.get("provenance"), record.get("verdicts"), rules) and isinstance(record.get("tags"), dict):
        log.warning("%s: provenance clean, but %s: sent as not clean (logged, registers nothing, moves no alias)",
                    path, OLDER_HAND_RUN)  # fmt: skip
        record["provenance"] = record["tags"]["provenance"] = f"not clean: {OLDER_HAND_RUN}"


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _ms(path: Path, times: Mapping[str, Any], key: str) -> int | None:
    value = times.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise _refuse(path, f"times.{key}", f"expected a time in ms since the epoch, found {value!r}")
    return value


def check_times(path: Path, record: Mapping[str, Any], now_ms: int, clock: str) -> None:
    """Refuse a record whose times cannot be true (raises :class:`EditedRecordError` naming the
    field): an end later than ``now_ms`` by ``clock`` (plus :data:`CLOCK_ALLOWANCE_MS`), a start after
    its end, negative stage times or more of them than the run lasted. The times are outside the
    content id, yet a record's end decides whether it may move an alias: a record ending in 2100
    would hold ``champion`` against every real release after it. Refused, not clamped to now: a
    made-up time would decide the alias order, while a refused record waits in the outbox, and one
    from a clock running ahead is sent once the other clock has caught up."""
    times = record.get("times") or {}
    if not isinstance(times, Mapping):
        raise _refuse(path, "times", f"expected a mapping, found {times!r}")
    start, end = _ms(path, times, "start_ms"), _ms(path, times, "end_ms")
    if end is not None and end > now_ms + CLOCK_ALLOWANCE_MS:
        raise _refuse(path, "times.end_ms", f"{_when(end)} is later than now by {clock} ({_when(now_ms)})")
    if start is not None and end is not None and start > end:
        raise _refuse(path, "times.start_ms", f"{_when(start)} is after the run's end {_when(end)}")
    stages = record.get("stage_seconds") or {}
    if not stages:
        return
    if not isinstance(stages, Mapping):
        raise _refuse(path, "stage_seconds", f"expected a mapping, found {stages!r}")
    bad = {k: v for k, v in stages.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0}
    if bad:
        raise _refuse(path, "stage_seconds", f"expected seconds >= 0 per stage, found {bad or stages!r}")
    if start is None or end is None or sum(stages.values()) > (end - start) / 1000 + 1:
        span = "no start and end" if start is None or end is None else f"{(end - start) / 1000:.3f} s"
        raise _refuse(path, "stage_seconds", f"add up to {sum(stages.values()):.3f} s but the run lasted {span}")
