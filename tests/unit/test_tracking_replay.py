"""Nothing sent half-way is lost: failed sends stay in the outbox and a replay logs them in full."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from edgeproof.config import TrackParams
from edgeproof.tracking.pipeline import ReplayError, outbox_dir, record_pipeline_run, replay
from edgeproof.tracking.record import RECORD_FILE, build_record, content_id, dvc_lock_hashes
from tests.unit.test_tracking import SHA, git_repo, make_run_files

PARAMS = TrackParams(experiment="unit")


@pytest.fixture
def sqlite_uri(tmp_path, monkeypatch):
    """A local MLflow database for the test, as ``$MLFLOW_TRACKING_URI``."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _runs(uri: str, experiment: str = "unit") -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def _fail_once(monkeypatch, method: str, exc: BaseException) -> None:
    """Make ``MlflowClient.<method>`` raise ``exc`` on its first call only."""
    from mlflow.tracking import MlflowClient

    real = getattr(MlflowClient, method)
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(method)
        if len(calls) == 1:
            raise exc
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, method, flaky)


@pytest.mark.parametrize(
    ("method", "exc"),
    [
        ("log_artifacts", OSError("disk full")),
        ("log_batch", KeyError("not an MlflowException")),
        ("create_model_version", RuntimeError("registry hiccup")),
    ],
)
def test_a_partly_failed_send_stays_pending_and_replay_logs_it_once(tmp_path, sqlite_uri, monkeypatch, method, exc):
    files, state = make_run_files(tmp_path), tmp_path / "state"
    git_repo(tmp_path)  # committed inputs: the record registers its model
    _fail_once(monkeypatch, method, exc)
    result = record_pipeline_run(files, tmp_path, state, PARAMS)
    assert result["pending"] is True and type(exc).__name__ in result["error"]
    assert [p.name for p in outbox_dir(state).iterdir()] == [result["record"].rsplit("/", 1)[-1]]
    assert [r.info.status for r in _runs(sqlite_uri)] == ["FAILED"]

    sent = replay(state, tmp_path, PARAMS)
    assert len(sent) == 1 and sent[0]["new"] is True and sent[0]["model_version"] == "1"
    assert list(outbox_dir(state).iterdir()) == []
    runs = _runs(sqlite_uri)  # the failed attempt is deleted, not left beside the complete run
    assert [r.info.status for r in runs] == ["FINISHED"]
    assert runs[0].data.metrics["eval.map50"] == 0.91 and runs[0].data.params["train.epochs"] == "3"
    assert runs[0].data.tags["registered_model_version"] == "edgeproof-detector/1"

    again = replay(state, tmp_path, PARAMS)  # nothing left to send
    assert again == [] and len(_runs(sqlite_uri)) == 1


def test_a_crash_after_registration_leaves_no_stale_model_version(tmp_path, sqlite_uri, monkeypatch):
    """A run left RUNNING (the process died before marking it) is replaced, with its model version."""
    from mlflow.tracking import MlflowClient

    files, state = make_run_files(tmp_path), tmp_path / "state"
    git_repo(tmp_path)  # committed inputs: the record registers its model
    real = MlflowClient.set_terminated

    def server_gone(self, *args, **kwargs):
        raise ConnectionError("server went away")

    monkeypatch.setattr(MlflowClient, "set_terminated", server_gone)
    assert record_pipeline_run(files, tmp_path, state, PARAMS)["pending"] is True
    assert [r.info.status for r in _runs(sqlite_uri)] == ["RUNNING"]
    monkeypatch.setattr(MlflowClient, "set_terminated", real)

    sent = replay(state, tmp_path, PARAMS)
    assert [r.info.run_id for r in _runs(sqlite_uri)] == [sent[0]["run_id"]]
    versions = MlflowClient(sqlite_uri).search_model_versions("name = 'edgeproof-detector'")
    assert [(str(v.version), v.run_id) for v in versions] == [("2", sent[0]["run_id"])]


