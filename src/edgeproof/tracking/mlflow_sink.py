"""Sending one outbox record to MLflow (embedded SQLite by default, a team server when configured).

A record is logged at most once as a FINISHED run, found again by its ``edgeproof.record_id`` tag.
A run is set FINISHED only after its params, metrics, artifacts and model registration are all in;
an attempt that failed part-way (a FAILED run, or one left RUNNING by a crash) is deleted when the
record is sent again, so a replay always logs it in full; what it wrote to the registry (versions it
registered, its verdict in other versions' history) is withdrawn when it fails, or at that replay.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.io import read_json
from edgeproof.paths import repo_root
from edgeproof.tracking.context import not_registered_reason, registers
from edgeproof.tracking.keys import clean_keys, unique_names
from edgeproof.tracking.mlflow_model import log_onnx_model
from edgeproof.tracking.params import TrackParams
from edgeproof.tracking.record import RECORD_FILE, Destination, content_id
from edgeproof.tracking.record_check import EditedRecordError, check_times, checked_alias
from edgeproof.tracking.redact import describe, install_log_filter
from edgeproof.tracking.registry import record_verdict, withdraw_run
from edgeproof.tracking.sqlite_store import ensure_store
from edgeproof.tracking.view import VIEW_TAG, view_state

log = logging.getLogger(__name__)

RECORD_TAG = "edgeproof.record_id"
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"  # MLflow 3 UI: the model-training view
MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
_BATCH = 100  # MLflow accepts at most 100 params / 1000 metrics per log_batch call


def default_tracking_uri(repo: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else an SQLite file ``mlflow.db`` in :func:`repo_root` of
    ``repo`` (the main repo, also when a DVC experiment runs in a temporary copy)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root(repo) / 'mlflow.db'}"


def connect(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` that fails fast when a team server is down; every log handler,
    MLflow's own included (it exists once MLflow is imported), redacts credentials from here on. An
    SQLite store is first made whole (:func:`~edgeproof.tracking.sqlite_store.ensure_store`): built
    all at once when missing, a half-built empty one moved aside and built again, a half-built one
    holding records refused (:class:`~edgeproof.tracking.sqlite_store.BrokenStoreError`)."""
    # Instead of MLflow's default minutes of retries; the record stays in the outbox for later.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    # MLflow prints run links with the URI's user:password; edgeproof logs its own, without them
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from mlflow.tracking import MlflowClient

    install_log_filter()
    ensure_store(uri)
    return MlflowClient(tracking_uri=uri)


def unreachable(client: Any) -> str | None:
    """Why the tracking server cannot be used right now, or ``None`` when it answers."""
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:
        return describe(exc)
    return None


def _experiment_id(client: Any, name: str, uri: str, root: Path) -> str:
    """The experiment's id, created (or restored) as needed, always of the model-training kind and
    with edgeproof's runs view (:mod:`edgeproof.tracking.view`). Another sender creating it between
    this one's look-up and its creation (the first two records sent at once) is no error: this one
    logs into the experiment that sender created."""
    from mlflow.exceptions import MlflowException

    wanted = {KIND_TAG: KIND, VIEW_TAG: view_state()}
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = None
        if uri.startswith("sqlite:"):  # keep local artifacts next to the local database, not in the cwd
            location = (root / "mlartifacts").resolve().as_uri()
        try:
            return client.create_experiment(name, artifact_location=location, tags=wanted)
        except MlflowException as exc:  # another sender created it since we looked: use theirs
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        exp = client.get_experiment_by_name(name)
    if exp.lifecycle_stage == "deleted":
        log.warning("MLflow experiment %r was deleted; restoring it to log into it", name)
        client.restore_experiment(exp.experiment_id)
    for key, value in wanted.items():
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def _settle_previous(client: Any, exp_id: str, record_id: str, model_name: str | None) -> str | None:
    """The FINISHED run holding ``record_id``, if any; unfinished attempts are deleted (with the
    model versions they registered, when ``model_name`` says registration was intended)."""
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.`{RECORD_TAG}` = '{record_id}'", order_by=["attributes.start_time ASC"]
    )
    finished = [run.info.run_id for run in runs if run.info.status == "FINISHED"]
    for run in runs:
        if run.info.status == "FINISHED":
            continue
        if model_name:
            withdraw_run(client, model_name, run.info.run_id, exp_id)
        log.warning("deleting incomplete MLflow run %s (%s) of record %s", run.info.run_id, run.info.status, record_id)
        client.delete_run(run.info.run_id)
    return finished[0] if finished else None


