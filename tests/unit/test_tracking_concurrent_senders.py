"""Two senders at once against one store (review records11): the first two records creating the experiment
together (8), and two records of different files both earning ``champion`` (4)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from edgeproof.tracking.mlflow_sink import KIND, KIND_TAG
from tests.unit.test_tracking import make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)


def test_the_experiment_created_by_another_sender_meanwhile_is_used(tmp_path, client, monkeypatch):  # noqa: F811
    """Both senders found no ``unit`` experiment and both created it: the loser's record failed with
    RESOURCE_ALREADY_EXISTS and stayed pending until the next send."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    real, other = MlflowClient.get_experiment_by_name, MlflowClient(client.tracking_uri)
    looked: list[str] = []

    def look_then_lose_the_race(self, name):
        found = real(self, name)
        if not looked and found is None:  # the other sender creates it right after this one looked
            other.create_experiment(name)
        looked.append(name)
        return found

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", look_then_lose_the_race)
    sent = record(files, tmp_path)  # pending would fail here
    exp = client.get_experiment_by_name("unit")
    assert sent["experiment_id"] == exp.experiment_id and exp.tags[KIND_TAG] == KIND  # made ours, kind and view
    assert [e.name for e in client.search_experiments()].count("unit") == 1
    assert client.get_run(sent["run_id"]).info.experiment_id == exp.experiment_id
