"""The MLflow model registry as the release record.

One model version per distinct model file (its sha256): a later gate verdict on the same file
updates that version (tags, description, the list of runs that judged it) instead of registering
it again. A version's tags and description hold the verdict per device profile, the key metrics
and links to the runs. Aliases (``candidate``, ``champion`` by default) point at the version a
run earned; every move is remembered on the registered model so :func:`rollback` can undo it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SHA_TAG = "model_sha256"
RUNS_TAG = "runs"
HISTORY_TAG = "edgeproof.alias_history.{alias}"
KEY_METRICS = ("eval.map50_95", "eval.map50", "bench.fps_e2e", "bench.latency_ms.p95")
_MAX_RUNS, _MAX_HISTORY = 40, 50


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


def _key_metrics(metrics: dict[str, float]) -> dict[str, float]:
    headline = {k: v for k, v in metrics.items() if "." not in k}  # metrics/headline.json keys
    return headline or {k: metrics[k] for k in KEY_METRICS if k in metrics}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _version_tags(version: Any, record: dict[str, Any], run_id: str) -> dict[str, str]:
    sha = record["tags"].get(SHA_TAG, "")
    runs = [r for r in (version.tags.get(RUNS_TAG) or "").split(",") if r and r != run_id] + [run_id]
    tags = {RUNS_TAG: ",".join(runs[-_MAX_RUNS:])}
    for profile, verdict in (record.get("verdicts") or {}).items():
        if verdict.get("model_sha256") not in (None, sha):
            continue  # a device verdict about another file belongs to that file's version
        failed = verdict.get("failed") or []
        tags[f"gate.{profile}"] = "passed" if verdict.get("passed") else f"failed: {', '.join(failed)}".rstrip(": ")
        tags[f"gate.{profile}.run_id"] = run_id
    # the number as the metrics file writes it (shortest repr), so it reads the same as `dvc metrics diff`
    tags.update({f"metric.{k}": _number(v) for k, v in _key_metrics(record["metrics"]).items()})
    return tags


def describe_version(tags: dict[str, str], exp: str) -> str:
    """The version's Markdown description, rebuilt from its tags (verdicts, metrics, runs); run
    links point into experiment ``exp``."""

    def link(run_id: str) -> str:
        return f"[{run_id[:8]}](#/experiments/{exp}/runs/{run_id})"

    lines = [f"Model file sha256 `{tags.get(SHA_TAG, '?')}`.", "", "| profile | gate verdict | run |", "|---|---|---|"]
    for key in sorted(k for k in tags if k.startswith("gate.") and not k.endswith(".run_id")):
        lines.append(f"| {key[5:]} | {tags[key]} | {link(tags.get(key + '.run_id', ''))} |")
    metrics = [f"{k[7:]} = {v}" for k, v in sorted(tags.items()) if k.startswith("metric.")]
    if metrics:
        lines += ["", "Key metrics (latest run): " + ", ".join(metrics)]
    runs = [r for r in tags.get(RUNS_TAG, "").split(",") if r]
    lines += ["", "Runs that judged this file: " + ", ".join(link(r) for r in runs)]
    return "\n".join(lines)


def record_verdict(
    client: Any, name: str, record: dict[str, Any], run_id: str, exp_id: str, model_id: str
) -> str | None:
    """Register the run's model file (once per sha256) or add this verdict to its version; move
    the alias the run earned. Returns the version, or ``None`` for a failed, never-registered file."""
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
    tags = _version_tags(version, record, run_id)
    for key, value in tags.items():
        client.set_model_version_tag(name, number, key, value)
    client.update_model_version(name, number, description=describe_version({**version.tags, **tags}, exp_id))
    client.set_tag(run_id, "registered_model_version", f"{name}/{number}")
    if record.get("alias"):
        move_alias(client, name, record["alias"], number)
    return number


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


def rollback(client: Any, name: str, alias: str, to: str | None = None) -> dict[str, Any]:
    """Move ``alias`` back to the version it held before (the history entry is consumed), or to
    version ``to`` (a move like any other, itself undoable); return the move."""
    current = alias_holder(client, name, alias)
    before = None if current is None else str(current.version)
    if to is not None:
        client.get_model_version(name, to)  # fails clearly when the version does not exist
        move_alias(client, name, alias, to)
        return {"name": name, "alias": alias, "from": before, "to": to}
    history = _history(client, name, alias)
    while history and history[-1] == before:
        history.pop()
    if not history:
        raise ValueError(f"{name}@{alias}: no earlier version to roll back to (its alias history is empty)")
    to = history.pop()
    client.get_model_version(name, to)
    client.set_registered_model_alias(name, alias, to)
    _set_history(client, name, alias, history)
    log.info("alias %s of %s rolled back: version %s -> %s", alias, name, before, to)
    return {"name": name, "alias": alias, "from": before, "to": to}


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
    """Which version holds ``alias``: its sha256, tags, description, run and that run's gate report."""
    version = alias_holder(client, name, alias)
    if version is None:
        raise ValueError(f"{name}@{alias}: no version holds this alias")
    runs = [r for r in (version.tags.get(RUNS_TAG) or "").split(",") if r]
    run_id = runs[-1] if runs else version.run_id  # the latest verdict on this file
    return {
        "name": name,
        "alias": alias,
        "version": str(version.version),
        "model_sha256": version.tags.get(SHA_TAG),
        "source": version.source,
        "run_id": run_id,
        "tags": dict(version.tags),
        "description": version.description,
        "alias_history": _history(client, name, alias),
        "gate": _gate_report(client, run_id),
    }
