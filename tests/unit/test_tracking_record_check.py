"""An outbox record is sent only when it agrees with itself and the files travelling with it.

The content id is public (anyone can recompute it), so it catches accidental edits only. A failed
run's record turned into a pass (``passed``, ``alias``, a metric, its id recomputed) was registered as
the champion, its promotion record saying ``failed: fps`` next to ``passed``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeproof.tracking.pipeline import ReplayError, record_pipeline_run, replay
from edgeproof.tracking.record import RECORD_FILE, content_id
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import _new_model_file, client, git_repo, no_ci_env, record  # noqa: F401
from tests.unit.test_tracking_replay import PARAMS

MODEL = "edgeproof-detector"
DOWN = "http://127.0.0.1:9"  # nothing listens: the record waits in the outbox


def _waiting_record(tmp_path: Path, monkeypatch, gate: dict | None = None, **env: str) -> Path:
    """A clean main checkout's run whose record waits in the outbox; its folder."""
    files = make_run_files(tmp_path)
    if gate is not None:
        files.metrics["gate"].write_text(json.dumps(gate))
    git_repo(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", DOWN)
    return Path(record_pipeline_run(files, tmp_path, tmp_path / ".state", PARAMS)["record"])


def _edit(folder: Path, change) -> None:
    """Edit the waiting record and recompute its id, as anyone with the outbox can."""
    data = json.loads((folder / RECORD_FILE).read_text())
    change(data)
    data["record_id"] = content_id(data)
    (folder / RECORD_FILE).write_text(json.dumps(data))


def _replay(tmp_path: Path, client, monkeypatch) -> list[dict]:  # noqa: F811
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)  # the server is back
    return replay(tmp_path / ".state", tmp_path, PARAMS)


def _replay_refused(tmp_path: Path, client, monkeypatch, folder: Path, field: str) -> str:  # noqa: F811
    with pytest.raises(ReplayError) as caught:
        _replay(tmp_path, client, monkeypatch)
    message = str(caught.value)
    assert str(folder / RECORD_FILE) in message and field in message, message
    assert (folder / RECORD_FILE).exists()  # refused, never dropped
    assert client.search_model_versions(f"name = '{MODEL}'") == []
    return message


def test_a_failed_record_edited_into_a_champion_is_refused(tmp_path, client, monkeypatch):  # noqa: F811
    folder = _waiting_record(tmp_path, monkeypatch, {"passed": False, "model_sha256": SHA, "failed": ["fps"]})

    def forge(data):
        data.update(passed=True, alias="champion")
        data["metrics"]["eval.map50_95"] = 0.99

    _edit(folder, forge)
    message = _replay_refused(tmp_path, client, monkeypatch, folder, "passed")
    assert "verdicts." in message  # its own build verdict still says failed


def test_a_forged_build_verdict_is_refused_by_the_gate_report_next_to_it(tmp_path, client, monkeypatch):  # noqa: F811
    folder = _waiting_record(tmp_path, monkeypatch, {"passed": False, "model_sha256": SHA, "failed": ["fps"]})

    def forge(data):
        data.update(passed=True, alias="champion")
        for verdict in data["verdicts"].values():
            verdict.update(passed=True, failed=[])

    _edit(folder, forge)
    assert "gate.json says passed: False" in _replay_refused(tmp_path, client, monkeypatch, folder, "passed")


@pytest.mark.parametrize("sha", ["", "0" * 63, SHA.upper(), "f" * 64])
def test_a_record_with_a_missing_malformed_or_wrong_sha256_is_refused(tmp_path, client, monkeypatch, sha):  # noqa: F811
    """An empty sha256 skipped the model file check and registered a new version at every send."""
    folder = _waiting_record(tmp_path, monkeypatch)
    _edit(folder, lambda data: data["tags"].update(model_sha256=sha))
    _replay_refused(tmp_path, client, monkeypatch, folder, "tags.model_sha256")


def test_the_alias_is_recomputed_from_the_records_tags_not_read_from_it(tmp_path, client, monkeypatch):  # noqa: F811
    """A pull request's passing record claiming ``champion`` moves ``candidate``, as its tags earn."""
    folder = _waiting_record(tmp_path, monkeypatch, GITHUB_HEAD_REF="fix-nms")
    assert json.loads((folder / RECORD_FILE).read_text())["alias"] == "candidate"
    _edit(folder, lambda data: data.update(alias="champion"))
    _replay(tmp_path, client, monkeypatch)
    assert str(client.get_model_version_by_alias(MODEL, "candidate").version) == "1"
    assert set(client.get_registered_model(MODEL).aliases) == {"candidate"}


