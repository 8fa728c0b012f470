"""The registry stays true to the runs that exist: a bounded description, and no verdict left behind
by an attempt that failed."""

from __future__ import annotations

import json
import logging
import os
import time

import yaml

from edgeproof.tracking.description import DESCRIPTION_LIMIT, describe_version
from edgeproof.tracking.history import history, new_tags
from edgeproof.tracking.outbox import waiting
from edgeproof.tracking.pipeline import record_pipeline_run, replay
from edgeproof.tracking.record import RECORD_FILE
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import _new_model_file, client, commit_all, git_repo, no_ci_env, record  # noqa: F401
from tests.unit.test_tracking_replay import PARAMS

MODEL = "edgeproof-detector"


def _verdict(i: int) -> dict:
    rules = {"fps": f">= {10 + i}", "map50": ">= 0.8", "latency_p95": "<= 100.0", "cross_check": "agrees"}
    return {
        "tags": {"model_sha256": SHA, "branch": "main", "git_commit": f"{i:040d}", "dvc_experiment": f"what-if-{i}"}
        | {"git_dirty": "false", "provenance": "clean"},
        "metrics": {"fps": 50.0},
        "passed": True,
        "verdicts": {"build": {"passed": True}},
        "thresholds": rules,
        "times": {"end_ms": 1_700_000_000_000 + 60_000 * i},  # later runs: the history is ordered by time
    }


def _run(i: int) -> str:
    return f"r{i:03d}".ljust(32, "x")


def test_the_version_description_fits_mlflows_column_and_names_what_it_leaves_out():
    """PostgreSQL refused the description after ~20 verdicts on one file (VARCHAR(5000)); every later
    record of that file stayed pending."""
    tags = {"model_sha256": SHA}
    for i in range(40):
        tags.update(new_tags(tags, _verdict(i), _run(i), "champion" if i == 0 else ""))
    text = describe_version(tags, "7")
    assert len(text) <= DESCRIPTION_LIMIT
    assert "Promotion record" in text and f"[{_run(39)[:8]}]" in text  # the promotion and the newest verdict
    verdicts = text.split("**Verdicts on this file**")[1]
    shown = sum(f"[{_run(i)[:8]}]" in verdicts for i in range(40))
    assert 0 < shown < 40 and f"… {40 - shown} older verdicts in the tags `history.*`" in text
    assert len(history(tags)) == 40  # nothing is lost: the tags keep every entry


