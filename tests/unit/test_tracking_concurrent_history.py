"""Two senders judging one model version at once: every verdict stays in its history.

Two senders of the same model file share one registered version. Each adds its verdict to that
version's history; when both read the version before either wrote, they used to pick the same
``history.<n>`` tag and the later write replaced the earlier verdict. A history key is now the
entry's own (the record's content id, the device report's), so two records never write the same
key and sending one record again writes the same key. The history is in the order its entries were
written (``logged_ms``), so the cap deletes those written longest ago, never a verdict just written.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

import edgeproof.tracking.history as history_module
from edgeproof.tracking.description import describe_version
from edgeproof.tracking.history import (
    HISTORY_PREFIX,
    MAX_HISTORY,
    RUNS_TAG,
    device_entry,
    device_history_key,
    dropped_history,
    history,
    new_tags,
    without_run,
)
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


COMMITTED = {"git_dirty": "false", "provenance": "clean"}  # only such a run writes a promotion record


def _record(i: int, fps: float) -> dict:
    return {
        "record_id": f"{i:032x}",
        "tags": {"model_sha256": SHA, "branch": "main", "git_commit": f"{i:040d}", **COMMITTED},
        "provenance": "clean",
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


T0 = 1_800_000_000_000
"""Milliseconds: where the test clock starts (and about when ``_record``'s runs end)."""
DAY = 86_400_000


@pytest.fixture
def clock(monkeypatch) -> list[int]:
    """The time history entries are written at: ``clock[0]``, one second later at every write (a test
    sets it back to play a sender whose clock is behind)."""
    now = [T0]

    def tick() -> int:
        now[0] += 1000
        return now[0]

    monkeypatch.setattr(history_module, "now_ms", tick)
    return now


def _full_version(client, tmp_path) -> tuple[str, str, str]:  # noqa: F811
    """Version 1 holding :data:`MAX_HISTORY` verdicts (``run-0`` ... written in turn) in a real store:
    its experiment, a real run and that run's logged model, for :func:`record_verdict`."""
    exp = client.create_experiment("unit", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp, tags={"model_sha256": SHA}).info.run_id
    model_id = client.create_logged_model(exp, source_run_id=run).model_id
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, "file:///m", run, tags={"model_sha256": SHA})
    tags = {"model_sha256": SHA}
    for i in range(MAX_HISTORY):
        tags.update(new_tags(tags, _record(i, 10.0), f"run-{i}", ""))
    for key, value in tags.items():
        client.set_model_version_tag(MODEL, "1", key, value)
    return exp, run, model_id


def _send_onto_full_history(client, tmp_path, sent: dict, clock: list[int], behind_ms: int = 0) -> tuple[dict, str]:  # noqa: F811
    """Send ``sent`` onto a full history, from a sender whose clock is ``behind_ms`` behind the
    others'; the version's tags after its own cap, and the sender's run."""
    from edgeproof.tracking.registry import record_verdict

    exp, run, model_id = _full_version(client, tmp_path)
    clock[0] -= behind_ms
    assert record_verdict(client, MODEL, sent, run, exp, model_id) == "1"
    tags = client.get_model_version(MODEL, "1").tags
    assert len(history(tags)) == MAX_HISTORY
    return tags, run


def _runs_list_the_kept(tags: dict, run: str) -> None:
    """``runs`` ends with the sender's run and no longer lists run-0, whose entry the cap took."""
    runs = tags[RUNS_TAG].split(",")
    assert runs[-1] == run and "run-0" not in runs and len(runs) == MAX_HISTORY


def _kept_as_the_newest(tags: dict, run: str) -> None:
    entries = history(tags)
    assert entries[-1]["run_id"] == run and entries[-1]["thresholds"] == {"fps": ">= 50.0"}
    assert entries[0]["run_id"] == "run-1"  # the cap took the verdict written longest ago
    _runs_list_the_kept(tags, run)


