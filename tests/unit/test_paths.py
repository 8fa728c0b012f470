"""State and the local MLflow database outlive the temporary copies of `dvc exp run --temp/--queue`."""

from __future__ import annotations

from edgeproof.paths import repo_root, state_dir
from edgeproof.tracking.mlflow_sink import default_tracking_uri


def test_repo_root_of_a_dvc_experiment_copy_is_the_main_repo(tmp_path):
    repo = tmp_path / "proj"
    for run in (".dvc/tmp/exps/tmpab12cd", ".dvc/tmp/exps/standalone/tmpx9/sub"):
        (repo / run).mkdir(parents=True)
        assert repo_root(repo / run) == repo.resolve()


def test_repo_root_elsewhere_is_the_directory_itself(tmp_path):
    (tmp_path / "proj" / ".dvc" / "tmp" / "exps").mkdir(parents=True)
    assert repo_root(tmp_path / "proj") == (tmp_path / "proj").resolve()
    assert repo_root(tmp_path / "proj" / ".dvc" / "tmp" / "exps") == (tmp_path / "proj/.dvc/tmp/exps").resolve()


def test_defaults_follow_the_main_repo_and_overrides_still_win(tmp_path, monkeypatch):
    repo = tmp_path / "proj"
    copy = repo / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("EDGEPROOF_STATE_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert repo_root() == repo.resolve()
    assert state_dir() == repo.resolve() / ".edgeproof"
    assert default_tracking_uri(copy) == f"sqlite:///{repo.resolve() / 'mlflow.db'}"

    monkeypatch.setenv("EDGEPROOF_STATE_DIR", str(tmp_path / "elsewhere"))
    assert state_dir() == (tmp_path / "elsewhere").resolve()
    monkeypatch.setenv("EDGEPROOF_STATE_DIR", "rel/state")
    assert state_dir() == repo.resolve() / "rel" / "state"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert default_tracking_uri(copy) == "http://mlflow.example:5000"


def test_state_dir_outside_experiments_is_in_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEPROOF_STATE_DIR", raising=False)
    assert state_dir() == tmp_path.resolve() / ".edgeproof"