def test_a_failed_attempt_leaves_no_verdict_on_the_version(tmp_path, client, monkeypatch):  # noqa: F811
    """A replay that failed after adding its history entry used to leave it there, naming a run
    that the next replay deleted."""
    from mlflow.tracking import MlflowClient

    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    released = record(files, tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "what-if")
    files.params.write_text(yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": 20.0}}}}))
    real, calls = MlflowClient.update_model_version, []

    def refused(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("value too long for type character varying(5000)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "update_model_version", refused)
    state = tmp_path / ".state"
    assert record_pipeline_run(files, tmp_path, state, PARAMS)["pending"] is True
    version = client.get_model_version(MODEL, "1")
    assert [e["run_id"] for e in history(version.tags)] == [released["run_id"]]
    assert version.tags["runs"] == released["run_id"]

    (sent,) = replay(state, tmp_path, PARAMS)
    version = client.get_model_version(MODEL, "1")
    assert [e["run_id"] for e in history(version.tags)] == [released["run_id"], sent["run_id"]]
    assert version.tags["runs"] == f"{released['run_id']},{sent['run_id']}"
    alive = {r.info.run_id for r in client.search_runs([client.get_experiment_by_name("unit").experiment_id])}
    assert alive == {released["run_id"], sent["run_id"]}
    assert json.loads(version.tags["promotion.thresholds"]) == {}  # the promotion record is the release's


def _backdate(folder, seconds: float) -> None:
    for path in folder.rglob("*"):
        when = path.stat().st_mtime - seconds
        os.utime(path, (when, when))


def test_an_old_record_replayed_late_never_takes_the_champion_back(tmp_path, client, monkeypatch, caplog):  # noqa: F811
    """A runner's record that waited in its outbox (server down) moved `champion` back to its older
    model when replayed after a newer release."""
    old, new = tmp_path / "a", tmp_path / "b"
    old.mkdir(), new.mkdir()
    files_old, files_new = make_run_files(old), make_run_files(new)
    _new_model_file(files_old, 1.0), _new_model_file(files_new, 2.0)
    git_repo(old), git_repo(new)
    _backdate(old, 3600)  # the older run ended an hour before the newer one
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens: the record waits
    assert record_pipeline_run(files_old, old, old / ".state", PARAMS)["pending"] is True
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    released = record(files_new, new)
    assert released["model_version"] == "1"

    with caplog.at_level(logging.WARNING):
        (late,) = replay(old / ".state", old, PARAMS)
    assert late["model_version"] == "2"  # recorded, with its verdict, but not promoted
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert f"{MODEL}@champion stays on version 1: it was moved there by a newer record" in caplog.text
    assert not [k for k in client.get_model_version(MODEL, "2").tags if k.startswith(("promoted.", "alias."))]


def test_the_outbox_sends_records_in_the_order_their_runs_ended(tmp_path):
    """A copied or restored outbox has folder times that say nothing of which run came first."""
    for name, end_ms, age in (("newer", 2_000, 0), ("older", 1_000, 3600)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / RECORD_FILE).write_text(json.dumps({"record_id": name, "times": {"end_ms": end_ms}}))
        os.utime(folder, (time.time() + age, time.time() + age))  # the older record's folder looks newer
    assert [p.name for p in waiting(tmp_path)] == ["older", "newer"]


def test_a_device_verdict_that_names_no_model_file_is_held_against_none(tmp_path, client, caplog):  # noqa: F811
    """The device gate's own error report (`model_sha256: null`) was taken as a verdict on the model
    being promoted: its promotion record said `passed: false`."""
    from edgeproof.verdict.device import _error_report

    files = make_run_files(tmp_path)
    device = tmp_path / "reports" / "device" / "jetson-orin-nano"
    device.mkdir(parents=True)
    error = _error_report("jetson-orin-nano", FileNotFoundError("bundle/manifest.json"), "inputs")
    assert error["model_sha256"] is None and error["passed"] is False
    (device / "gate.json").write_text(json.dumps(error))
    files.device_reports = device.parent
    git_repo(tmp_path)
    with caplog.at_level(logging.WARNING):
        sent = record(files, tmp_path)
    assert "names no model file (failed: judged)" in caplog.text and "attributed to no model version" in caplog.text
    version = client.get_model_version(MODEL, sent["model_version"])
    assert {k: v for k, v in version.tags.items() if k.startswith("gate.")} == {"gate.build": "passed"}
    (entry,) = history(version.tags)
    assert entry["verdicts"] == {"build": "passed"}


def test_rollback_to_a_version_that_never_held_the_alias_needs_force(tmp_path, client, capsys, caplog, monkeypatch):  # noqa: F811
    """`model rollback --to 2` made an experiment's candidate the champion without a word."""
    from edgeproof.cli import main as cli

    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path)  # clean main: version 1 is the champion
    monkeypatch.setenv("DVC_EXP_NAME", "hack")
    _new_model_file(files, 3.0)  # an experiment (its inputs committed): version 2, a candidate
    commit_all(tmp_path)
    assert record(files, tmp_path)["model_version"] == "2"
    rollback = ["--params", str(files.params), "model", "rollback", "--to", "2"]
    with caplog.at_level(logging.ERROR):
        assert cli(rollback) == 2
    assert "version 2 never held champion (it came from experiment hack on main@" in caplog.text
    assert "a rollback goes back to a version that did: 1. Pass --force" in caplog.text
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"

    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert cli([*rollback, "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["forced"] is True
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert cli(["--params", str(files.params), "model", "rollback", "--to", "1"]) == 0  # it held champion: no force


def test_two_senders_registering_one_file_at_once_make_one_version(tmp_path, client, monkeypatch):  # noqa: F811
    """Both looked for the file's version before either registered it: two versions of one sha256."""
    import threading

    import edgeproof.tracking.registry as registry
    from edgeproof.tracking.mlflow_sink import _experiment_id

    _experiment_id(client, "unit", client.tracking_uri, tmp_path)  # the experiment as a sender makes it, first
    real, both_looked = registry.find_version, threading.Barrier(2, timeout=60)
    looked: list[str] = []

    def slow_find(*args, **kwargs):
        found = real(*args, **kwargs)
        if len(looked) < 2:  # the first look of each sender: both before either registers
            looked.append("x")
            both_looked.wait()
        return found

    monkeypatch.setattr(registry, "find_version", slow_find)
    repos, files = [tmp_path / name for name in ("a", "b")], {}
    for min_fps, repo in enumerate(repos, start=10):  # two runs (other thresholds) judge the same file
        repo.mkdir()
        files[repo.name] = make_run_files(repo)
        rules = [{"name": "fps", "op": ">=", "threshold": float(min_fps), "passed": True}]
        files[repo.name].metrics["gate"].write_text(json.dumps({"passed": True, "model_sha256": SHA, "rules": rules}))
        git_repo(repo)
    out: dict[str, dict] = {}

    def send(repo):
        out[repo.name] = record_pipeline_run(files[repo.name], repo, repo / ".state", PARAMS)

    threads = [threading.Thread(target=send, args=(repo,)) for repo in repos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")] == ["1"]
    versions = []
    for repo in repos:  # a sender whose tag writes collided with the other's stays pending: replayed, it lands on 1
        result = out[repo.name]
        sent = replay(repo / ".state", repo, PARAMS) if result["pending"] else result["sent"]
        versions.append(sent[-1]["model_version"])
    assert versions == ["1", "1"]
    assert [str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")] == ["1"]


def test_a_withdrawn_attempt_leaves_no_holder_time_behind():
    """The alias time a deleted run wrote would keep outranking a later, real record's."""
    from edgeproof.tracking.history import without_run

    tags = {
        "promoted.champion.run_id": "r1",
        "promoted.champion.origin": "main@abc",
        "alias.champion.since_ms": "1796612518650",
        "alias.candidate.since_ms": "1796612510000",  # another run put the candidate there
        "promoted.candidate.run_id": "r2",
        "runs": "r1,r2",
    }
    update, delete = without_run(tags, "r1")
    assert update == {"runs": "r2"}
    assert delete == ["alias.champion.since_ms", "promoted.champion.origin", "promoted.champion.run_id"]


def _fail_at(monkeypatch, method: str, when) -> None:
    """``MlflowClient.<method>`` raises the first time ``when(*args)`` says so."""
    from mlflow.tracking import MlflowClient

    real, failed = getattr(MlflowClient, method), []

    def flaky(self, *args, **kwargs):
        if not failed and when(*args, **kwargs):
            failed.append(args)
            raise RuntimeError("server went away")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, method, flaky)


def _champion_then_a_failing_release(tmp_path, client, monkeypatch, method: str, when) -> dict:  # noqa: F811
    """Version 1 is champion; version 2 (a what-if candidate) is then released from main, and that
    attempt fails at ``method``; the result of that attempt."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path)
    _new_model_file(files, 2.0)
    commit_all(tmp_path)
    record(files, tmp_path, release_branches=["release"])  # version 2, moves candidate only
    (tmp_path / "params.yaml").write_text((tmp_path / "params.yaml").read_text() + "x: 1\n")
    git_repo(tmp_path)
    _fail_at(monkeypatch, method, when)
    return record_pipeline_run(files, tmp_path, tmp_path / ".state", PARAMS)


def test_an_attempt_that_fails_after_moving_the_champion_moves_it_back(tmp_path, client, monkeypatch):  # noqa: F811
    """champion -> 2, then the attempt failed: run FAILED, verdict withdrawn, but champion stayed on 2."""
    from edgeproof.tracking.aliases import alias_history

    finished = lambda run_id, status="FINISHED", **_: status == "FINISHED"  # noqa: E731
    result = _champion_then_a_failing_release(tmp_path, client, monkeypatch, "set_terminated", finished)
    assert result["pending"] is True
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert alias_history(client, MODEL, "champion") == []
    tags = client.get_model_version(MODEL, "2").tags
    assert not [k for k in tags if k.startswith(("alias.champion.", "promoted.champion."))]


def test_an_attempt_that_fails_while_moving_the_champion_leaves_it_in_place(tmp_path, client, monkeypatch):  # noqa: F811
    """The fault the review injected: writing ``alias.champion.since_ms`` failed after the alias moved."""
    held = lambda name, version, key, value: key.startswith("alias.champion")  # noqa: E731
    result = _champion_then_a_failing_release(tmp_path, client, monkeypatch, "set_model_version_tag", held)
    assert result["pending"] is True
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    replay(tmp_path / ".state", tmp_path, PARAMS)  # the server is back: the release goes through whole
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
