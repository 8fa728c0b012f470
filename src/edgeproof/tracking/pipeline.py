"""Record a pipeline run: snapshot to the outbox, then flush the outbox to MLflow (best effort)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgeproof.config import TrackParams
from edgeproof.tracking.mlflow_sink import default_tracking_uri, flush
from edgeproof.tracking.record import RecordSources, snapshot

log = logging.getLogger(__name__)


def outbox_dir(state: Path) -> Path:
    """Where records wait until MLflow has them."""
    return state / "tracking" / "outbox"


def replay(state: Path, repo: Path, params: TrackParams, uri: str | None = None) -> list[dict[str, Any]]:
    """Send every waiting record to MLflow; raises if the tracking server is still unreachable."""
    uri = uri or default_tracking_uri(repo)
    register = params.model_name if params.register_model else None
    return flush(outbox_dir(state), uri, params.experiment, repo, register)


def record_pipeline_run(sources: RecordSources, repo: Path, state: Path, params: TrackParams) -> dict[str, Any]:
    """Snapshot this run's files and try to send them; never raises for an unreachable tracker.

    Returns ``{"record": <outbox folder>, "sent": [...]}``, or with ``"pending"`` and ``"error"``
    when MLflow could not be reached (the record stays in the outbox for ``edgeproof track replay``).
    """
    outbox = outbox_dir(state)
    outbox.mkdir(parents=True, exist_ok=True)
    folder = snapshot(sources, repo, outbox, params.log_model)
    uri = default_tracking_uri(repo)
    try:
        sent = replay(state, repo, params, uri)
    except Exception as exc:  # any tracking failure must not change the release verdict
        log.warning(
            "MLflow at %s unavailable (%s: %s); record %s kept in %s — send it later with `edgeproof track replay`",
            uri,
            type(exc).__name__,
            exc,
            folder.name,
            outbox,
        )
        return {"record": str(folder), "pending": True, "error": str(exc)}
    for item in sent:
        log.info(
            "MLflow run %s (record %s%s)",
            item["run_id"],
            item["record_id"],
            f", registered version {item['model_version']}" if item.get("model_version") else "",
        )
    return {"record": str(folder), "sent": sent, "tracking_uri": uri}
