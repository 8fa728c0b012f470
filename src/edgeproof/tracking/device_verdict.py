"""Device gate verdicts in MLflow: on the run of the same model, and the registry alias of a release.

The pipeline's run carries the tag ``model_sha256``; a device verdict for that file is logged there
(tags ``device.<profile>.verdict``, metrics ``device.<profile>.<figure>``, the gate report as
artifacts under ``device/<profile>/``) and added to the history of that file's registry version
(:mod:`edgeproof.tracking.history`; its promotion record stays as it was), once per report: logging
the same results again (a re-run CI job, also an older one) changes nothing. On ``main``, a passing
verdict moves the registry alias named after the profile (e.g. ``jetson-orin-nano``) to the model
version with that sha256, as a record moves an alias (remembered for rollback), unless it holds a
version registered later. A model that was never logged by the pipeline (no run with that sha256)
is a warning, not an error: the gate stands.
A tracking failure is a :class:`DeviceTrackingError` whose message, like every log line, carries no
credentials of the tracking URI or token (:mod:`edgeproof.tracking.redact`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from edgeproof.profiles import check_profile_names
from edgeproof.tracking import history
from edgeproof.tracking.aliases import move_alias, newer_than_holder
from edgeproof.tracking.mlflow_sink import connect, default_tracking_uri
from edgeproof.tracking.params import TrackParams
from edgeproof.tracking.redact import describe, redact
from edgeproof.tracking.registry import find_version, settle_summary
from edgeproof.tracking.verdicts import thresholds

log = logging.getLogger(__name__)


class DeviceTrackingError(RuntimeError):
    """MLflow did not take the device verdicts (server down, refused, ...); the message is redacted."""


FIGURES = ("fps_e2e", "latency_ms_p95", "latency_model_ms_p50", "map50", "map50_95", "engine_build_s")


def _runs_of(client: Any, experiment: str, sha: str) -> list[Any]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return list(client.search_runs([exp.experiment_id], f"tags.model_sha256 = '{sha}'", max_results=5))


IDS_KEPT = 400
"""Report ids remembered per profile on a run (16 characters each: well within a tag's length)."""


def _log(client: Any, run_id: str, profile: str, report: Mapping[str, Any], results: Path) -> None:
    """Log the report on the run, once: the tag ``device.<profile>.report_ids``, set last, lists every
    report logged there, so the same results logged again (a re-run CI job, also of an older report
    after a newer one) add no second metric point or artifact and never turn the verdict tag back."""
    tags = client.get_run(run_id).data.tags
    ids_tag, rid = f"device.{profile}.report_ids", history.report_id(report)
    seen = [i for i in (tags.get(ids_tag) or "").split(",") if i]
    if rid in seen or tags.get(f"device.{profile}.report_id") == rid:  # the single id of older versions
        log.info("device verdict %s %s is already on run %s", profile, rid, run_id)
        return
    client.set_tag(run_id, f"device.{profile}.verdict", report["verdict"])
    client.set_tag(run_id, f"device.{profile}.failed", ",".join(report["failed"]) or "none")
    for name in FIGURES:
        value = (report.get("measured") or {}).get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            client.log_metric(run_id, f"device.{profile}.{name}", float(value))
    for name in ("gate.json", "gate.md", "bench.json", "conditions.json"):
        if (results / name).exists():
            client.log_artifact(run_id, str(results / name), f"device/{profile}")
    client.set_tag(run_id, f"device.{profile}.report_id", rid)
    client.set_tag(run_id, ids_tag, ",".join([*seen, rid][-IDS_KEPT:]))


def _add_to_history(
    client: Any,
    model_name: str,
    sha: str,
    profile: str,
    report: Mapping[str, Any],
    run_ids: list[str],
    exp_id: str,
) -> None:
    """Add the device verdict to the history of the version(s) of this file (never to its promotion
    record), then cap the history and describe the version again as a pipeline record's sender does."""
    versions = client.search_model_versions(f"name = '{model_name}' and tags.model_sha256 = '{sha}'")
    entry = history.device_entry(profile, report, run_ids, thresholds(report))
    for version in versions:
        if history.has_device_entry(version.tags, profile, report):
            continue  # the same report again: already in this version's history
        # the report's own key: another board's verdict logged at the same time never takes it
        key, number = history.device_history_key(report), str(version.version)
        client.set_model_version_tag(model_name, number, key, json.dumps(entry, sort_keys=True))
        settle_summary(client, model_name, number, exp_id, own=[key])


def move_device_alias(client: Any, model_name: str, alias: str, sha: str) -> str | None:
    """Point ``alias`` of ``model_name`` at the version of the file ``sha`` as a record moves an alias
    (:func:`~edgeproof.tracking.aliases.move_alias`: remembered for rollback, with its time), unless
    its holder is a version registered later: a device report carries no time of its own, so the
    time of the file it judged, its version's registration (the server's clock), orders it, and a
    re-run of an old CI job never takes the alias back. The version, or None if it did not move."""
    version = find_version(client, model_name, sha)
    if version is None:
        log.warning("no version of %s has model_sha256 %s: alias %s not moved", model_name, sha[:12], alias)
        return None
    number, at_ms = str(version.version), int(version.creation_timestamp)
    if not newer_than_holder(client, model_name, alias, number, at_ms):
        return None
    return number if move_alias(client, model_name, alias, number, at_ms) else None


def log_device_verdicts(
    reports: Mapping[str, Mapping[str, Any]],
    results_root: Path,
    move_alias_on_pass: bool = False,
    experiment: str = "edgeproof",
    model_name: str = "edgeproof-detector",
    uri: str | None = None,
    track_aliases: Collection[str] | None = None,
) -> dict[str, Any]:
    """Log each profile's verdict on its model's run(s); on a pass, optionally move the profile's alias.

    Raises :class:`DeviceTrackingError` (credentials removed, no chained MLflow error) when MLflow fails,
    and before logging anything for a profile named like one of ``track_aliases`` (the pipeline's
    ``champion``/``candidate``: its alias is the release's, never a device's).
    """
    track = TrackParams()
    try:  # the rule params validation applies; the device job may run with other track aliases
        check_profile_names(reports, track_aliases or (track.champion_alias, track.candidate_alias))
    except ValueError as exc:
        raise DeviceTrackingError(str(exc)) from None
    uri = uri or default_tracking_uri(Path.cwd())
    try:
        client = connect(uri)  # from here on every log handler redacts credentials
        return _log_all(client, reports, results_root, move_alias_on_pass, experiment, model_name)
    except Exception as exc:  # MlflowException quotes the URI with its user:password
        raise DeviceTrackingError(f"MLflow at {redact(uri)} did not take device verdicts: {describe(exc)}") from None


def _log_all(
    client: Any,
    reports: Mapping[str, Mapping[str, Any]],
    results_root: Path,
    move_alias_on_pass: bool,
    experiment: str,
    model_name: str,
) -> dict[str, Any]:
    done: dict[str, Any] = {}
    for profile, report in reports.items():
        sha = report.get("model_sha256") or ""
        runs = _runs_of(client, experiment, sha) if sha else []
        for run in runs:
            _log(client, run.info.run_id, profile, report, results_root / profile)
        if not runs:
            log.warning("no MLflow run has model_sha256 %s: device verdict for %s not logged", sha[:12], profile)
        if sha:
            exp = client.get_experiment_by_name(experiment)  # the description's run links
            exp_id = str(exp.experiment_id) if exp is not None else "0"
            _add_to_history(client, model_name, sha, profile, report, [r.info.run_id for r in runs], exp_id)
        moves = move_alias_on_pass and history.verdict_words(report) == "passed"
        if move_alias_on_pass and report.get("verdict") == "pass" and not moves:
            log.warning("device verdict %s: %s; alias %s not moved", profile, history.verdict_words(report), profile)
        version = move_device_alias(client, model_name, profile, sha) if moves else None
        done[profile] = {"runs": [r.info.run_id for r in runs], "alias_version": version}
    return done
