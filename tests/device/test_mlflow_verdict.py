"""Device verdicts land on the MLflow run of the same model; a pass on main moves the profile's alias."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from edgeproof.tracking.device_verdict import log_device_verdicts  # noqa: E402


def _report(sha: str, verdict: str) -> dict:
    return {
        "verdict": verdict,
        "failed": [] if verdict == "pass" else ["fps"],
        "model_sha256": sha,
        "measured": {"fps_e2e": 31.5, "latency_ms_p95": 40.0, "map50": 0.95, "engine_build_s": 312.0},
    }


def test_verdict_on_the_models_run_and_alias_moved_on_pass(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("edgeproof", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp, tags={"model_sha256": "a" * 64})
    other = client.create_run(exp, tags={"model_sha256": "b" * 64})
    client.create_registered_model("edgeproof-detector")
    v1 = client.create_model_version(
        "edgeproof-detector", "file:///m", run.info.run_id, tags={"model_sha256": "b" * 64}
    )
    v2 = client.create_model_version(
        "edgeproof-detector", "file:///m", run.info.run_id, tags={"model_sha256": "a" * 64}
    )
    results = tmp_path / "reports" / "device"
    (results / "jetson-orin-nano").mkdir(parents=True)
    (results / "jetson-orin-nano" / "gate.md").write_text("# Device gate\n")
    reports = {"jetson-orin-nano": _report("a" * 64, "pass"), "jetson-nano": _report("b" * 64, "fail")}
    done = log_device_verdicts(reports, results, move_alias_on_pass=True, uri=uri)
    assert done["jetson-orin-nano"] == {"runs": [run.info.run_id], "alias_version": str(v2.version)}
    assert done["jetson-nano"]["alias_version"] is None  # a failed verdict moves nothing
    logged = client.get_run(run.info.run_id).data
    assert logged.tags["device.jetson-orin-nano.verdict"] == "pass"
    assert logged.metrics["device.jetson-orin-nano.fps_e2e"] == 31.5
    assert client.get_run(other.info.run_id).data.tags["device.jetson-nano.failed"] == "fps"
    assert str(client.get_model_version_by_alias("edgeproof-detector", "jetson-orin-nano").version) == str(v2.version)
    assert v1.version != v2.version
    arts = [a.path for a in client.list_artifacts(run.info.run_id, "device/jetson-orin-nano")]
    assert arts == ["device/jetson-orin-nano/gate.md"]
    assert json.dumps(done)  # JSON-able summary for the job log


def _store_with_a_run(tmp_path):
    """A fresh SQLite store with one run of model file ``a…a`` and the registered model, empty."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("edgeproof", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp, tags={"model_sha256": "a" * 64})
    client.create_registered_model("edgeproof-detector")
    return uri, client, run


def test_a_device_verdict_goes_into_the_version_s_history_not_its_promotion_record(tmp_path):
    """Issue 18: later verdicts on the same file (device runs too) are history; the promotion stays."""

    from edgeproof.tracking.history import history
    from edgeproof.tracking.promotion import promotion

    uri, client, run = _store_with_a_run(tmp_path)
    promoted = {"model_sha256": "a" * 64, "gate.cpu-ci": "passed", "promotion.run_id": run.info.run_id}
    version = client.create_model_version("edgeproof-detector", "file:///m", run.info.run_id, tags=promoted)
    report = {**_report("a" * 64, "fail"), "rules": [{"name": "fps", "op": ">=", "threshold": 30.0}]}
    log_device_verdicts({"jetson-nano": report}, tmp_path / "none", uri=uri)
    tags = client.get_model_version("edgeproof-detector", version.version).tags
    assert promotion(tags)["verdicts"] == {"cpu-ci": "passed"} and promotion(tags)["passed"] is True
    (entry,) = history(tags)
    assert entry["origin"].startswith("device jetson-nano") and entry["verdicts"] == {"jetson-nano": "failed: fps"}
    assert entry["thresholds"] == {"fps": ">= 30.0"} and entry["run_id"] == run.info.run_id


