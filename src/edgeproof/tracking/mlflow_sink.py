"""Sending outbox records to MLflow (embedded SQLite by default, a team server when configured)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from edgeproof.tracking.record import RECORD_FILE

log = logging.getLogger(__name__)

RECORD_TAG = "edgeproof.record_id"
_BATCH = 100  # MLflow accepts at most 100 params / 1000 metrics per log_batch call


def default_tracking_uri(repo: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else an SQLite file ``mlflow.db`` in the repo."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(repo / 'mlflow.db').resolve()}"


def _client(uri: str) -> Any:
    # Fail fast when a team server is down instead of MLflow's default minutes of retries;
    # the record stays in the outbox and is replayed later.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str, uri: str, repo: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:"):  # keep local artifacts next to the local database, not in the cwd
        location = (repo / "mlartifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def _already_logged(client: Any, exp_id: str, record_id: str) -> str | None:
    runs = client.search_runs([exp_id], filter_string=f"tags.`{RECORD_TAG}` = '{record_id}'", max_results=1)
    return runs[0].info.run_id if runs else None


def _log_values(client: Any, run_id: str, record: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params = [Param(k, str(v)[:6000]) for k, v in sorted(record["params"].items())]
    metrics = [Metric(k, float(v), now, 0) for k, v in sorted(record["metrics"].items())]
    for row in record["curves"]:
        step = int(row.get("epoch", 0))
        metrics += [Metric(f"train_curve.{k}", float(v), now, step) for k, v in row.items() if k != "epoch"]
    for i in range(0, len(params), _BATCH):
        client.log_batch(run_id, params=params[i : i + _BATCH])
    for i in range(0, len(metrics), 10 * _BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + 10 * _BATCH])


def _register(client: Any, run_id: str, name: str, record: dict[str, Any]) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description="Models that passed the edgeproof release gate")
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(
        name, source=source, run_id=run_id, tags={"model_sha256": record["tags"]["model_sha256"]}
    )
    return str(version.version)


def send(folder: Path, uri: str, experiment: str, repo: Path, register_as: str | None) -> dict[str, Any]:
    """Log one outbox record to MLflow (idempotent by record id); register its model if it passed."""
    record = json.loads((folder / RECORD_FILE).read_text())
    client = _client(uri)
    exp_id = _experiment_id(client, experiment, uri, repo)
    existing = _already_logged(client, exp_id, record["record_id"])
    if existing:
        log.info("record %s is already MLflow run %s", record["record_id"], existing)
        return {"run_id": existing, "new": False}
    tags = {**record["tags"], RECORD_TAG: record["record_id"]}
    name = f"{tags.get('git_commit', 'unknown')[:8]}-{tags.get('model_sha256', '')[:8]}"
    run = client.create_run(exp_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    try:
        _log_values(client, run_id, record)
        for sub in sorted((folder / "artifacts").iterdir()):
            client.log_artifacts(run_id, str(sub), artifact_path=sub.name)
        version = None
        if register_as and record["passed"] and (folder / "artifacts" / "model").exists():
            version = _register(client, run_id, register_as, record)
            client.set_tag(run_id, "registered_model_version", f"{register_as}/{version}")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return {"run_id": run_id, "new": True, "model_version": version}


def flush(outbox: Path, uri: str, experiment: str, repo: Path, register_as: str | None) -> list[dict[str, Any]]:
    """Send every record waiting in ``outbox``, oldest first; a sent record leaves the outbox."""
    sent = []
    folders = sorted((p for p in outbox.glob("*") if (p / RECORD_FILE).exists()), key=lambda p: p.stat().st_mtime)
    for folder in folders:
        result = send(folder, uri, experiment, repo, register_as)
        shutil.rmtree(folder)
        sent.append({"record_id": folder.name, **result})
    return sent
