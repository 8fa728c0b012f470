"""Record a pipeline run: snapshot to the outbox, then flush the outbox to MLflow (best effort)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgeproof.paths import repo_root
from edgeproof.tracking.context import not_registered_advice
from edgeproof.tracking.mlflow_sink import default_tracking_uri
from edgeproof.tracking.outbox import FlushResult, flush
from edgeproof.tracking.params import TrackParams
from edgeproof.tracking.record import Destination, RecordSources, snapshot
from edgeproof.tracking.redact import describe, install_log_filter, redact, without_userinfo
from edgeproof.tracking.view import WORKFLOW, runs_view_path

log = logging.getLogger(__name__)


class ReplayError(RuntimeError):
    """Some records could not be sent; they stay in the outbox. ``result`` says which were sent."""

    def __init__(self, result: FlushResult, outbox: Path) -> None:
        self.result = result
        details = "; ".join(f"{p['record_id']}: {p['error']}" for p in result.pending)
        super().__init__(f"{len(result.pending)} record(s) still waiting in {outbox} ({details})")


def outbox_dir(state: Path) -> Path:
    """Where records wait until MLflow has them."""
    return state / "tracking" / "outbox"


def destination(params: TrackParams) -> Destination:
    """Where the current params send a new record (stored in the record at snapshot time)."""
    return Destination(params.experiment, params.model_name if params.register_model else None)


def _log_sent(sent: list[dict[str, Any]], uri: str) -> None:
    web = without_userinfo(uri).rstrip("/") if uri.startswith(("http://", "https://")) else None
    for item in sent:
        link = f" at {web}/#/experiments/{item.get('experiment_id')}/runs/{item['run_id']}?{WORKFLOW}" if web else ""
        why = item.get("not_registered_because")
        log.info(
            "MLflow run %s in experiment %r (record %s%s)%s",
            item["run_id"],
            item.get("experiment"),
            item["record_id"],
            "" if why else _version_note(item),
            link,
        )
        if why:
            _warn_not_registered(item, why)
    for exp_id in sorted({str(item["experiment_id"]) for item in sent if item.get("experiment_id")}):
        if web:
            log.info("runs table with the key metrics: %s/%s", web, runs_view_path(exp_id))
        elif uri.startswith("sqlite:"):
            log.info(
                "browse: `mlflow ui --backend-store-uri %s`, then http://127.0.0.1:5000/%s",
                redact(uri),
                runs_view_path(exp_id),
            )


def _version_note(item: dict[str, Any]) -> str:
    """What a run whose inputs are committed did to its file's version: registered it (it passed:
    :func:`~edgeproof.tracking.context.registers`), or only added its verdict to the history of the version a
    passing run registered (it failed or was inconclusive; the gate reported that verdict already)."""
    number = item.get("model_version")
    if not number:
        return ""
    if item.get("registered"):
        return f", registered version {number}"
    verdict = item.get("verdict") or "not passed"
    return (
        f"; registered nothing and moved no alias: its verdict ({verdict}) was added to the history of version {number}"
    )


def _warn_not_registered(item: dict[str, Any], why: str) -> None:
    """Say that the run registered nothing, and where its verdict went: its file's version, when a
    committed run registered it, holds the verdict in its history (which is no registration)."""
    number = item.get("model_version")
    log.warning(
        "MLflow run %s registered no version of %s and moved no alias (%s)%s; %s",
        item["run_id"],
        item.get("model"),
        why,
        f"; its verdict was added to the history of version {number}" if number else "",
        not_registered_advice(why),
    )


def replay(state: Path, repo: Path, params: TrackParams, uri: str | None = None) -> list[dict[str, Any]]:
    """Send every waiting record to MLflow, each to the experiment and registered model stored in it
    (``params`` only for records made before those were stored). Returns the records sent; raises
    :class:`ReplayError` when some are still waiting (e.g. the tracking server is unreachable)."""
    install_log_filter()
    root = repo_root(repo)
    outbox = outbox_dir(state)
    uri = uri or default_tracking_uri(root)
    result = flush(outbox, uri, root, destination(params), params)
    _log_sent(result.sent, uri)
    if result.pending:
        raise ReplayError(result, outbox)
    return result.sent


class RecordNotKept(RuntimeError):
    """This run's record could be neither sent nor kept in the outbox (a full disk, a read-only state
    folder): it would be lost for good, so the stage fails (exit 2) and DVC does not mark it done."""

    def __init__(self, outbox: Path, cause: BaseException) -> None:
        super().__init__(
            f"the MLflow record of this run could not be written to {outbox} ({describe(cause)}), so it is neither "
            "sent nor kept for `edgeproof track replay`; the verdict files are written. Free space or make the "
            "folder writable, then run `dvc repro -f -s gate` to make the record (plain `dvc repro` can take the "
            "gate for done when the verdict files it wrote match dvc.lock)"
        )


def record_pipeline_run(sources: RecordSources, repo: Path, state: Path, params: TrackParams) -> dict[str, Any]:
    """Snapshot this run's files to the outbox and try to send them.

    Git info is taken from ``repo`` (the checkout whose code ran); the default MLflow database and
    artifacts live in :func:`~edgeproof.paths.repo_root` of it. Returns ``{"record": <outbox
    folder>, "pending": False, "sent": [...]}``, or ``"pending": True`` with ``"error"`` when this
    run's record could not be sent (it stays in the outbox for ``edgeproof track replay``); a
    tracking failure once the record is kept never raises. Raises :class:`RecordNotKept` when not
    even the snapshot could be written (e.g. a full disk): nothing would ever send that record.
    """
    install_log_filter()
    outbox = outbox_dir(state)
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        folder = snapshot(sources, repo, outbox, params.log_model, destination(params), params)
    except Exception as exc:
        raise RecordNotKept(outbox, exc) from exc
    try:
        return _send(folder, repo, outbox, params)
    except Exception as exc:  # the record is kept: a tracking failure never changes the verdict or exit code
        log.warning("MLflow did not take record %s (%s); it stays in %s", folder.name, describe(exc), outbox)
        return {"record": str(folder), "pending": True, "error": describe(exc)}


def _send(folder: Path, repo: Path, outbox: Path, params: TrackParams) -> dict[str, Any]:
    root = repo_root(repo)
    uri = default_tracking_uri(root)
    try:
        result = flush(outbox, uri, root, destination(params), params)
    except Exception as exc:  # any tracking failure must not change the release verdict
        result = FlushResult(pending=[{"record_id": folder.name, "error": describe(exc)}])
    _log_sent(result.sent, uri)
    mine = [p for p in result.pending if p["record_id"] == folder.name]
    if mine:
        log.warning(
            "MLflow at %s did not take record %s (%s); it stays in %s — send it later with `edgeproof track replay`",
            redact(uri),
            folder.name,
            mine[0]["error"],
            outbox,
        )
        return {"record": str(folder), "pending": True, "error": mine[0]["error"], "tracking_uri": redact(uri)}
    if result.pending:
        log.warning("%d older record(s) still waiting in %s for `edgeproof track replay`", len(result.pending), outbox)
    return {"record": str(folder), "pending": False, "sent": result.sent, "tracking_uri": redact(uri)}
