"""The MLflow model registry as the release record.

One model version per distinct model file (its sha256), registered by the first run that passed
it. Its promotion record (that run's verdicts, metrics, thresholds, provenance) is fixed once
written; later verdicts on the same file (experiments, pull requests, device runs) are added to the
version's history and never replace it (:mod:`edgeproof.tracking.history`). Aliases (``candidate``,
``champion`` by default) point at the version a run earned (:mod:`edgeproof.tracking.aliases`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection
from typing import Any

from edgeproof.tracking import history
from edgeproof.tracking.aliases import (
    HELD_TAG,
    MOVER_TAG,
    ROLLBACK_TAG,
    alias_holder,
    is_missing,
    move_alias,
    newer_than_holder,
    undo_move,
)
from edgeproof.tracking.context import registers
from edgeproof.tracking.description import version_description
from edgeproof.tracking.held_back import held_back, unpassed_device_verdicts
from edgeproof.tracking.history import SHA_TAG
from edgeproof.tracking.promotion import mend
from edgeproof.tracking.rollback import rollback as roll_alias_back

log = logging.getLogger(__name__)

REGISTERED_TAG = "registered_model_version"
"""Run tag: ``<model>/<version>``, the version of the run's file, for a run that registered it (a committed
run that passed, :func:`~edgeproof.tracking.context.registers`)."""
HISTORY_OF_TAG = "verdict_in_history_of"
"""Run tag: ``<model>/<version>`` whose history holds the verdict of a run that registered nothing (its
inputs are not committed, ``not_registered_because``, or it failed or was inconclusive): the version a
committed run registered for the file."""


def find_version(client: Any, name: str, sha: str) -> Any | None:
    """The (first) version of ``name`` registered for the model file with this sha256, if any."""
    if not sha:
        return None
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}' and tags.{SHA_TAG} = '{sha}'")
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise
    return min(versions, key=lambda v: int(v.version)) if versions else None


def _ensure_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            name,
            description="Models that passed the edgeproof release gate: one version per model file (sha256), "
            "its gate verdict per device profile, and the runs that judged it.",
        )
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise


def link_logged_model(client: Any, model_id: str, name: str, version: str) -> None:
    """Tag the run's logged model with the version it is (``mlflow.modelVersions``, as
    ``mlflow.register_model`` does), so its page says "Registered" and links to the version
    instead of offering a second registration of the same file."""
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    entry = {"name": name, "version": version}
    existing = client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS)
    versions = json.loads(existing) if existing else []
    if entry not in versions:
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*versions, entry])})


def _first_of_file(client: Any, name: str, sha: str, created: Any) -> Any:
    """``created``, unless another sender registered the same file at the same time: versions are
    numbered in order, so the lowest one of the file is the one both keep; the later one is deleted."""
    first = find_version(client, name, sha)
    if first is None or str(first.version) == str(created.version):
        return created
    client.delete_model_version(name, str(created.version))
    log.warning("%s version %s of this file was registered at the same time; using it instead", name, first.version)
    return first


def settle_summary(client: Any, name: str, number: str, exp_id: str, own: Collection[str] = ()) -> None:
    """Cap the history, list its runs and describe the version from its tags as they are now, read
    again after this sender's writes: another sender of the same file may have added its verdict
    since this one first read the version (each entry has a tag of its own, so none is lost; the
    ``runs`` summary and the description are rewritten here to show them), or written its own
    promotion record too (the record tag holds one whole record; the tags showing it are rewritten
    here). The cap never deletes ``own``, the history tags this sender has just written. Every
    writer of a history entry (a pipeline record here, a device verdict in
    :mod:`edgeproof.tracking.device_verdict`) ends with it."""
    version = client.get_model_version(name, number)
    tags = dict(version.tags)
    # a tag already gone (the other sender's cap) is no error
    tags = _apply_tags(client, name, number, tags, {}, history.dropped_history(tags, keep=own))
    tags = _apply_tags(client, name, number, tags, *mend(tags))  # two first senders' promotion tags, mixed
    # summarised after the cap: before it, the entries about to go were listed again, after the newest
    runs = history.runs_summary(tags)
    if runs and runs != tags.get(history.RUNS_TAG):
        client.set_model_version_tag(name, number, history.RUNS_TAG, runs)
        tags[history.RUNS_TAG] = runs
    describe(client, name, number, tags, exp_id, version.description)


def describe(client: Any, name: str, number: str, tags: dict[str, str], exp_id: str, current: str | None) -> None:
    """Write version ``number``'s description: edgeproof's block from ``tags``, the text a user wrote around
    it (``current``, e.g. a note written in MLflow's UI) kept
    (:func:`~edgeproof.tracking.description.version_description`)."""
    text = version_description(current, tags, exp_id)
    if text is None:
        log.warning("%s version %s: its description leaves no room for the verdicts; not rewritten", name, number)
        return
    client.update_model_version(name, number, description=text)


def _apply_tags(
    client: Any, name: str, number: str, tags: dict[str, str], update: dict[str, str], delete: Collection[str]
) -> dict[str, str]:
    """Set ``update`` and delete ``delete`` on version ``number``; ``tags`` as they are afterwards."""
    for key, value in update.items():
        client.set_model_version_tag(name, number, key, value)
    for key in delete:
        client.delete_model_version_tag(name, number, key)
    gone = set(delete)
    return {k: v for k, v in {**tags, **update}.items() if k not in gone}


def record_verdict(
    client: Any, name: str, record: dict[str, Any], run_id: str, exp_id: str, model_id: str
) -> str | None:
    """Register the run's model file (once per sha256, with its fixed promotion record) or add this
    verdict to its version's history; move the alias the run earned. Returns the version, or
    ``None`` for a file never registered that this run does not register either: it failed, or its
    inputs are not committed (:func:`~edgeproof.tracking.context.uncommitted`: such a run is logged,
    and its verdict joins the history of a version of its file registered by a committed run)."""
    sha = record["tags"].get(SHA_TAG, "")
    version = find_version(client, name, sha)
    if version is None:
        # a file that never passed is no news; uncommitted inputs: the sender's log says why (tracking.pipeline)
        if not registers(record["tags"], record.get("passed")):
            return None
        _ensure_model(client, name)
        version = _first_of_file(
            client,
            name,
            sha,
            client.create_model_version(
                name, source=f"models:/{model_id}", run_id=run_id, tags={SHA_TAG: sha}, model_id=model_id
            ),
        )
    number = str(version.version)
    at_ms = (record.get("times") or {}).get("end_ms")
    alias = (record.get("alias") or "") if record.get("passed") is True else ""  # only a pass moves an alias
    if alias and not newer_than_holder(client, name, alias, number, at_ms):
        alias = ""  # the version is recorded all the same, without the alias
    held_back = unpassed_device_verdicts(version.tags, record) if alias else []
    if held_back:  # a device verdict on this file that did not pass, remembered though its report is gone
        why = f"{name} version {number} holds verdicts on this file that did not pass: {'; '.join(held_back)}"
        log.warning("%s; alias %s not moved", why, alias)
        client.set_tag(run_id, "alias_not_moved", f"{alias}: {why}"[:5000])
        alias = ""
    holder = alias_holder(client, name, alias) if alias else None  # already there: the mover stays
    holds = holder is not None and str(holder.version) == number
    written = history.new_tags(version.tags, record, run_id, alias, holds)
    for key, value in written.items():
        client.set_model_version_tag(name, number, key, value)
    settle_summary(client, name, number, exp_id, own=history.history_keys(written))
    # a run that registered nothing (not committed, or failed): its tag names the version it only judged
    registered = registers(record["tags"], record.get("passed"))
    client.set_tag(run_id, REGISTERED_TAG if registered else HISTORY_OF_TAG, f"{name}/{number}")
    link_logged_model(client, model_id, name, number)  # every run's logged model of this file is this version
    if alias and not move_alias(client, name, alias, number, at_ms, run_id):  # last: withdraw_run undoes it
        client.set_tag(run_id, "alias_not_moved", f"{alias}: a newer record moved it to another version meanwhile")
    elif alias and not holds and ROLLBACK_TAG.format(alias=alias) in version.tags:  # the move took a rollback's note
        describe_again(client, name, number, exp_id)
    return number


def describe_again(client: Any, name: str, number: str, exp_id: str | None = None) -> None:
    """Describe version ``number`` from its tags as they are now, after a change to its alias tags (a
    rollback's note, or a move that took it off): the description says what ``model show`` says at once,
    not from the version's next verdict on. ``exp_id``: the experiment its run links point into (by
    default the one its description links already, else its run's)."""
    version = client.get_model_version(name, number)
    describe(client, name, number, dict(version.tags), exp_id or _exp_of(client, version), version.description)


def _exp_of(client: Any, version: Any) -> str:
    """The experiment a version's description links its runs into: as it links them now, else its run's."""
    from mlflow.exceptions import MlflowException

    linked = re.search(r"#/experiments/([^/)]+)/runs/", version.description or "")
    if linked:
        return linked.group(1)
    try:
        return str(client.get_run(version.run_id).info.experiment_id)
    except (MlflowException, TypeError):  # no run, or deleted: the links go nowhere either way
        return "0"


def rollback(
    client: Any, name: str, alias: str, to: str | None = None, force: bool = False, build_profile: str | None = None
) -> dict[str, Any]:
    """Move ``alias`` back (:func:`~edgeproof.tracking.rollback.rollback`), never (unless ``force``) to a
    version a device failed (:func:`held_back`), and describe the version it is on now again, with the
    rollback's note (``alias.<alias>.rollback``)."""
    moved = roll_alias_back(client, name, alias, to, force, lambda v: held_back(dict(v.tags), build_profile))
    describe_again(client, name, str(moved["to"]))
    return moved


def withdraw_run(client: Any, name: str, run_id: str, exp_id: str) -> None:
    """Undo what an attempt that failed wrote to the registry: delete the versions it registered and
    take its verdict out of every other version (history entry, ``runs``, promotion record), so no
    version lists a run that is about to be deleted or replayed under another id. A version it
    registered that other runs have judged since (the attempt's server went away before it could be
    withdrawn) is kept, with their verdicts: only the attempt's own are taken out. An alias it moved
    goes back to the version that held it before (unless another run has moved it since)."""
    _undo_alias_moves(client, name, run_id)  # first: deleting a version it moved an alias to drops the alias
    for version in client.search_model_versions(f"name = '{name}'"):
        number = str(version.version)
        if version.run_id == run_id and not history.judged_by_others(version.tags, run_id):
            client.delete_model_version(name, number)
            continue
        update, delete = history.without_run(version.tags, run_id)
        delete = sorted({*delete, *_mover_tags(version.tags, run_id)})
        if not update and not delete:
            continue
        left = _apply_tags(client, name, number, dict(version.tags), update, delete)
        describe(client, name, number, left, exp_id, version.description)
        log.warning("took the verdict of failed run %s out of %s version %s", run_id, name, number)


def _mover_tags(tags: dict[str, str], run_id: str) -> list[str]:
    """The alias tags of moves ``run_id`` made on a version (the mover, the holder time)."""
    aliases = [k.split(".")[1] for k, v in tags.items() if v == run_id and re.fullmatch(r"alias\.[^.]+\.run_id", k)]
    return [k for a in aliases for k in (MOVER_TAG.format(alias=a), HELD_TAG.format(alias=a)) if k in tags]


def _undo_alias_moves(client: Any, name: str, run_id: str) -> None:
    """Aliases ``run_id`` moved and still on the version it moved them to go back to their previous holder."""
    from mlflow.exceptions import MlflowException

    try:
        held = dict(client.get_registered_model(name).aliases or {})
    except MlflowException as exc:
        if is_missing(exc):
            return
        raise
    for alias, number in held.items():
        if client.get_model_version(name, str(number)).tags.get(MOVER_TAG.format(alias=alias)) == run_id:
            undo_move(client, name, alias, str(number))
