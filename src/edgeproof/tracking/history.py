"""A model version's release record: the promotion, fixed once written, and the verdicts after it.

A model version stands for one model file (sha256). The run that registered it (a passing one) writes
its **promotion record** once: verdict per profile, key metrics, thresholds, provenance and run
(:mod:`edgeproof.tracking.promotion`: one tag, its fields shown as ``gate.<profile>``, ``metric.<name>``,
``promotion.*``); a run that moves an alias to the version writes ``promoted.<alias>.*``, the record
of the run that put the alias there most recently (rewritten at each move, as ``alias.<alias>.run_id``
is). Nothing else rewrites them. Every verdict on the file, that one included, is one entry of its
**history** (JSON: which run, which branch, pull request or DVC experiment, which thresholds, which
verdict), so a what-if experiment that fails the same file is listed there and never turns the
promoted version into a failed one.

Each entry has a tag of its own, ``history.<kind>-<the entry's own id>``
(:mod:`edgeproof.tracking.history_keys`): two senders of the same file that both read its version
before either wrote never write the same tag, so neither verdict replaces the other. The history is
in the order its entries were first written (``logged_ms``; sending the same record again keeps its
place), not in the order their runs ended: a record replayed days after its run is the newest
entry, and the cap (:data:`MAX_HISTORY`) deletes the entries written longest ago, never the one its
sender has just written. The ``runs`` tag is a summary of the history (rewritten from it by every
sender, so a run a concurrent write left out of it is listed again at the next one).
No MLflow import here: these functions build tag values and read them back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping
from typing import Any

from edgeproof.io import json_sha256
from edgeproof.tracking.aliases import HELD_TAG
from edgeproof.tracking.context import uncommitted
from edgeproof.tracking.history_keys import HISTORY_PREFIX as HISTORY_PREFIX  # its home before history_keys
from edgeproof.tracking.history_keys import (
    LOGGED,
    first_written,
    history_key,
    history_keys,
    parse_entry,
    record_history_key,
)
from edgeproof.tracking.promotion import (
    ALIAS_RECORD,
    PROMOTION_PREFIX,
    SHOWN,
    alias_record_tag,
    all_passed,
    has_record,
    promotion,
    record_tags,
)
from edgeproof.tracking.verdicts import RULES_FIELD, verdict_problem

SHA_TAG = "model_sha256"
RUNS_TAG = "runs"
MAX_HISTORY = 40
"""Verdicts kept per version (those written longest ago go first; the promotion record always stays)."""


def now_ms() -> int:
    """Milliseconds since the epoch: when a history entry is written (a function, so tests set the clock)."""
    return int(time.time() * 1000)


def origin(tags: Mapping[str, str]) -> str:
    """Where a run came from, in words: ``experiment lucid-yawl on main@0123456``, ``pull request
    fix-nms@…``, ``branch main@…``, with ``+dirty`` when the workspace was not clean."""
    where = f"{tags.get('branch') or 'detached'}@{str(tags.get('git_commit', 'unknown'))[:7]}"
    if tags.get("git_dirty") == "true":
        where += "+dirty"
    if tags.get("dvc_experiment"):
        return f"experiment {tags['dvc_experiment']} on {where}"
    return f"pull request {where}" if tags.get("pull_request") == "true" else f"branch {where}"


def verdict_words(verdict: Mapping[str, Any]) -> str:
    """``passed`` or ``failed: fps, map50`` (``inconclusive: ...`` for a device verdict that says so).

    The ``verdict`` decides, and ``passed`` must agree with it as a boolean: one that does not
    (:func:`~edgeproof.tracking.verdicts.verdict_problem`) is ``invalid: <why>``, never ``passed``."""
    why = verdict_problem(verdict)
    if why is not None:
        return f"invalid: {why}"
    said, failed = verdict.get("verdict"), ", ".join(str(f) for f in verdict.get("failed") or [])
    if said == "pass" or (said is None and verdict.get("passed") is True):
        return "passed"
    return f"{'failed' if said in (None, 'fail') else said}: {failed}".rstrip(": ")


def own_verdicts(record: Mapping[str, Any]) -> dict[str, str]:
    """``{profile: "passed" | "failed: ..."}`` of the record's verdicts about its own model file."""
    sha = record["tags"].get(SHA_TAG, "")
    return {profile: verdict_words(v) for profile, v in (record.get("verdicts") or {}).items() if _judges(v, sha)}


