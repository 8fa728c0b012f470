"""MLflow as people read it (issue 21): run times, a verdict that stands out, the logged model linked
to its registered version, and a run page that starts with the headline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from edgeproof.tracking import record as record_module
from edgeproof.tracking.history import history
from edgeproof.tracking.view import VERDICT_TAG, column, view_state
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)

T = 1_790_000_000_000  # when the (simulated) `dvc repro` began, in ms


def _touch(path, ms: int) -> None:
    os.utime(path, (ms / 1000, ms / 1000))


def test_the_start_is_when_the_dvc_process_began():
    """A stage's ancestor ``dvc repro`` (here a shell named so) sets the start, not the oldest output."""
    script = "from edgeproof.tracking.context import repro_started_ms; print(repro_started_ms())"
    before = time.time() * 1000
    shell = f'shift; sleep 1; "{sys.executable}" -c "{script}"'
    out = subprocess.run(["sh", "-c", shell, "dvc", "repro"], capture_output=True, text=True, check=True).stdout
    started = int(out)
    assert before - 1000 <= started <= before + 500  # the shell's start, a second before the stage's
    plain = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert plain.strip() == "None"  # a stage run by hand: no DVC process


def _note(notes: Path, stage: str, start_s: float, end_s: float) -> None:
    notes.mkdir(parents=True, exist_ok=True)
    (notes / f"{stage}.json").write_text(json.dumps({"start_ms": T + start_s * 1000, "end_ms": T + end_s * 1000}))


def test_run_times_and_what_each_stage_took(tmp_path, client, monkeypatch):  # noqa: F811
    """Each stage's time is what its process noted; outputs DVC restored in this repro (a cached
    training checked out again: new file times, no process) are no stage run. They had counted as
    ``time_s.train`` of the seconds the checkout took."""
    files = make_run_files(tmp_path)
    files.metrics["data"] = tmp_path / "data.json"
    files.metrics["data"].write_text("{}")
    files.stage_times = tmp_path / "stage_times"
    _touch(files.metrics["data"], T - 3_600_000)  # data: skipped by this repro, last ran an hour before
    _touch(files.curves, T + 3_000)  # train: restored by DVC 3 s in, no note
    for path, seconds in ((files.model, 120), (files.metrics["eval"], 130)):
        _touch(path, T + seconds * 1000)
    for name in ("bench", "gate"):
        _touch(files.metrics[name], T + 150_000)
    notes = files.stage_times / str(T)
    _note(notes, "export", 5, 120)
    _note(notes, "evaluate", 121, 130)
    _note(files.stage_times / str(T - 86_400_000), "train", -86_000, -85_000)  # another repro's: not this one
    monkeypatch.setattr(record_module, "repro_started_ms", lambda: T)
    monkeypatch.setattr(record_module, "process_start_ms", lambda: T + 140_000)  # the gate's own process
    git_repo(tmp_path)
    run = client.get_run(record(files, tmp_path)["run_id"])
    assert (run.info.start_time, run.info.end_time) == (T, T + 150_000)  # was the data stage's output time
    stage_times = {k: v for k, v in run.data.metrics.items() if k.startswith("time_s.")}
    assert stage_times == {"time_s.export": 115.0, "time_s.evaluate": 9.0, "time_s.gate": 10.0, "time_s.total": 150.0}


def test_a_stage_process_notes_its_time_under_the_dvc_repro_running_it(tmp_path):
    """Under a ``dvc repro`` (here a shell named so) a stage notes its start and end in the repro's
    folder; run by hand it notes nothing."""
    script = (
        "import sys; from pathlib import Path; from edgeproof.stage_clock import note_stage_time;"
        "print(note_stage_time(Path(sys.argv[1]), 'train'))"
    )
    shell = f'shift; sleep 1; "{sys.executable}" -c "{script}" "{tmp_path}"'
    out = subprocess.run(["sh", "-c", shell, "dvc", "repro"], capture_output=True, text=True, check=True).stdout
    note = Path(out.strip())
    assert note.parent.parent == tmp_path / "stage_times" and note.name == "train.json"
    times = json.loads(note.read_text())
    assert int(note.parent.name) + 900 <= times["start_ms"] <= times["end_ms"]  # the stage began after the sleep
    plain = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "None"


