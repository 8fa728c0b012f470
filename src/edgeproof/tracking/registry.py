"""The MLflow model registry as the release record.

One model version per distinct model file (its sha256), registered by the first run that passed
it. Its promotion record (that run's verdicts, metrics, thresholds, provenance) is fixed once
written; later verdicts on the same file (experiments, pull requests, device runs) are added to the
version's history and never replace it (:mod:`edgeproof.tracking.history`). Aliases (``candidate``,
``champion`` by default) point at the version a run earned; every move is remembered on the
registered model so :func:`rollback` can undo it, skipping versions deleted since.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from edgeproof.tracking import history
from edgeproof.tracking.history import SHA_TAG

log = logging.getLogger(__name__)

HISTORY_TAG = "edgeproof.alias_history.{alias}"
_MAX_HISTORY = 50


def _is_missing(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


def find_version(client: Any, name: str, sha: str) -> Any | None:
    """The (first) version of ``name`` registered for the model file with this sha256, if any."""
    if not sha:
        return None
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}' and tags.{SHA_TAG} = '{sha}'")
    except MlflowException as exc:
        if _is_missing(exc):
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


def record_verdict(
    client: Any, name: str, record: dict[str, Any], run_id: str, exp_id: str, model_id: str
) -> str | None:
    """Register the run's model file (once per sha256, with its fixed promotion record) or add this
    verdict to its version's history; move the alias the run earned. Returns the version, or
    ``None`` for a failed, never-registered file."""
    sha = record["tags"].get(SHA_TAG, "")
    version = find_version(client, name, sha)
    if version is None:
        if not record.get("passed"):
            return None
        _ensure_model(client, name)
        version = client.create_model_version(
            name, source=f"models:/{model_id}", run_id=run_id, tags={SHA_TAG: sha}, model_id=model_id
        )
    number = str(version.version)
    tags = history.new_tags(version.tags, record, run_id, record.get("alias") or "")
    for key, value in tags.items():
        client.set_model_version_tag(name, number, key, value)
    merged = {**version.tags, **tags}
    for key in history.dropped_history(merged):
        client.delete_model_version_tag(name, number, key)
        merged.pop(key)
    client.update_model_version(name, number, description=history.describe_version(merged, exp_id))
    client.set_tag(run_id, "registered_model_version", f"{name}/{number}")
    link_logged_model(client, model_id, name, number)  # every run's logged model of this file is this version
    if record.get("alias"):
        move_alias(client, name, record["alias"], number)
    return number


def withdraw_run(client: Any, name: str, run_id: str, exp_id: str) -> None:
    """Undo what an attempt that failed wrote to the registry: delete the versions it registered and
    take its verdict out of every other version (history entry, ``runs``, promotion record), so no
    version lists a run that is about to be deleted or replayed under another id."""
    for version in client.search_model_versions(f"name = '{name}'"):
        number = str(version.version)
        if version.run_id == run_id:
            client.delete_model_version(name, number)
            continue
        update, delete = history.without_run(version.tags, run_id)
        if not update and not delete:
            continue
        for key, value in update.items():
            client.set_model_version_tag(name, number, key, value)
        for key in delete:
            client.delete_model_version_tag(name, number, key)
        left = {k: v for k, v in {**version.tags, **update}.items() if k not in delete}
        client.update_model_version(name, number, description=history.describe_version(left, exp_id))
        log.warning("took the verdict of failed run %s out of %s version %s", run_id, name, number)


def alias_holder(client: Any, name: str, alias: str) -> Any | None:
    """The version ``alias`` points at, or ``None``."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _is_missing(exc) or "alias" in str(exc).lower():
            return None
        raise


def _history(client: Any, name: str, alias: str) -> list[str]:
    tag = client.get_registered_model(name).tags.get(HISTORY_TAG.format(alias=alias), "")
    return [v for v in tag.split(",") if v]


def _set_history(client: Any, name: str, alias: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG.format(alias=alias), ",".join(history[-_MAX_HISTORY:]))