def build_profile_of(record: Mapping[str, Any]) -> str | None:
    """The profile of the record's own (build) verdict: the one not marked ``device``."""
    return next((p for p, v in (record.get("verdicts") or {}).items() if not (v or {}).get("device")), None)


def passed_every_own_verdict(record: Mapping[str, Any]) -> bool:
    """Whether every verdict the record carries about its own model file passed (the build gate's and
    any device's on the same file): what its promotion record's ``passed`` says, and what an alias needs."""
    return all_passed(own_verdicts(record))


def _judges(verdict: Mapping[str, Any], sha: str) -> bool:
    """Whether a verdict of the record is about the model file ``sha``: one that names it; the build
    gate's also when it names none. A device verdict about another file belongs to that file's
    version, and one that names no file (the device gate's own error report) to none."""
    named = verdict.get("model_sha256")
    return named == sha if named or verdict.get("device") else True


def history_entry(record: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """One verdict on the file: which run, from where, under which thresholds, with what outcome;
    ``at_ms`` when the run ended (none for a record without times), ``logged_ms`` now, when it is
    written (:func:`edgeproof.tracking.history_keys.first_written` keeps the first one on a re-send)."""
    tags = record["tags"]
    return {
        "run_id": run_id,
        "origin": origin(tags),
        "commit": tags.get("git_commit", "unknown"),
        "verdicts": own_verdicts(record),
        "build": build_profile_of(record),  # the build verdict's profile: the others are devices'
        "thresholds": record.get("thresholds") or {},
        "provenance": record.get("provenance", "unknown"),
        "at_ms": (record.get("times") or {}).get("end_ms"),
        LOGGED: now_ms(),
        **({RULES_FIELD: record[RULES_FIELD]} if RULES_FIELD in record else {}),  # which rules "clean" met
    }


def history(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """The version's verdicts in the order they were written, oldest first (entries that do not parse
    are skipped); the tags of both schemes (numbered ones and ones keyed by their entry) are read."""
    entries = (parse_entry(tags[key]) for key in history_keys(tags))
    return [e for e in entries if e is not None]


def runs_summary(tags: Mapping[str, str], run_id: str | None = None) -> str:
    """The ``runs`` tag: the runs it lists, then those of history entries it does not list (oldest
    first, device verdicts aside), then ``run_id``, the newest; at most :data:`MAX_HISTORY`.

    Built from the history, not only from the tag: a run whose entry a concurrent sender's write of
    ``runs`` left out is listed again by the next sender."""
    listed = [r for r in (tags.get(RUNS_TAG) or "").split(",") if r and r != run_id]
    judged = [e.get("run_id") for e in history(tags) if e.get("provenance") != DEVICE_PROVENANCE]
    runs = [r for r in dict.fromkeys([*listed, *judged]) if isinstance(r, str) and r and r != run_id]
    return ",".join([*runs, *([run_id] if run_id else [])][-MAX_HISTORY:])


DEVICE_PROVENANCE = "device results"


def report_id(report: Mapping[str, Any]) -> str:
    """A device report's content id: the same results logged again (a re-run CI job) change nothing."""
    return json_sha256(report, 16)


def device_history_key(report: Mapping[str, Any]) -> str:
    """The history tag of a device report's verdict: the report's content id (the report names its
    profile), so two boards' reports never share a tag, and the same report logged again has the same."""
    return history_key("device", report_id(report))


def has_device_entry(tags: Mapping[str, str], profile: str, report: Mapping[str, Any]) -> bool:
    """Whether the version's history already holds this very device report for ``profile``."""
    rid = report_id(report)
    return any(e.get("report_id") == rid and profile in (e.get("verdicts") or {}) for e in history(tags))


def device_entry(profile: str, report: Mapping[str, Any], run_ids: list[str], thresholds: dict[str, str]) -> dict:
    """A device gate's verdict on the file as a history entry (it never touches the promotion record),
    judged and written now: ``at_ms`` and ``logged_ms`` are the same time."""
    origin, now = f"device {profile}", now_ms()
    ref = os.environ.get("GITHUB_REF_NAME")
    return {
        "run_id": run_ids[0] if run_ids else None,
        "origin": f"{origin} ({ref})" if ref else origin,
        "commit": os.environ.get("GITHUB_SHA", "unknown"),
        "verdicts": {profile: verdict_words(report)},  # its verdict decides; a disagreeing passed is invalid
        "thresholds": thresholds,
        "provenance": DEVICE_PROVENANCE,
        "at_ms": now,
        LOGGED: now,
        "report_id": report_id(report),
    }


def new_tags(
    current: Mapping[str, str], record: Mapping[str, Any], run_id: str, alias: str, holds: bool = False
) -> dict[str, str]:
    """The tags to set for this verdict: a history entry always; the promotion record only where
    ``current`` has none yet and the run's inputs are committed; ``promoted.<alias>.*`` when this run
    moves ``alias`` (its earned alias, "" for none) to the version: the record of the alias's current
    mover, replacing an earlier mover's. ``holds``: the version holds ``alias`` already, so this run
    moves nothing and the mover stays (``alias.<alias>.run_id`` too), unless no record of one was
    written yet."""
    entry = history_entry(record, run_id)
    key = record_history_key(record, entry)
    entry = first_written(entry, current.get(key))  # sent again: the same value, the same place
    value = json.dumps(entry, sort_keys=True)
    tags = {RUNS_TAG: runs_summary({**current, key: value}, run_id), key: value}
    if not has_record(current) and record.get("passed") and not uncommitted(record["tags"]):
        tags.update(record_tags(entry, record["metrics"]))  # only a committed run's figures are fixed
    if alias and (not holds or f"promoted.{alias}.run_id" not in current):
        tags[f"promoted.{alias}.run_id"], tags[f"promoted.{alias}.origin"] = run_id, origin(record["tags"])
        tags.update(alias_record_tag(alias, entry, record["metrics"]))  # what `model show --alias` shows
    return tags


def dropped_history(tags: Mapping[str, str], keep: Collection[str] = ()) -> list[str]:
    """History tags beyond :data:`MAX_HISTORY`, those written longest ago first: to delete. Never one
    in ``keep``, the sender's own just written: a sender whose clock is behind the others' would
    otherwise stamp its fresh verdict as the oldest and delete it at once."""
    keys = history_keys(tags)
    excess = max(0, len(keys) - MAX_HISTORY)
    return [k for k in keys if k not in keep][:excess]


def judged_by_others(tags: Mapping[str, str], run_id: str) -> bool:
    """Whether a version holds verdicts of runs other than ``run_id`` (its ``runs`` or its history)."""
    runs = [r for r in (tags.get(RUNS_TAG) or "").split(",") if r and r != run_id]
    return bool(runs) or any(e.get("run_id") not in (None, run_id) for e in history(tags))


def without_run(tags: Mapping[str, str], run_id: str) -> tuple[dict[str, str], list[str]]:
    """The tags to set and to delete so that a version no longer speaks of ``run_id``, an attempt
    that failed and is deleted: its history entry, its place in ``runs``, and the promotion record
    or alias note it wrote. Device verdicts attached to that run stay: the device did judge the file."""
    delete = []
    for key in history_keys(tags):
        entry = parse_entry(tags[key])
        if entry is not None and entry.get("run_id") == run_id and entry.get("provenance") != DEVICE_PROVENANCE:
            delete.append(key)
    if (promotion(tags) or {}).get("run_id") == run_id:
        delete += [k for k in tags if k.startswith((PROMOTION_PREFIX, *SHOWN))]
    for key in [k for k in tags if k.startswith("promoted.") and k.endswith(".run_id") and tags[k] == run_id]:
        alias = key.split(".")[1]  # its time as the alias's holder goes too: a deleted run vouches for nothing
        delete += [
            key,
            f"{key[: -len('run_id')]}origin",
            ALIAS_RECORD.format(alias=alias),
            HELD_TAG.format(alias=alias),
        ]
    runs = [r for r in (tags.get(RUNS_TAG) or "").split(",") if r]
    update = {RUNS_TAG: ",".join(r for r in runs if r != run_id)} if run_id in runs else {}
    if update.get(RUNS_TAG) == "":
        delete.append(RUNS_TAG)
        update = {}
    return update, sorted(set(k for k in delete if k in tags))