def test_class_names_mlflow_rejects_are_logged_sanitized(tmp_path, sqlite_uri):
    files = make_run_files(tmp_path, class_name="traffic light (red)")
    result = record_pipeline_run(files, tmp_path, tmp_path / "state", PARAMS)
    assert result["pending"] is False
    run = _runs(sqlite_uri)[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["eval.class.traffic light _red_.ap"] == 0.8
    assert run.data.metrics["eval.class.traffic light _red_.ap50"] == 0.95


def test_a_record_written_before_sanitizing_is_still_sent(tmp_path, sqlite_uri):
    """Records already waiting in an outbox keep their raw keys; they are cleaned when sent."""
    files, state = make_run_files(tmp_path), tmp_path / "state"
    folder = outbox_dir(state) / "old"
    folder.mkdir(parents=True)
    record = build_record(files, tmp_path)
    record["metrics"] = {"eval.class.a(b).ap": 0.5, "eval.class.a[b].ap": 0.6, "eval.class.a_b_.ap": 0.7}
    record["params"]["weird:key//x"] = "y" * 7000
    record["record_id"] = content_id(record)  # its id, as the version that wrote it made it
    (folder / RECORD_FILE).write_text(json.dumps(record))
    sent = replay(state, tmp_path, PARAMS)
    run = _runs(sqlite_uri)[0]
    assert sent[0]["run_id"] == run.info.run_id and run.info.status == "FINISHED"
    values = sorted(run.data.metrics[k] for k in run.data.metrics if k.startswith("eval.class.a_b_"))
    assert values == [0.5, 0.6, 0.7]  # three names, three metrics: none overwrote another
    assert run.data.metrics["eval.class.a_b_.ap"] == 0.7  # a name that was already valid is kept
    assert [len(v) for k, v in run.data.params.items() if k.startswith("weird")] == [6000]


def test_truncated_param_values_are_named_in_a_warning(tmp_path, sqlite_uri, caplog):
    files = make_run_files(tmp_path)
    files.params.write_text(yaml.safe_dump({"data": {"classes": "x" * 6500}}))
    with caplog.at_level(logging.WARNING, logger="edgeproof.tracking"):
        assert record_pipeline_run(files, tmp_path, tmp_path / "state", PARAMS)["pending"] is False
    assert any("data.classes" in r.getMessage() and "6500" in r.getMessage() for r in caplog.records)
    assert len(_runs(sqlite_uri)[0].data.params["data.classes"]) == 6000


def test_replay_sends_a_record_where_it_was_meant_to_go(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    files, state = make_run_files(tmp_path), tmp_path / "state"
    git_repo(tmp_path)  # committed inputs: the record registers its model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    made = TrackParams(experiment="at-snapshot", model_name="snap-model")
    assert record_pipeline_run(files, tmp_path, state, made)["pending"] is True
    stored = json.loads(next(outbox_dir(state).iterdir()).joinpath(RECORD_FILE).read_text())
    assert (stored["experiment"], stored["model_name"]) == ("at-snapshot", "snap-model")

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    sent = replay(state, tmp_path, TrackParams(experiment="changed-since", model_name="other-model"))
    assert sent[0]["experiment"] == "at-snapshot"
    assert len(_runs(uri, "at-snapshot")) == 1 and _runs(uri, "changed-since") == []
    assert [m.name for m in MlflowClient(uri).search_registered_models()] == ["snap-model"]


def test_old_records_without_a_destination_use_the_current_params(tmp_path, sqlite_uri):
    files, state = make_run_files(tmp_path), tmp_path / "state"
    folder = outbox_dir(state) / "legacy"
    folder.mkdir(parents=True)
    (folder / RECORD_FILE).write_text(json.dumps(build_record(files, tmp_path)))  # no experiment / model_name
    sent = replay(state, tmp_path, TrackParams(experiment="current", register_model=False))
    assert sent[0]["experiment"] == "current" and sent[0]["model_version"] is None


def test_a_broken_old_record_does_not_block_the_new_one(tmp_path, sqlite_uri):
    files, state = make_run_files(tmp_path), tmp_path / "state"
    broken = outbox_dir(state) / "broken"
    broken.mkdir(parents=True)
    (broken / RECORD_FILE).write_text("{not json")
    result = record_pipeline_run(files, tmp_path, state, PARAMS)
    assert result["pending"] is False and [r.info.status for r in _runs(sqlite_uri)] == ["FINISHED"]
    assert [p.name for p in outbox_dir(state).iterdir()] == ["broken"]
    with pytest.raises(ReplayError, match=r"broken: ValueError: .*broken/record\.json: not valid JSON"):
        replay(state, tmp_path, PARAMS)
    assert (broken / RECORD_FILE).exists()


def test_the_recording_stage_own_dvc_lock_entry_is_left_out(tmp_path):
    lock = tmp_path / "dvc.lock"
    stages = {
        "train": {"outs": [{"path": "models/best.pt", "md5": "a" * 32}]},
        "gate": {"outs": [{"path": "reports/gate.json", "md5": "b" * 32}]},
    }
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))
    assert dvc_lock_hashes(lock, exclude=("gate",)) == {"dvc.train.models/best.pt": "a" * 32}
    files = make_run_files(tmp_path)
    files.dvc_lock = lock
    tags = build_record(files, tmp_path)["tags"]
    assert "dvc.train.models/best.pt" in tags and not any(k.startswith("dvc.gate.") for k in tags)
    assert tags["model_sha256"] == SHA