def test_a_record_without_times_survives_its_own_cap_on_a_full_history(tmp_path, client, clock):  # noqa: F811
    """No ``times.end_ms``: it sorted first (no time) and its own sender's cap deleted it at once."""
    sent = _record(99, 50.0)
    del sent["times"]
    _kept_as_the_newest(*_send_onto_full_history(client, tmp_path, sent, clock))


def test_a_late_replay_onto_a_full_history_is_the_newest_verdict_not_the_first_deleted(tmp_path, client, clock):  # noqa: F811
    """A record whose run ended days ago, replayed from the outbox now: it sorted by that end, first,
    and was deleted right after being written while ``runs`` listed it as the newest."""
    sent = {**_record(99, 50.0), "times": {"end_ms": T0 - 3 * DAY}}
    _kept_as_the_newest(*_send_onto_full_history(client, tmp_path, sent, clock))


def test_a_sender_whose_clock_is_behind_never_deletes_its_own_fresh_verdict(tmp_path, client, clock):  # noqa: F811
    """Its write time is earlier than every other entry's, so its entry sorts first: the cap takes
    the next one instead."""
    sent = {**_record(99, 50.0), "times": {"end_ms": T0 - 3 * DAY}}
    tags, run = _send_onto_full_history(client, tmp_path, sent, clock, behind_ms=3 * DAY)
    assert [e["run_id"] for e in history(tags)][:2] == [run, "run-1"]  # run-0, written longest ago, went
    _runs_list_the_kept(tags, run)


def test_the_history_and_its_cap_follow_the_order_entries_were_written(clock, monkeypatch):
    """Entries without a run end (and ones whose run ended in another order) sorted by key hash."""
    order = [4, 3, 2, 1, 0]  # keys ascending the other way round
    tags = {"model_sha256": SHA}
    for i in order:
        sent = _record(i, 10.0 + i)
        if i % 2:
            del sent["times"]
        tags.update(new_tags(tags, sent, f"run-{i}", ""))
    assert [e["run_id"] for e in history(tags)] == [f"run-{i}" for i in order]
    verdicts = describe_version(tags, "7").split("**Verdicts on this file**")[1]
    places = [verdicts.index(f"fps >= {10.0 + i}") for i in order]
    assert places == sorted(places)  # the description lists them in the same order
    monkeypatch.setattr(history_module, "MAX_HISTORY", 3)
    assert [json.loads(tags[k])["run_id"] for k in dropped_history(tags)] == ["run-4", "run-3"]


def test_a_record_sent_again_keeps_when_it_was_first_written_and_its_place(clock):
    tags = {"model_sha256": SHA}
    first = new_tags(tags, _record(1, 20.0), "run-1", "")
    tags.update(first)
    tags.update(new_tags(tags, _record(2, 30.0), "run-2", ""))
    again = new_tags(tags, _record(1, 20.0), "run-1", "")  # later: the clock has moved on
    (key,) = (k for k in first if k.startswith(HISTORY_PREFIX))
    assert json.loads(first[key])["logged_ms"] == T0 + 1000 and again[key] == first[key]
    assert [e["run_id"] for e in history({**tags, **again})] == ["run-1", "run-2"]


def test_a_device_verdict_takes_its_place_by_when_it_was_written(clock):
    """A device entry's time was when it was logged, a record's when its run ended: the two mixed."""
    tags = {"model_sha256": SHA}
    tags.update(new_tags(tags, {**_record(1, 20.0), "times": {"end_ms": T0 + DAY}}, "run-1", ""))
    report = {"profile": "jetson", "verdict": "pass", "failed": [], "model_sha256": SHA}
    entry = device_entry("jetson", report, ["run-1"], {})
    tags[device_history_key(report)] = json.dumps(entry, sort_keys=True)
    tags.update(new_tags(tags, {**_record(2, 30.0), "times": {"end_ms": T0 - DAY}}, "run-2", ""))
    assert [e["verdicts"] for e in history(tags)] == [{"build": "passed"}, {"jetson": "passed"}, {"build": "passed"}]
    assert [e["run_id"] for e in history(tags)] == ["run-1", "run-1", "run-2"]
    assert entry["logged_ms"] == entry["at_ms"] == T0 + 2000  # judged and written at once


