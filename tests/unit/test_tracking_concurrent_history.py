"""Two senders judging one model version at once: every verdict stays in its history.

Two senders of the same model file share one registered version. Each adds its verdict to that
version's history; when both read the version before either wrote, they used to pick the same
``history.<n>`` tag and the later write replaced the earlier verdict. A history key is now the
entry's own (the record's content id, the device report's), so two records never write the same
key and sending one record again writes the same key.
"""

from __future__ import annotations

import json

import yaml

from edgeproof.tracking.history import HISTORY_PREFIX, RUNS_TAG, dropped_history, history, new_tags, without_run
from edgeproof.tracking.pipeline import record_pipeline_run
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401
from tests.unit.test_tracking_replay import PARAMS

MODEL = "edgeproof-detector"


def _files(repo, min_fps: float):
    """A run of the same model file as every other one here, judged under its own fps threshold."""
    repo.mkdir()
    files = make_run_files(repo)
    rules = [{"name": "fps", "op": ">=", "threshold": min_fps, "passed": True}]
    files.metrics["gate"].write_text(json.dumps({"passed": True, "model_sha256": SHA, "rules": rules}))
    files.params.write_text(yaml.safe_dump({"profiles": {"cpu-ci": {"gate": {"min_fps": min_fps}}}}))
    git_repo(repo)
    return files


def test_two_senders_judging_one_version_at_once_both_keep_their_verdict(tmp_path, client, monkeypatch):  # noqa: F811
    """B reads version 1, A sends its record in full, then B writes: A's verdict used to be replaced."""
    import edgeproof.tracking.registry as registry

    released = record(_files(tmp_path / "release", 10.0), tmp_path / "release")
    files = {name: _files(tmp_path / name, fps) for name, fps in (("a", 20.0), ("b", 30.0))}
    real, out, started = registry.find_version, {}, []

    def find_then_the_other_sends(*args, **kwargs):
        found = real(*args, **kwargs)
        if not started:  # B has read the version; A sends now, in full, before B writes
            started.append("a")
            out["a"] = record_pipeline_run(files["a"], tmp_path / "a", tmp_path / "a" / ".state", PARAMS)
        return found

    monkeypatch.setattr(registry, "find_version", find_then_the_other_sends)
    out["b"] = record_pipeline_run(files["b"], tmp_path / "b", tmp_path / "b" / ".state", PARAMS)
    assert not out["a"]["pending"] and not out["b"]["pending"]
    sent = {name: result["sent"][-1] for name, result in out.items()}
    assert {s["model_version"] for s in sent.values()} == {"1"}
    tags = client.get_model_version(MODEL, "1").tags
    judged = {e["run_id"]: e["thresholds"].get("fps") for e in history(tags)}
    assert judged == {released["run_id"]: ">= 10.0", sent["a"]["run_id"]: ">= 20.0", sent["b"]["run_id"]: ">= 30.0"}
    assert set(tags[RUNS_TAG].split(",")) == set(judged)  # the summary lists every run that judged the file
    description = client.get_model_version(MODEL, "1").description
    assert all(run_id[:8] in description for run_id in judged)


def test_two_device_verdicts_on_one_version_at_once_both_stay(tmp_path, monkeypatch):
    """Two boards' gates (jetson-a, jetson-b) log their verdicts on one file at the same time."""
    from mlflow.tracking import MlflowClient

    from edgeproof.tracking.device_verdict import log_device_verdicts

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)  # noqa: F811
    exp = client.create_experiment("edgeproof", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp, tags={"model_sha256": SHA})
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, "file:///m", run.info.run_id, tags={"model_sha256": SHA})
    reports = {
        p: {"profile": p, "verdict": v, "failed": f, "model_sha256": SHA}
        for p, v, f in (("jetson-a", "pass", []), ("jetson-b", "fail", ["fps"]))
    }
    real, started = MlflowClient.search_model_versions, []

    def search_then_the_other_logs(self, *args, **kwargs):
        found = real(self, *args, **kwargs)
        if not started:  # jetson-b has read the version; jetson-a logs now, in full, before jetson-b writes
            started.append("jetson-a")
            log_device_verdicts({"jetson-a": reports["jetson-a"]}, tmp_path / "none", uri=uri)
        return found

    monkeypatch.setattr(MlflowClient, "search_model_versions", search_then_the_other_logs)
    log_device_verdicts({"jetson-b": reports["jetson-b"]}, tmp_path / "none", uri=uri)
    verdicts = [e["verdicts"] for e in history(client.get_model_version(MODEL, "1").tags)]
    assert sorted(verdicts, key=str) == [{"jetson-a": "passed"}, {"jetson-b": "failed: fps"}]


def _record(i: int, fps: float) -> dict:
    return {
        "record_id": f"{i:032x}",
        "tags": {"model_sha256": SHA, "branch": "main", "git_commit": f"{i:040d}"},
        "metrics": {"fps": 50.0},
        "passed": True,
        "verdicts": {"build": {"passed": True}},
        "thresholds": {"fps": f">= {fps}"},
        "times": {"end_ms": 1_800_000_000_000 + i},
    }


def _history_keys(tags: dict) -> set[str]:
    return {k for k in tags if k.startswith(HISTORY_PREFIX)}


def test_two_records_never_write_one_history_key_and_one_record_always_writes_the_same():
    seen = new_tags({"model_sha256": SHA}, _record(0, 10.0), "run-0", "")  # what both senders read
    a = new_tags(seen, _record(1, 20.0), "run-a", "")
    b = new_tags(seen, _record(2, 30.0), "run-b", "")
    assert _history_keys(a) and _history_keys(b) and not _history_keys(a) & _history_keys(b)
    after_a = {**seen, **a}
    again = new_tags(after_a, _record(1, 20.0), "run-a", "")  # the same record sent again
    assert {k: again[k] for k in _history_keys(again)} == {k: a[k] for k in _history_keys(a)}
    assert [e["run_id"] for e in history({**after_a, **again})] == ["run-0", "run-a"]


def test_history_written_by_the_numbered_scheme_is_still_read_first():
    """Versions judged before: ``history.0001`` ... come first (oldest), are capped and withdrawn as before."""
    old = {"run_id": "run-old", "verdicts": {"build": "passed"}, "at_ms": 1_900_000_000_000}
    tags = {
        "model_sha256": SHA,
        "history.0002": json.dumps({**old, "run_id": "run-old-2"}),
        "history.0001": json.dumps(old),  # a later at_ms than the new entries: the number still orders it
        RUNS_TAG: "run-old,run-old-2",
    }
    tags.update(new_tags(tags, _record(3, 20.0), "run-new", ""))
    assert [e["run_id"] for e in history(tags)] == ["run-old", "run-old-2", "run-new"]
    assert tags[RUNS_TAG] == "run-old,run-old-2,run-new"
    full = {**tags, **{f"history.{i:04d}": json.dumps({"run_id": f"r{i}"}) for i in range(3, 41)}}
    assert dropped_history(full) == ["history.0001"]  # 41 entries: the oldest numbered one goes
    update, delete = without_run(tags, "run-old-2")
    assert delete == ["history.0002"] and update == {RUNS_TAG: "run-old,run-new"}
