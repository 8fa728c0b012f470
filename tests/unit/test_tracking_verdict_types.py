"""A device verdict's ``verdict`` decides; a ``passed`` that is no boolean or disagrees with it is refused.

``{"verdict": "fail", "passed": "false"}`` (a truthy string) or ``"passed": true`` beside ``fail`` was
recorded as ``passed`` and moved ``champion`` to the file the device had failed (review "records" 1).
"""

from __future__ import annotations

import json

import pytest

from edgeproof.tracking.history import device_entry, verdict_words
from edgeproof.tracking.verdicts import verdict_problem
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401

MODEL = "edgeproof-detector"


@pytest.mark.parametrize(
    ("report", "words"),
    [
        ({"verdict": "pass", "passed": True}, "passed"),
        ({"verdict": "pass"}, "passed"),  # no passed beside it: the verdict decides
        ({"verdict": "fail", "passed": False, "failed": ["fps"]}, "failed: fps"),
        ({"verdict": "inconclusive", "passed": False, "failed": ["fps"]}, "inconclusive: fps"),
        ({"passed": True}, "passed"),  # a record made before verdict was kept
        ({"passed": False, "failed": ["fps"]}, "failed: fps"),
        ({"verdict": "fail", "passed": "false", "failed": ["fps"]}, "invalid: passed 'false' disagrees"),
        ({"verdict": "fail", "passed": True, "failed": ["fps"]}, "invalid: passed True disagrees with verdict 'fail'"),
        ({"verdict": "pass", "passed": "true"}, "invalid: passed 'true' disagrees"),
        ({"verdict": "pass", "passed": None}, "invalid: passed None disagrees"),
        ({"passed": "false"}, "invalid: passed 'false' is not true or false"),
        ({"verdict": "PASS", "passed": True}, "invalid: verdict 'PASS' is none of"),
    ],
)
def test_the_verdict_decides_and_passed_must_agree(report, words):
    assert verdict_words(report).startswith(words)
    assert (verdict_problem(report) is None) == (not words.startswith("invalid"))
    assert device_entry("jetson", {**report, "model_sha256": SHA}, [], {})["verdicts"]["jetson"].startswith(words)


@pytest.mark.parametrize("passed", ["false", True, None])
def test_a_failed_device_verdict_with_a_truthy_passed_moves_no_alias(tmp_path, client, caplog, passed):  # noqa: F811
    files = make_run_files(tmp_path)
    files.device_reports = tmp_path / "device"
    (files.device_reports / "jetson").mkdir(parents=True)
    report = {"verdict": "fail", "passed": passed, "failed": ["fps"], "model_sha256": SHA, "rules": []}
    gate = files.device_reports / "jetson" / "gate.json"
    gate.write_text(json.dumps(report))
    git_repo(tmp_path)
    assert record(files, tmp_path)["model_version"] == "1"  # the build gate passed: registered all the same
    assert client.get_registered_model(MODEL).aliases == {}  # neither champion nor candidate
    words = client.get_model_version(MODEL, "1").tags["gate.jetson"]
    assert words.startswith(f"invalid: {gate.as_posix()}: passed {passed!r} disagrees with verdict 'fail'"), words
    assert f"device verdict {gate} refused: passed" in caplog.text


def test_a_device_pass_whose_passed_disagrees_moves_no_device_alias(tmp_path):
    from mlflow.tracking import MlflowClient

    from edgeproof.tracking.device_verdict import log_device_verdicts

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_client = MlflowClient(uri)
    exp = mlflow_client.create_experiment("edgeproof", artifact_location=(tmp_path / "art").as_uri())
    run = mlflow_client.create_run(exp, tags={"model_sha256": SHA})
    mlflow_client.create_registered_model(MODEL)
    mlflow_client.create_model_version(MODEL, "file:///m", run.info.run_id, tags={"model_sha256": SHA})
    report = {"verdict": "pass", "passed": "false", "failed": [], "model_sha256": SHA}
    done = log_device_verdicts({"jetson-nano": report}, tmp_path / "none", move_alias_on_pass=True, uri=uri)
    assert done["jetson-nano"]["alias_version"] is None
    assert mlflow_client.get_registered_model(MODEL).aliases == {}
    tags = mlflow_client.get_model_version(MODEL, "1").tags
    (entry,) = [json.loads(v) for k, v in tags.items() if k.startswith("history.device-")]
    assert entry["verdicts"]["jetson-nano"].startswith("invalid: passed 'false' disagrees with verdict 'pass'")
