"""The registry on a real PostgreSQL backend, which enforces the column sizes SQLite ignores."""

from __future__ import annotations

import json

import pytest

from edgeproof.config import TrackParams
from edgeproof.tracking.description import DESCRIPTION_LIMIT
from edgeproof.tracking.history import history
from edgeproof.tracking.pipeline import record_pipeline_run
from tests.services.servers import postgres
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import commit_all, git_repo

pytestmark = pytest.mark.services

VERDICTS = 30


def test_many_verdicts_on_one_file_are_all_recorded(tmp_path, monkeypatch):
    """Issue: after ~20 verdicts on one file PostgreSQL refused the version's description
    (VARCHAR(5000)) and every later record of that file stayed pending."""
    from mlflow.tracking import MlflowClient

    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DVC_EXP_NAME", "what-if")
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    with postgres("pw-registry") as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        for i in range(VERDICTS):
            rules = [{"name": "fps", "op": ">=", "threshold": 10.0 + i, "passed": True},
                     {"name": "latency_p95", "op": "<=", "threshold": 100.0, "passed": True}]  # fmt: skip
            files.metrics["gate"].write_text(json.dumps({"passed": True, "model_sha256": SHA, "rules": rules}))
            if i == 0:  # the first verdict registers the file: only a run whose inputs are committed does
                commit_all(tmp_path)
            result = record_pipeline_run(files, tmp_path, tmp_path / ".state", TrackParams(experiment="unit"))
            assert result["pending"] is False, (i, result.get("error"))
        version = MlflowClient(uri).get_model_version("edgeproof-detector", "1")
    assert len(history(version.tags)) == VERDICTS
    assert len(version.description) <= DESCRIPTION_LIMIT and "older verdicts in the tags" in version.description