def test_a_failed_record_never_moves_an_alias_on_an_existing_version(tmp_path, client, monkeypatch):  # noqa: F811
    """On a version already registered, any record carrying an ``alias`` moved it, passed or not."""
    from edgeproof.tracking.registry import record_verdict

    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    sent = record(files, tmp_path, candidate_alias="candidate")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    run = client.get_run(sent["run_id"])
    model_id = client.search_logged_models([run.info.experiment_id])[0].model_id
    failed = {"tags": {"model_sha256": SHA}, "metrics": {}, "passed": False, "alias": "candidate",
              "verdicts": {"build": {"passed": False, "failed": ["fps"]}}, "times": {"end_ms": 4 * 10**12}}  # fmt: skip
    record_verdict(client, MODEL, failed, sent["run_id"], run.info.experiment_id, model_id)
    assert set(client.get_registered_model(MODEL).aliases) == {"champion"}


YEAR_2100_MS = 4_102_444_800_000


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("times.end_ms", lambda t: t.update(end_ms=YEAR_2100_MS)),  # held champion against every later release
        ("times.start_ms", lambda t: t.update(start_ms=t["end_ms"] + 1000)),
        ("times.end_ms", lambda t: t.update(end_ms=-5)),
    ],
)
def test_a_record_whose_times_cannot_be_true_is_refused(tmp_path, client, monkeypatch, field, change):  # noqa: F811
    """The times are outside the content id, so an edit there kept the id and still decided aliases."""
    folder = _waiting_record(tmp_path, monkeypatch)
    data = json.loads((folder / RECORD_FILE).read_text())
    change(data["times"])
    (folder / RECORD_FILE).write_text(json.dumps(data))
    _replay_refused(tmp_path, client, monkeypatch, folder, field)


def test_stage_times_longer_than_the_run_or_negative_are_refused(tmp_path, client, monkeypatch):  # noqa: F811
    folder = _waiting_record(tmp_path, monkeypatch)
    for stages in ({"train": 10**6}, {"train": -1.0}):
        data = json.loads((folder / RECORD_FILE).read_text())
        data["stage_seconds"] = stages  # would be logged as time_s.train
        (folder / RECORD_FILE).write_text(json.dumps(data))
        _replay_refused(tmp_path, client, monkeypatch, folder, "stage_seconds")


def test_a_sender_whose_clock_runs_ahead_is_checked_against_the_servers(tmp_path, client, monkeypatch):  # noqa: F811
    """The logged model's creation time is the server's: a record stamped by a sender an hour ahead
    passes the sender's own clock but not the server's, and waits instead of taking the alias order."""
    import types

    import edgeproof.tracking.mlflow_sink as sink

    folder = _waiting_record(tmp_path, monkeypatch)
    data = json.loads((folder / RECORD_FILE).read_text())
    data["times"]["end_ms"] += 3_600_000
    (folder / RECORD_FILE).write_text(json.dumps(data))
    real = sink.time.time
    monkeypatch.setattr(sink, "time", types.SimpleNamespace(time=lambda: real() + 7200))  # the sender's clock
    assert "tracking server's clock" in _replay_refused(tmp_path, client, monkeypatch, folder, "times.end_ms")


def test_a_champion_held_since_a_time_still_to_come_does_not_block_a_release(tmp_path, client, caplog):  # noqa: F811
    """A store written before the times were checked: champion held 'since 2100' refused every release."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path)
    client.set_model_version_tag(MODEL, "1", "alias.champion.since_ms", str(YEAR_2100_MS))
    _new_model_file(files, 2.0)
    git_repo(tmp_path)
    assert record(files, tmp_path)["model_version"] == "2"
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert "a time still to come" in caplog.text


@pytest.mark.parametrize(("device_sha", "champion"), [(SHA, False), ("b" * 64, True)])
def test_a_champion_passed_every_verdict_on_its_own_file(tmp_path, client, device_sha, champion):  # noqa: F811
    """``model show`` showed ``champion`` with ``promotion.passed: false``: the alias looked at the
    build gate only, the promotion record at every verdict on the file (a failed device one too)."""
    from edgeproof.tracking.model_show import show

    files = make_run_files(tmp_path)
    files.device_reports = tmp_path / "device"
    (files.device_reports / "jetson").mkdir(parents=True)
    report = {"verdict": "fail", "passed": False, "model_sha256": device_sha, "failed": ["fps"]}
    (files.device_reports / "jetson" / "gate.json").write_text(json.dumps(report))
    git_repo(tmp_path)
    assert record(files, tmp_path)["model_version"] == "1"  # the build gate passed: registered all the same
    aliases = set(client.get_registered_model(MODEL).aliases)
    assert aliases == ({"champion"} if champion else set())
    if champion:
        assert show(client, MODEL, "champion")["promotion"]["passed"] is True
