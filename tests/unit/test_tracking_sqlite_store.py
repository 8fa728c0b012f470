"""An interrupted creation or upgrade of the embedded MLflow store (mlflow.db) strands nothing.

MLflow migrates an SQLite schema with non-transactional DDL, so a Ctrl-C in the middle leaves a
half-built schema that every later open fails on. The interruption is placed exactly: a subprocess
raises KeyboardInterrupt (a Ctrl-C) right after MLflow's ``CREATE TABLE`` of one table.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import edgeproof
from edgeproof.config import TrackParams
from edgeproof.tracking.mlflow_sink import connect
from edgeproof.tracking.pipeline import outbox_dir, record_pipeline_run
from tests.unit.test_tracking import git_repo, make_run_files

# the first of the tables one MLflow migration creates together (MLflow 3.x): interrupted right after it,
# the migration has made a table its alembic_version row does not record
TABLE, BEFORE = "mcp_servers", "b7e4c1a90f23"  # BEFORE: the schema revision just before that migration

_CTRL_C_AT = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

uri, table, opener = sys.argv[1:4]

@event.listens_for(Engine, "after_cursor_execute")
def _ctrl_c(conn, cursor, statement, *args):
    if statement.lstrip().upper().startswith("CREATE TABLE " + table.upper()):
        os.kill(os.getpid(), signal.SIGINT)

if opener == "edgeproof":
    from edgeproof.tracking.mlflow_sink import connect
    connect(uri)
else:  # MLflow's own opening of the store (what edgeproof did before, or `mlflow ui`)
    from mlflow.tracking import MlflowClient
    MlflowClient(tracking_uri=uri)
"""


def _ctrl_c_while_opening(db: Path, opener: str) -> None:
    """Open the store at ``db`` in a subprocess that gets a Ctrl-C right after it creates :data:`TABLE`."""
    env = {**os.environ, "PYTHONPATH": str(Path(edgeproof.__file__).parents[1])}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", _CTRL_C_AT, f"sqlite:///{db}", TABLE, opener], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr, done.stderr[-2000:]


def _schema(db: Path) -> tuple[set[str], str]:
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return tables, con.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


@pytest.fixture(scope="module")
def older_store(tmp_path_factory) -> Path:
    """A store holding one experiment, one run and one registered model, at the schema revision
    just before :data:`TABLE`'s migration (what an older MLflow left): made once, copied per test."""
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("older") / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    client.create_run(client.create_experiment("kept"))
    client.create_registered_model("kept-model")
    command.downgrade(_get_alembic_config(uri), BEFORE)
    assert TABLE not in _schema(db)[0] and _schema(db)[1] == BEFORE
    return db


def test_a_creation_interrupted_by_ctrl_c_leaves_no_store_and_the_next_open_builds_it(tmp_path):
    db = tmp_path / "mlflow.db"
    _ctrl_c_while_opening(db, "edgeproof")
    assert not db.exists()  # built in a temp file: before, a half-built mlflow.db stayed here

    client = connect(f"sqlite:///{db}")
    assert client.search_experiments()[0].name == "Default"
    assert _schema(db)[1] == _head()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # the killed builder's temp file is gone


def test_a_half_built_empty_store_is_moved_aside_and_the_record_sent(tmp_path, monkeypatch, caplog):
    db = tmp_path / "mlflow.db"
    _ctrl_c_while_opening(db, "mlflow")
    tables, version = _schema(db)
    assert TABLE in tables and version == BEFORE  # half-built: a table its revision does not record
    before = _digest(db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    files, state = make_run_files(tmp_path), tmp_path / "state"
    git_repo(tmp_path)

    with caplog.at_level(logging.WARNING):
        result = record_pipeline_run(files, tmp_path, state, TrackParams(experiment="unit"))

    assert result["pending"] is False, result.get("error")
    assert list(outbox_dir(state).iterdir()) == []
    (aside,) = tmp_path.glob("mlflow.db.broken-*")
    assert _digest(aside) == before  # kept as it was, never deleted
    warning = next(r.getMessage() for r in caplog.records if "half-built" in r.getMessage())
    assert str(db) in warning and aside.name in warning and "holds no runs" in warning
    client = connect(f"sqlite:///{db}")
    (exp,) = [e for e in client.search_experiments() if e.name == "unit"]
    assert [r.info.status for r in client.search_runs([exp.experiment_id])] == ["FINISHED"]


def test_a_half_upgraded_store_holding_records_is_refused_and_left_untouched(tmp_path, older_store):
    db = tmp_path / "mlflow.db"
    shutil.copy(older_store, db)
    _ctrl_c_while_opening(db, "mlflow")  # MLflow's upgrade, interrupted
    assert TABLE in _schema(db)[0] and _schema(db)[1] == BEFORE
    before = _digest(db)

    with pytest.raises(RuntimeError) as refused:  # a RuntimeError: the stages' exit 2, one line
        connect(f"sqlite:///{db}")

    message = str(refused.value)
    assert str(db) in message and "half-built" in message and "1 runs" in message
    assert "Rebuilding a lost store" in message
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_an_older_store_is_upgraded_with_its_records(tmp_path, older_store):
    """The check for a half-built schema lets a store that only needs MLflow's upgrade through."""
    db = tmp_path / "mlflow.db"
    shutil.copy(older_store, db)

    client = connect(f"sqlite:///{db}")

    assert _schema(db)[1] == _head()
    (exp,) = [e for e in client.search_experiments() if e.name == "kept"]
    assert len(client.search_runs([exp.experiment_id])) == 1
    assert [m.name for m in client.search_registered_models()] == ["kept-model"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]