def test_an_edited_record_is_not_sent_and_the_error_names_its_file(tmp_path, monkeypatch):
    """A failed verdict edited into a pass in the outbox was logged (and promoted) as the original run."""
    files, state = make_run_files(tmp_path), tmp_path / "state"
    files.metrics["gate"].write_text(json.dumps({"passed": False, "model_sha256": SHA, "failed": ["fps"]}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens: the record waits
    folder = Path(record_pipeline_run(files, tmp_path, state, PARAMS)["record"])
    record = json.loads((folder / RECORD_FILE).read_text())
    record.update(passed=True, alias="champion")
    (folder / RECORD_FILE).write_text(json.dumps(record))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ReplayError, match="no longer matches its record id") as caught:
        replay(state, tmp_path, PARAMS)
    assert str(folder / RECORD_FILE) in str(caught.value)
    assert (folder / RECORD_FILE).exists() and _runs(uri) == []


def test_replaying_a_crashed_record_keeps_the_version_other_runs_judged_since(tmp_path, sqlite_uri, monkeypatch):
    """The attempt registered version 1 and died before it could withdraw it; a what-if run then
    added its verdict to version 1. Replaying the attempt deleted version 1 with that verdict."""
    from mlflow.tracking import MlflowClient

    import edgeproof.tracking.mlflow_sink as sink
    from edgeproof.tracking.history import history

    files, state = make_run_files(tmp_path), tmp_path / "state"
    git_repo(tmp_path)  # committed inputs: the record registers its model
    real_end, real_withdraw = MlflowClient.set_terminated, sink.withdraw_run

    def server_gone(*args, **kwargs):
        raise ConnectionError("server went away")

    monkeypatch.setattr(MlflowClient, "set_terminated", server_gone)
    monkeypatch.setattr(sink, "withdraw_run", server_gone)
    assert record_pipeline_run(files, tmp_path, state, PARAMS)["pending"] is True
    monkeypatch.setattr(MlflowClient, "set_terminated", real_end)
    monkeypatch.setattr(sink, "withdraw_run", real_withdraw)
    monkeypatch.setenv("DVC_EXP_NAME", "what-if")  # another run judges the same file meanwhile
    files.params.write_text(yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": 20.0}}}}))
    other = tmp_path / "other"
    what_if = record_pipeline_run(files, tmp_path, other, PARAMS)["sent"][-1]
    assert what_if["model_version"] == "1"

    (replayed,) = replay(state, tmp_path, PARAMS)
    assert replayed["model_version"] == "1"
    version = MlflowClient(sqlite_uri).get_model_version("edgeproof-detector", "1")
    assert [e["run_id"] for e in history(version.tags)] == [what_if["run_id"], replayed["run_id"]]
    assert version.tags["promotion.run_id"] == replayed["run_id"]
    assert {r.info.run_id for r in _runs(sqlite_uri)} == {what_if["run_id"], replayed["run_id"]}