def test_a_failed_verdict_stands_out_next_to_the_run_name(tmp_path, client):  # noqa: F811
    files = make_run_files(tmp_path)
    files.metrics["gate"].write_text(json.dumps({"passed": False, "model_sha256": SHA, "failed": ["fps", "map50"]}))
    failed = client.get_run(record(files, tmp_path)["run_id"])
    assert failed.data.tags[VERDICT_TAG] == "✗ FAILED: fps, map50"
    state = json.loads(view_state())
    assert state["columnOrder"][:2] == [column("attributes", "Run Name"), column("tags", VERDICT_TAG)]
    assert column("tags", VERDICT_TAG) in state["selectedColumns"]


def test_an_inconclusive_gate_is_shown_as_inconclusive_in_the_run_and_the_registry(tmp_path, client):  # noqa: F811
    """A gate that judged nothing (latency not measured) said ``✗ FAILED`` on the run and ``failed`` in
    the version's history: the report's ``verdict`` was dropped from the record."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)  # committed inputs: the pass registers its file
    first = record(files, tmp_path)  # a pass registers the file: later verdicts go to its history
    unsure = {"passed": False, "verdict": "inconclusive", "model_sha256": SHA, "failed": ["latency_p95"]}
    files.metrics["gate"].write_text(json.dumps(unsure))
    (tmp_path / "device" / "jetson").mkdir(parents=True)  # a device that could not judge the same file
    (tmp_path / "device" / "jetson" / "gate.json").write_text(json.dumps({**unsure, "failed": ["clocks"]}))
    files.device_reports = tmp_path / "device"
    sent = record(files, tmp_path)
    assert client.get_run(sent["run_id"]).data.tags[VERDICT_TAG] == "⚠ INCONCLUSIVE: latency_p95"
    version = client.get_model_version("edgeproof-detector", "1")
    entries = {e["run_id"]: e["verdicts"] for e in history(version.tags)}
    assert entries[first["run_id"]] == {"build": "passed"}
    assert entries[sent["run_id"]] == {"build": "inconclusive: latency_p95", "jetson": "inconclusive: clocks"}
    assert "build: inconclusive: latency_p95" in version.description and "failed" not in version.description


def test_the_released_models_charts_are_logged_under_its_variant(tmp_path, client):  # noqa: F811
    """An int8 release's run had only the fp32 reference's charts: plots/shipped/pr_curve.png was not
    logged, and would have collided with plots/eval/pr_curve.png (both ``plots/pr_curve.png``)."""
    files = make_run_files(tmp_path)
    for folder, body in (("eval", b"fp32 chart"), ("shipped", b"int8 chart")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pr_curve.png").write_bytes(body)
    files.plots = [tmp_path / "eval" / "pr_curve.png"]
    files.shipped_plots = [tmp_path / "shipped" / "pr_curve.png"]
    files.release = tmp_path / "release.json"
    files.release.write_text(json.dumps({"release_variant": "int8"}))
    run_id = record(files, tmp_path)["run_id"]
    local = Path(client.download_artifacts(run_id, "plots", str(tmp_path / "dl")))
    assert (local / "pr_curve.png").read_bytes() == b"fp32 chart"
    assert (local / "int8" / "pr_curve.png").read_bytes() == b"int8 chart"


def test_dvc_yaml_attaches_the_shipped_charts_the_plots_stage_writes():
    stages = yaml.safe_load((Path(__file__).parents[2] / "dvc.yaml").read_text())["stages"]
    shipped = stages["gate"]["cmd"].split("--track-shipped-plots", 1)[1].split("--")[0].split()
    assert {Path(p).name for p in shipped} == {"pr_curve.png", "f1_confidence.png", "confusion_matrix.png",
                                               "val_mosaic.jpg"}  # fmt: skip
    assert all(p.startswith("plots/shipped/") and f"--shipped {Path(p).parent}" in stages["plots"]["cmd"]
               for p in shipped)  # fmt: skip
    assert "plots/shipped" in stages["gate"]["deps"]


def test_the_logged_model_is_the_registered_version_and_carries_the_metrics(tmp_path, client):  # noqa: F811
    files = make_run_files(tmp_path)
    files.metrics["headline"] = tmp_path / "headline.json"
    files.metrics["headline"].write_text(json.dumps({"mAP50-95": 0.7, "fps": 50.0, "gate_passed": True}))
    git_repo(tmp_path)  # committed inputs: the pass registers its file
    first = record(files, tmp_path)
    files.metrics["gate"].write_text(json.dumps({"passed": False, "model_sha256": SHA, "failed": ["fps"]}))
    files.metrics["headline"].write_text(json.dumps({"mAP50-95": 0.7, "fps": 50.0, "gate_passed": False}))
    second = record(files, tmp_path)
    for sent in (first, second):  # every run's logged model of this file says it is version 1
        (output,) = client.get_run(sent["run_id"]).outputs.model_outputs
        model = client.get_logged_model(output.model_id)
        assert json.loads(model.tags["mlflow.modelVersions"]) == [{"name": "edgeproof-detector", "version": "1"}]
        assert {m.key: m.value for m in model.metrics} == {
            "mAP50-95": 0.7,
            "fps": 50.0,
            "gate_passed": 0.0 + (sent is first),
        }
    version = client.get_model_version("edgeproof-detector", "1")
    assert version.source == f"models:/{client.get_run(first['run_id']).outputs.model_outputs[0].model_id}"


def test_the_run_page_starts_with_the_headline_and_every_number_is_comparable(tmp_path, client):  # noqa: F811
    """The run page lists the metrics of the logged model first (the headline); every other number of
    the reports follows under its file's name, so runs compare on it in MLflow's UI (the guide says so;
    only the headline was logged)."""
    files = make_run_files(tmp_path)
    files.dvc_lock = tmp_path / "dvc.lock"
    files.dvc_lock.write_text(
        yaml.safe_dump({"stages": {"data": {"outs": [{"path": "data/prepared", "md5": "a" * 32}]}}})
    )
    headline = {"mAP50-95": 0.7, "mAP50": 0.91, "fps": 50.0, "latency_p95_ms": 20.0, "gate_passed": True}
    files.metrics["headline"] = tmp_path / "headline.json"
    files.metrics["headline"].write_text(json.dumps(headline))
    run_id = record(files, tmp_path)["run_id"]
    run = client.get_run(run_id)
    (output,) = run.outputs.model_outputs  # MLflow's run page lists the logged model's metrics first
    assert {m.key for m in client.get_logged_model(output.model_id).metrics} == set(headline)
    detail = {"eval.map50_95": 0.7, "eval.map50": 0.91, "bench.latency_ms.p95": 20.0, "eval.class.circle.ap": 0.8}
    assert {k: run.data.metrics.get(k) for k in detail} == detail
    assert {k: v for k, v in run.data.metrics.items() if k in headline} == {**headline, "gate_passed": 1.0}
    assert not any(k.startswith("dvc.") for k in run.data.tags)  # the hashes are one artifact instead
    dvc_outs = Path(client.download_artifacts(run_id, "provenance/dvc_outs.json", str(tmp_path)))
    assert json.loads(dvc_outs.read_text()) == {"data.data/prepared": "a" * 32}
    local = client.download_artifacts(run_id, "reports", str(tmp_path / "dl"))
    assert json.loads((Path(local) / "eval.json").read_text())["map50"] == 0.91  # the detail, in the artifacts
