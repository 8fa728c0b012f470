"""``champion`` never moves to a file a device failed, and ``model show`` shows the run that made it champion.

A device verdict's report expires with its CI artifact: the next clean run carried the build gate's
verdict alone and moved ``champion`` to the file whose promotion record said ``passed: false``
(review "records" 3). And the first passing run wrote the version's fixed promotion record whatever its
provenance, so ``model show`` on champion showed a not-clean run's ``fps 999`` for good (records 4).
"""

from __future__ import annotations

import json
import subprocess

from edgeproof.tracking.model_show import show
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import GIT, client, git_repo, no_ci_env, record  # noqa: F401

MODEL = "edgeproof-detector"


def _device(files, verdict: str) -> None:
    (files.device_reports / "jetson").mkdir(parents=True, exist_ok=True)
    report = {"verdict": verdict, "passed": verdict == "pass", "failed": [] if verdict == "pass" else ["map50"]}
    (files.device_reports / "jetson" / "gate.json").write_text(json.dumps({**report, "model_sha256": SHA}))


def test_a_device_failure_remembered_on_the_version_holds_champion_back_until_the_device_passes(
    tmp_path,
    tmp_path_factory,
    client,  # noqa: F811
    caplog,
):
    files = make_run_files(tmp_path)
    files.device_reports = tmp_path_factory.mktemp("device")  # CI artifacts: outside the checkout
    _device(files, "fail")
    git_repo(tmp_path)
    assert record(files, tmp_path)["model_version"] == "1"  # registered, promotion passed: false, no alias
    assert client.get_registered_model(MODEL).aliases == {}

    (files.device_reports / "jetson" / "gate.json").unlink()  # the CI artifact expired
    sent = record(files, tmp_path)  # a clean main run whose own verdicts all pass
    assert sent["model_version"] == "1" and client.get_registered_model(MODEL).aliases == {}
    why = "edgeproof-detector version 1 holds verdicts on this file that did not pass: jetson: failed: map50"
    assert f"{why}; alias champion not moved" in caplog.text
    assert client.get_run(sent["run_id"]).data.tags["alias_not_moved"] == f"champion: {why}"

    _device(files, "pass")  # the device judged the same file again, and it passed
    assert record(files, tmp_path)["model_version"] == "1"
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"


def test_a_what_if_experiment_failing_the_file_holds_nothing_back(tmp_path, client):  # noqa: F811
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    record(files, tmp_path)  # champion
    client.delete_registered_model_alias(MODEL, "champion")
    gate = json.loads(files.metrics["gate"].read_text())
    files.metrics["gate"].write_text(json.dumps({**gate, "passed": False, "failed": ["fps"]}))
    record(files, tmp_path)  # the same file failed at other thresholds: a build verdict in its history
    files.metrics["gate"].write_text(json.dumps(gate))
    files.params.write_text(files.params.read_text() + "other: 1\n")  # another record of the same pass
    subprocess.run([*GIT, "commit", "-qam", "y"], cwd=tmp_path, check=True)
    record(files, tmp_path)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"


def test_model_show_shows_the_run_that_made_the_version_champion(tmp_path, client):  # noqa: F811
    """A hand-edited (not clean) run registered the file first, so champion's fixed promotion record showed
    its fps 999 beside the clean run's own (review records 4): such a run now registers nothing."""
    files = make_run_files(tmp_path)
    honest = files.metrics["bench"].read_text()
    files.metrics["headline"] = tmp_path / "headline.json"
    files.metrics["headline"].write_text(json.dumps({"fps": 50.0, "mAP50": 0.91}))
    git_repo(tmp_path)
    bench = json.loads(honest)
    files.metrics["bench"].write_text(json.dumps({**bench, "fps_e2e": 999.0}))  # a hand edit: not clean
    files.metrics["headline"].write_text(json.dumps({"fps": 999.0, "mAP50": 0.91}))
    forged = record(files, tmp_path)
    assert forged["model_version"] is None and client.search_model_versions(f"name = '{MODEL}'") == []

    files.metrics["bench"].write_text(honest)  # restored: a clean main run registers the file, champion
    files.metrics["headline"].write_text(json.dumps({"fps": 50.0, "mAP50": 0.91}))
    clean = record(files, tmp_path)
    shown = show(client, MODEL, "champion")
    assert shown["promoted"]["run_id"] == clean["run_id"] and shown["promoted"]["passed"] is True
    assert shown["promoted"]["metrics"]["fps"] == "50" and shown["promoted"]["provenance"] == "clean"
    assert shown["promoted"]["gate"]["passed"] is True  # the promoting run's own gate report
    assert shown["promotion"]["run_id"] == clean["run_id"] and shown["promotion"]["metrics"]["fps"] == "50"
    assert shown["promotion"]["provenance"] == "clean"
    assert [e["run_id"] for e in shown["history"]] == [clean["run_id"]]  # the forged run judged no version
    assert client.get_registered_model(MODEL).aliases == {"champion": 1}
    description = client.get_model_version(MODEL, "1").description
    assert f"**Promoted to `champion`** by run [{clean['run_id'][:8]}]" in description
    assert "provenance: clean): build: passed; fps = 50, mAP50 = 0.91" in description and "999" not in description


def test_a_withdrawn_run_takes_its_alias_record_with_it():
    from edgeproof.tracking.history import without_run

    tags = {"promoted.champion.run_id": "r1", "promoted.champion.origin": "o", "promoted.champion.record": "{}"}
    assert "promoted.champion.record" in without_run(tags, "r1")[1]