def _params(values: Mapping[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    out = []
    for key, value in sorted(clean_keys(values).items()):
        text = str(value)
        if len(text) > MAX_PARAM_VALUE:
            log.warning(
                "param %r is %d characters long; MLflow keeps only its first %d", key, len(text), MAX_PARAM_VALUE
            )
            text = text[:MAX_PARAM_VALUE]
        out.append(Param(key, text))
    return out


STAGE_TIME = "time_s"
"""Metric prefix of what each stage took in the run (``time_s.train``; ``time_s.total`` for the run)."""


def logged_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """The numbers logged as MLflow metrics: every number of every metrics file (``eval.map50_95``,
    ``bench.latency_ms.p95``, ``eval.class.<name>.ap``, ...; headline ones under their own names) and
    the stage times, so that any two runs compare in MLflow's UI on every number, under names that
    come from the files. The headline leads where order shows (:func:`_metrics`)."""
    chosen = dict(clean_keys(record["metrics"]))
    stages = record.get("stage_seconds") or {}
    chosen.update(clean_keys({f"{STAGE_TIME}.{name}": float(v) for name, v in stages.items()}))
    times = record.get("times") or {}
    if stages and times.get("start_ms") is not None:
        chosen[f"{STAGE_TIME}.total"] = round((times["end_ms"] - times["start_ms"]) / 1000, 3)
    return chosen


def _metrics(record: Mapping[str, Any], model_id: str | None) -> list[Any]:
    """Every chosen metric at step 0 and every curve row at its epoch, all stamped with the run's end
    time, so the same keys and steps line up across runs in MLflow's compare view. The headline
    numbers are also the logged model's metrics (``model_id``), on the evaluation dataset."""
    from mlflow.entities import Metric

    now = (record.get("times") or {}).get("end_ms") or int(time.time() * 1000)
    model_keys = set(record.get("headline") or []) or set(clean_keys(record["metrics"]))
    data = record.get("dataset") or {}
    on = {"dataset_name": data["name"], "dataset_digest": data["digest"]} if data.get("name") else {}
    out = []
    chosen = logged_metrics(record)
    for key in sorted(chosen, key=lambda k: (k not in model_keys, k)):  # the headline first
        value = chosen[key]
        if model_id and key in model_keys and not key.startswith(f"{STAGE_TIME}."):
            out.append(Metric(key, float(value), now, 0, model_id=model_id, **on))
        else:
            out.append(Metric(key, float(value), now, 0))
    columns = sorted({k for row in record["curves"] for k in row if k != "epoch"})
    names = unique_names(f"train_curve.{k}" for k in columns)
    for row in record["curves"]:
        step = int(row.get("epoch", 0))
        out += [Metric(names[f"train_curve.{k}"], float(v), now, step) for k, v in row.items() if k != "epoch"]
    return out


def _log_values(client: Any, run_id: str, record: Mapping[str, Any], model_id: str | None) -> None:
    params, metrics = _params(record["params"]), _metrics(record, model_id)
    for i in range(0, len(params), _BATCH):
        client.log_batch(run_id, params=params[i : i + _BATCH])
    for i in range(0, len(metrics), 10 * _BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + 10 * _BATCH])


def _log_dataset(client: Any, run_id: str, dataset: Mapping[str, Any] | None) -> None:
    if not dataset:
        return
    from mlflow.entities import Dataset, DatasetInput, InputTag

    entity = Dataset(
        name=dataset["name"],
        digest=dataset["digest"],
        source_type="dvc",
        source=json.dumps({"path": dataset["source"]}),
        profile=json.dumps(dataset.get("profile") or {}),
    )
    client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", "eval")])])


DVC_TAG_PREFIX = "dvc."
"""Record tags with DVC's output hashes: logged as the artifact ``provenance/dvc_outs.json``, not as
~30 run tags that would bury the rest of the run page."""


def _run_tags(record: Mapping[str, Any]) -> dict[str, str]:
    tags = {k: v for k, v in clean_keys(record["tags"]).items() if not k.startswith(DVC_TAG_PREFIX)}
    tags[RECORD_TAG] = record["record_id"]
    tags.update(
        {
            "mlflow.source.type": "LOCAL",
            "mlflow.source.name": "dvc.yaml",
            "mlflow.source.git.commit": tags.get("git_commit", "unknown"),
            "mlflow.note.content": (record.get("description") or "")[:8000],
        }
    )
    if tags.get("branch"):
        tags["mlflow.source.git.branch"] = tags["branch"]
    return tags


def _mark_failed(client: Any, run_id: str, model_name: str | None, exp_id: str) -> None:
    """Take the failed attempt's verdict out of the registry and mark its run FAILED, as far as the
    server still answers; whatever is left is settled when the record is sent again."""
    try:
        if model_name:
            withdraw_run(client, model_name, run_id, exp_id)
        client.set_terminated(run_id, "FAILED")
    except Exception as exc:  # the server may be gone; the run stays RUNNING and is settled on replay
        log.warning("could not mark MLflow run %s as FAILED: %s", run_id, describe(exc))


def _read_record(path: Path) -> dict[str, Any]:
    """The record in ``path``, refused when its content no longer hashes to its ``record_id``: an
    edited record would be logged as the run it claims to be (its verdict, alias, metrics)."""
    record = read_json(path)  # a key given twice is an error, not the last one winning
    found = content_id(record)
    if found != record.get("record_id"):
        raise EditedRecordError(
            f"{path}: its content no longer matches its record id {record.get('record_id')} (it hashes to {found}); "
            "it was changed after the run wrote it, so it is not sent and stays in the outbox"
        )
    return record


def send(
    client: Any, folder: Path, uri: str, root: Path, fallback: Destination, track: TrackParams | None = None
) -> dict[str, Any]:
    """Log the outbox record in ``folder`` as one FINISHED MLflow run spanning the pipeline; log its
    ONNX model and record the verdict in the registry. Idempotent by record id. Raises on any
    failure (the caller keeps the record), first of all for a record that does not agree with itself
    (:mod:`edgeproof.tracking.record_check`); the alias it moves is recomputed with ``track``."""
    record = _read_record(folder / RECORD_FILE)
    dest = Destination.of(record, fallback)
    models = sorted((folder / "artifacts" / "model").glob("*.onnx"))
    record["alias"] = checked_alias(folder, record, models, track)
    check_times(folder / RECORD_FILE, record, int(time.time() * 1000), "this machine's clock")
    register_as = dest.model_name if models else None
    exp_id = _experiment_id(client, dest.experiment, uri, root)
    existing = _settle_previous(client, exp_id, record["record_id"], register_as)
    if existing:
        log.info("record %s is already MLflow run %s", record["record_id"], existing)
        return {"run_id": existing, "new": False, "experiment": dest.experiment, "experiment_id": exp_id}
    tags, times = _run_tags(record), record.get("times") or {}
    name = record.get("run_name") or f"{tags.get('git_commit', 'unknown')[:8]}-{tags.get('model_sha256', '')[:8]}"
    run_id = client.create_run(exp_id, start_time=times.get("start_ms"), run_name=name, tags=tags).info.run_id
    version = None
    try:
        model_id = log_onnx_model(client, exp_id, run_id, models[0], record) if models else None
        if model_id:  # the logged model's creation time is set by the server: its clock, not the sender's
            server_ms = client.get_logged_model(model_id).creation_timestamp
            check_times(folder / RECORD_FILE, record, server_ms, "the tracking server's clock")
        _log_values(client, run_id, record, model_id)
        _log_dataset(client, run_id, record.get("dataset"))
        artifacts = folder / "artifacts"
        for sub in sorted(artifacts.iterdir()) if artifacts.is_dir() else []:
            if sub.name != "model":  # the model is logged as an MLflow model, not as loose files
                client.log_artifacts(run_id, str(sub), artifact_path=sub.name)
        dvc_outs = {k[len(DVC_TAG_PREFIX) :]: v for k, v in record["tags"].items() if k.startswith(DVC_TAG_PREFIX)}
        if dvc_outs:
            client.log_dict(run_id, dvc_outs, "provenance/dvc_outs.json")
        if register_as and model_id:
            version = record_verdict(client, register_as, record, run_id, exp_id, model_id)
        client.set_terminated(run_id, "FINISHED", end_time=times.get("end_ms"))
    except BaseException:
        _mark_failed(client, run_id, register_as, exp_id)
        raise
    registrable = register_as and (version is not None or record.get("passed") is True)  # a failed new file: no news
    return {
        "run_id": run_id,
        "new": True,
        "model_version": version,
        "registered": version is not None and registers(record["tags"], record.get("passed")),
        "verdict": record["tags"].get("verdict", ""),
        "model": register_as,
        "not_registered_because": not_registered_reason(record["tags"]) if registrable else "",
        "experiment": dest.experiment,
        "experiment_id": exp_id,
    }