def move_alias(client: Any, name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``, remembering the previous holder for :func:`rollback`."""
    current = alias_holder(client, name, alias)
    if current is not None and str(current.version) == version:
        return
    if current is not None:
        _set_history(client, name, alias, [*_history(client, name, alias), str(current.version)])
    client.set_registered_model_alias(name, alias, version)
    log.info("alias %s of %s -> version %s", alias, name, version)


def _exists(client: Any, name: str, version: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        if _is_missing(exc):
            return False
        raise
    return True


def _versions(client: Any, name: str) -> list[str]:
    numbers = {int(v.version) for v in client.search_model_versions(f"name = '{name}'")}
    return [str(n) for n in sorted(numbers)]


def _no_such_version(client: Any, name: str, alias: str, wanted: str) -> ValueError:
    choices = _versions(client, name)
    hint = f"choose one with --to: {', '.join(choices)}" if choices else "the model has no versions"
    return ValueError(f"{name}@{alias}: version {wanted} does not exist (any more); {hint}")


def rollback(client: Any, name: str, alias: str, to: str | None = None) -> dict[str, Any]:
    """Move ``alias`` back to the latest earlier holder that still exists (history entries are
    consumed; deleted versions are skipped and named), or to version ``to`` (a move like any other,
    itself undoable); return the move. Errors name the versions there are to choose from."""
    current = alias_holder(client, name, alias)
    before = None if current is None else str(current.version)
    if to is not None:
        if not _exists(client, name, to):
            raise _no_such_version(client, name, alias, to)
        move_alias(client, name, alias, to)
        return {"name": name, "alias": alias, "from": before, "to": to}
    earlier = _history(client, name, alias)
    skipped: list[str] = []
    while earlier and (earlier[-1] == before or not _exists(client, name, earlier[-1])):
        gone = earlier.pop()
        if gone != before:
            skipped.append(gone)
    if not earlier:
        _set_history(client, name, alias, earlier)
        gone = f" (deleted since: {', '.join(skipped)})" if skipped else ""
        choices = ", ".join(_versions(client, name)) or "none"
        raise ValueError(
            f"{name}@{alias}: no earlier version to roll back to{gone}; its alias history is empty "
            f"(versions: {choices}; use --to)"
        )
    to = earlier.pop()
    client.set_registered_model_alias(name, alias, to)
    _set_history(client, name, alias, earlier)
    if skipped:
        log.warning("%s@%s: skipped version(s) %s of its history, deleted since", name, alias, ", ".join(skipped))
    log.info("alias %s of %s rolled back: version %s -> %s", alias, name, before, to)
    return {"name": name, "alias": alias, "from": before, "to": to, "skipped_deleted": skipped}


def _gate_report(client: Any, run_id: str | None) -> Any:
    if not run_id:
        return None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return json.loads(Path(client.download_artifacts(run_id, "reports/gate.json", tmp)).read_text())
    except Exception as exc:  # an old run without the report, or one whose artifacts were deleted
        log.warning("no gate report for run %s: %s", run_id, type(exc).__name__)
        return None


def show(client: Any, name: str, alias: str) -> dict[str, Any]:
    """Which version holds ``alias``: its sha256, its fixed promotion record (with the promoting
    run's gate report) and, separately, every verdict on the file since (``history``)."""
    version = alias_holder(client, name, alias)
    if version is None:
        raise ValueError(f"{name}@{alias}: no version holds this alias")
    tags = dict(version.tags)
    promoted = history.promotion(tags)
    if promoted is None:  # registered before promotion records existed: its tags may have been rewritten
        promoted = {"run_id": version.run_id, "note": "registered before fixed promotion records; tags may be later"}
    promoted["gate"] = _gate_report(client, promoted.get("run_id"))
    return {
        "name": name,
        "alias": alias,
        "version": str(version.version),
        "model_sha256": tags.get(SHA_TAG),
        "source": version.source,
        "promotion": promoted,
        "history": history.history(tags),
        "alias_history": _history(client, name, alias),
    }