def test_a_device_verdict_onto_a_full_history_caps_it_and_shows_in_the_description(tmp_path, client, clock):  # noqa: F811
    """Device verdicts were added uncapped (a version could pass MAX_HISTORY entries) and left out of the
    description until the next pipeline send; they end with the same settle step now."""
    from edgeproof.tracking.device_verdict import log_device_verdicts

    _full_version(client, tmp_path)
    report = {"profile": "jetson", "verdict": "pass", "failed": [], "model_sha256": SHA, "rules": []}
    log_device_verdicts(
        {"jetson": report},
        tmp_path / "none",
        experiment="unit",
        model_name=MODEL,
        uri=os.environ["MLFLOW_TRACKING_URI"],
    )
    version = client.get_model_version(MODEL, "1")
    entries = history(version.tags)
    assert len(entries) == MAX_HISTORY and entries[0]["run_id"] == "run-1"  # run-0, written first, went
    assert entries[-1]["verdicts"] == {"jetson": "passed"} and "device jetson" in version.description


def _passing(i: int, profiles: dict[str, dict], fps: float) -> dict:
    return {**_record(i, fps), "verdicts": profiles, "metrics": {"fps": fps + 40, "mAP50-95": 0.5 + i / 100}}


def test_two_first_senders_leave_one_whole_promotion_record(tmp_path, client):  # noqa: F811
    """Two passing senders both find the version without a promotion record and both write one, their
    tags interleaved: the record read back is one sender's whole, never a mix, and the settle step
    rewrites the tags shown (``gate.*``, ``metric.*``, ``promotion.*``) to it, the other's extra
    profile gone. Each had been a tag of its own, so the version showed A's run with B's metrics."""
    from edgeproof.tracking.promotion import PROMOTION_TAG, promotion
    from edgeproof.tracking.registry import settle_summary

    seen = {"model_sha256": SHA}  # what both read: no promotion record yet
    a = new_tags(seen, _passing(1, {"build": {"passed": True}, "cpu-ci": {"passed": True}}, 20.0), "run-a", "")
    b = new_tags(seen, _passing(2, {"build": {"passed": True}}, 30.0), "run-b", "")
    # A wrote all its tags; B's writes of the record tag and of one metric landed after A's
    mixed = {**seen, **a, PROMOTION_TAG: b[PROMOTION_TAG], "metric.fps": b["metric.fps"]}
    assert (mixed["promotion.run_id"], mixed["metric.fps"]) == ("run-a", "70")  # the tags shown: a mix
    record = promotion(mixed)
    assert (record["run_id"], record["metrics"]["fps"], record["thresholds"]) == ("run-b", "70", {"fps": ">= 30.0"})
    assert record["verdicts"] == {"build": "passed"}

    exp = client.create_experiment("unit", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp)
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, "file:///m", run.info.run_id, tags=mixed)
    settle_summary(client, MODEL, "1", exp)
    tags = client.get_model_version(MODEL, "1").tags
    shown = {k: v for k, v in tags.items() if k.startswith(("gate.", "metric.", "promotion.")) and k != PROMOTION_TAG}
    assert shown == {
        "gate.build": "passed",
        "metric.fps": "70",
        "metric.mAP50-95": "0.52",
        "promotion.run_id": "run-b",
        "promotion.origin": "branch main@0000000",
        "promotion.commit": f"{2:040d}",
        "promotion.provenance": "clean",
        "promotion.thresholds": '{"fps": ">= 30.0"}',
    }
    assert promotion(tags) == record and "run-b"[:8] in client.get_model_version(MODEL, "1").description