def test_the_same_device_results_logged_twice_change_nothing(tmp_path):
    """A re-run CI job logged the same results again: a second metric point and a second history entry."""

    from edgeproof.tracking.history import history

    uri, client, run = _store_with_a_run(tmp_path)
    version = client.create_model_version(
        "edgeproof-detector", "file:///m", run.info.run_id, tags={"model_sha256": "a" * 64}
    )
    results = tmp_path / "reports" / "device"
    (results / "jetson").mkdir(parents=True)
    (results / "jetson" / "gate.md").write_text("# Device gate\n")
    for _ in range(2):
        log_device_verdicts({"jetson": _report("a" * 64, "pass")}, results, move_alias_on_pass=True, uri=uri)
    assert [m.value for m in client.get_metric_history(run.info.run_id, "device.jetson.fps_e2e")] == [31.5]
    (entry,) = history(client.get_model_version("edgeproof-detector", version.version).tags)
    assert entry["verdicts"] == {"jetson": "passed"}

    log_device_verdicts({"jetson": _report("a" * 64, "fail")}, results, uri=uri)  # new results do count
    assert len(client.get_metric_history(run.info.run_id, "device.jetson.fps_e2e")) == 2
    assert len(history(client.get_model_version("edgeproof-detector", version.version).tags)) == 2


def _two_versions(tmp_path):
    """Versions 1 (file ``b…b``) and 2 (file ``a…a``), registered in that order; the store's uri and client."""
    import time

    uri, client, run = _store_with_a_run(tmp_path)
    for sha in ("b" * 64, "a" * 64):
        client.create_model_version("edgeproof-detector", "file:///m", run.info.run_id, tags={"model_sha256": sha})
        time.sleep(0.01)  # registered one after the other, as two releases are
    return uri, client, run


def test_a_re_run_of_an_old_device_job_never_takes_the_alias_back(tmp_path):
    """jetson -> 1, then 2, then a re-run of the first job moved it back to 1 with no alias history."""
    from edgeproof.tracking.aliases import alias_history
    from edgeproof.tracking.rollback import rollback

    uri, client, _ = _two_versions(tmp_path)
    holder = []
    for sha in ("b" * 64, "a" * 64, "b" * 64):  # the old job's very report again
        log_device_verdicts({"jetson": _report(sha, "pass")}, tmp_path / "none", move_alias_on_pass=True, uri=uri)
        holder.append(str(client.get_model_version_by_alias("edgeproof-detector", "jetson").version))
    assert holder == ["1", "2", "2"]
    assert alias_history(client, "edgeproof-detector", "jetson") == ["1"]
    assert rollback(client, "edgeproof-detector", "jetson")["to"] == "1"  # the move is undoable like a record's


def test_an_older_report_logged_again_changes_nothing(tmp_path):
    """pass -> fail -> the first report again turned the verdict back to pass and logged fps [30, 8, 30]."""
    uri, client, run = _store_with_a_run(tmp_path)
    first, second = _report("a" * 64, "pass"), {**_report("a" * 64, "fail"), "measured": {"fps_e2e": 8.0}}
    for report in (first, second, first):
        log_device_verdicts({"jetson": report}, tmp_path / "none", uri=uri)
    assert client.get_run(run.info.run_id).data.tags["device.jetson.verdict"] == "fail"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "device.jetson.fps_e2e")] == [31.5, 8.0]


def test_a_device_profile_named_like_a_track_alias_is_refused(tmp_path):
    """A device profile named ``champion`` passing moved the release's champion alias."""
    import yaml

    from edgeproof.config import Params
    from edgeproof.tracking.device_verdict import DeviceTrackingError

    uri, client, _ = _two_versions(tmp_path)
    client.set_registered_model_alias("edgeproof-detector", "champion", "1")
    with pytest.raises(DeviceTrackingError, match="champion"):
        log_device_verdicts({"champion": _report("a" * 64, "pass")}, tmp_path / "none", True, uri=uri)
    with pytest.raises(DeviceTrackingError, match="release"):
        log_device_verdicts({"release": _report("a" * 64, "pass")}, tmp_path / "none", True, uri=uri,
                            track_aliases=("release", "candidate"))  # fmt: skip
    assert str(client.get_model_version_by_alias("edgeproof-detector", "champion").version) == "1"

    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["profiles"]["candidate"] = raw["profiles"][raw["release"]["build_profile"]]
    with pytest.raises(ValueError, match=r"profiles\.candidate: named like a registry alias"):
        Params.model_validate(raw)
