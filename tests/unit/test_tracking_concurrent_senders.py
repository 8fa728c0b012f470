"""Two senders at once against one store (review records11): the first two records creating the experiment
together (8), and two records of different files both earning ``champion`` (4)."""

from __future__ import annotations

import time

import numpy as np
from mlflow.tracking import MlflowClient

from edgeproof.cli import main as cli
from edgeproof.config import TrackParams
from edgeproof.io import sha256_file
from edgeproof.tracking import registry
from edgeproof.tracking.mlflow_sink import KIND, KIND_TAG
from edgeproof.tracking.pipeline import record_pipeline_run
from tests.conftest import make_fixed_detector
from tests.unit.test_tracking import make_run_files
from tests.unit.test_tracking_alias_mover import _commit, _gate
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)

MODEL = "edgeproof-detector"


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


def _newer_record_sent(files, repo, state, value: float = 2.0) -> dict:
    """Record B: another model file, committed, recorded from its own outbox (a second CI job at the same time)."""
    make_fixed_detector(files.model, np.full((7, 4), value, np.float32), 32, {0: "circle"})
    _gate(files, sha256_file(files.model), 10.0)
    _commit(repo)
    result = record_pipeline_run(files, repo, state, TrackParams(experiment="unit"))
    assert result["pending"] is False, result
    return result["sent"][-1]


def _older_record_pending(files, repo) -> None:
    """Record A's files: v1's file replaced by another one, committed: A will register v2 and earn champion."""
    make_fixed_detector(files.model, np.ones((7, 4), np.float32), 32, {0: "circle"})
    _gate(files, sha256_file(files.model), 10.0)
    _commit(repo)


def test_an_older_record_moving_after_a_newer_one_leaves_it_the_alias(tmp_path, tmp_path_factory, client, monkeypatch):  # noqa: F811
    """Both senders passed `newer_than_holder`; the older record's sender moved the alias last and held
    champion (review records11 #4, the repro's barrier: B moves between A's check and A's move)."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path)  # v1, champion
    _older_record_pending(files, tmp_path)
    real, sent = registry.move_alias, []

    def b_moves_first(*args, **kwargs):
        if not sent:  # A has passed its check: B is sent whole before A moves
            sent.append(None)  # B's own move goes straight through
            sent[0] = _newer_record_sent(files, tmp_path, tmp_path_factory.mktemp("b"))
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "move_alias", b_moves_first)
    a = record(files, tmp_path)
    assert (a["model_version"], sent[0]["model_version"]) == ("2", "3")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "3"  # B, the newer record
    assert "a newer record moved it" in client.get_run(a["run_id"]).data.tags["alias_not_moved"]


def test_a_newer_record_moving_during_an_older_one_s_move_gets_it_back(tmp_path, tmp_path_factory, client, monkeypatch):  # noqa: F811
    """Both senders read the same holder inside the move; the older record's alias write landed last."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path)  # v1, champion
    _older_record_pending(files, tmp_path)
    real, sent = MlflowClient.set_registered_model_alias, []

    def b_moves_in_between(self, name, alias, version):
        if str(version) == "2" and not sent:  # A is about to set the alias: B's whole send happens first
            sent.append(None)
            sent[0] = _newer_record_sent(files, tmp_path, tmp_path_factory.mktemp("b"))
        return real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", b_moves_in_between)
    a = record(files, tmp_path)
    assert (a["model_version"], sent[0]["model_version"]) == ("2", "3")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "3"
    assert "a newer record moved it" in client.get_run(a["run_id"]).data.tags["alias_not_moved"]
    assert cli(["--params", str(files.params), "model", "rollback"]) == 0  # B's move is undone to v1, not A's v2
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"

    # a holder time left on a version from before (v3's, as a sender running 2 min ahead wrote it) is no
    # move during this one: a new record moves champion and keeps it
    client.set_model_version_tag(MODEL, "3", "alias.champion.since_ms", str(int(time.time() * 1000) + 120_000))
    c = _newer_record_sent(files, tmp_path, tmp_path_factory.mktemp("c"), value=3.0)
    assert c["model_version"] == "4" and str(client.get_model_version_by_alias(MODEL, "champion").version) == "4"
