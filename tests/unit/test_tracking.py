"""MLflow is a replayable projection of the files: nothing is lost when tracking is down."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeproof.config import TrackParams
from edgeproof.io import sha256_file
from edgeproof.tracking.pipeline import outbox_dir, record_pipeline_run, replay
from edgeproof.tracking.record import RecordSources, build_record, flatten
from tests.conftest import make_fixed_detector


def tiny_onnx(path: Path) -> Path:
    """A real (fixed-output) ONNX detector: the tracking logs it as an MLflow ``onnx`` model."""
    return make_fixed_detector(path, np.zeros((7, 4), np.float32), 32, {0: "circle", 1: "square", 2: "triangle"})


SHA = sha256_file(tiny_onnx(Path(tempfile.mkdtemp(prefix="edgeproof-sha-")) / "model.onnx"))


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def git_repo(path: Path, branch: str = "main") -> str:
    """Commit everything in ``path`` on ``branch`` (but MLflow's and edgeproof's state); return the commit.
    Only a run whose inputs are committed registers a model version or moves an alias."""
    (path / ".gitignore").write_text("mlflow.db\nmlartifacts/\n.state/\nstate/\ndl/\nm/\n")
    subprocess.run([*GIT, "init", "-q", "-b", branch], cwd=path, check=True)
    return commit_all(path)


def commit_all(path: Path) -> str:
    """Commit every change in the git repo ``path`` (the next run's inputs are committed); return the commit."""
    subprocess.run([*GIT, "add", "-A"], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-qm", "x"], cwd=path, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def make_run_files(tmp_path: Path, class_name: str = "circle") -> RecordSources:
    """A minimal set of pipeline files in ``tmp_path``, as the gate stage sees them."""
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"train": {"epochs": 3}, "profiles": {"cpu-ci": {"gate": {"min_fps": 10.0}}}})
    )
    files = {
        "eval": {
            "map50": 0.91,
            "map50_95": 0.7,
            "model_sha256": SHA,
            "per_class": [{"name": class_name, "category_id": 1, "ap": 0.8, "ap50": 0.95}],
        },
        "bench": {
            "fps_e2e": 50.0,
            "latency_ms": {"p95": 20.0},
            "model_sha256": SHA,
            "device": {"cpu_model": "Test CPU", "providers_used": ["CPUExecutionProvider"]},
        },
        "gate": {"passed": True, "model_sha256": SHA, "rules": [], "failed": []},
    }
    metrics = {}
    for name, data in files.items():
        metrics[name] = tmp_path / f"{name}.json"
        metrics[name].write_text(json.dumps(data))
    curve = tmp_path / "curve.csv"
    curve.write_text("epoch,map50,train_box_loss\n1,0.1,3.0\n2,0.5,2.0\n")
    model = tiny_onnx(tmp_path / "fp32.onnx")
    assert sha256_file(model) == SHA  # the fixture is deterministic: every copy is the same file
    report = tmp_path / "gate.md"
    report.write_text("# Release gate\n\n| rule | result |\n|---|---|\n| fps | pass |\n")
    return RecordSources(
        params=tmp_path / "params.yaml", metrics=metrics, reports=[report], curves=curve, model=model, summary=report
    )


@pytest.fixture
def run_files(tmp_path):
    """A minimal set of pipeline files, as the gate stage sees them."""
    return make_run_files(tmp_path)


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "[1, 2]", "d": None}


def test_record_content_and_stable_id(run_files, tmp_path):
    record = build_record(run_files, tmp_path)
    assert record["params"]["train.epochs"] == 3
    assert record["metrics"]["eval.map50"] == 0.91
    assert record["metrics"]["bench.latency_ms.p95"] == 20.0
    assert record["metrics"]["gate.passed"] == 1.0
    assert record["metrics"]["eval.class.circle.ap50"] == 0.95
    assert [row["epoch"] for row in record["curves"]] == [1.0, 2.0]
    assert record["tags"]["model_sha256"] == SHA and record["tags"]["gate_passed"] == "true"
    assert build_record(run_files, tmp_path)["record_id"] == record["record_id"]
    run_files.metrics["eval"].write_text(json.dumps({"map50": 0.5, "model_sha256": SHA}))
    assert build_record(run_files, tmp_path)["record_id"] != record["record_id"]


def test_tracking_down_keeps_the_record_then_replay_sends_it_once(run_files, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    state, repo = tmp_path / "state", tmp_path
    git_repo(repo)  # committed inputs: the replayed record registers its model
    params = TrackParams(experiment="unit")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    result = record_pipeline_run(run_files, repo, state, params)
    assert result["pending"] is True
    waiting = list(outbox_dir(state).iterdir())
    assert len(waiting) == 1 and (waiting[0] / "artifacts" / "model" / "fp32.onnx").exists()

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    sent = replay(state, repo, params)
    assert len(sent) == 1 and sent[0]["new"] and sent[0]["model_version"] == "1"
    assert list(outbox_dir(state).iterdir()) == []

    client = MlflowClient(uri)
    run = client.get_run(sent[0]["run_id"])
    assert run.data.metrics["eval.map50"] == 0.91
    assert run.data.params["train.epochs"] == "3"
    assert run.data.tags["model_sha256"] == SHA
    history = client.get_metric_history(run.info.run_id, "train_curve.map50")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.1), (2, 0.5)]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"reports"}  # the model is an MLflow model (below), not loose files
    version = client.get_model_version("edgeproof-detector", "1")
    assert version.tags["model_sha256"] == SHA

    # the same files recorded again (e.g. a replay after a crash) do not create a second run
    again = record_pipeline_run(run_files, repo, state, params)
    assert again["sent"][0]["new"] is False
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_failed_gate_is_recorded_but_not_registered(run_files, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    run_files.metrics["gate"].write_text(json.dumps({"passed": False, "model_sha256": SHA}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = record_pipeline_run(run_files, tmp_path, tmp_path / "state", TrackParams(experiment="unit"))
    assert result["sent"][0]["model_version"] is None
    run = MlflowClient(uri).get_run(result["sent"][0]["run_id"])
    assert run.data.tags["gate_passed"] == "false"
    assert MlflowClient(uri).search_registered_models() == []


def test_git_dirty_ignores_pipeline_outputs(tmp_path):
    import subprocess

    from edgeproof.tracking.context import git_info

    assert git_info(tmp_path) == {"git_commit": "unknown", "git_dirty": "unknown"}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text("{}")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    (tmp_path / "metrics" / "eval.json").write_text('{"map50": 1}')
    info = git_info(tmp_path)
    assert len(info["git_commit"]) == 40 and info["git_dirty"] == "false"
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert git_info(tmp_path)["git_dirty"] == "true"
