"""MLflow keeps every file under its own name: ``eval.*``/``bench.*`` (and ``reports/eval.json``,
``reports/bench.json``) are the gated file's own evaluation and benchmark, as every run logged them, the
fp32 reference's ``metrics/eval.json``/``metrics/bench.json`` are ``reference.eval.*``/``reference.bench.*``
(``reports/reference/``), and the gate report is ``reports/gate.json`` whatever the stage called it.

The fp32 reference's 0.77266 was in no metric (review "records" 6); the fix for that logged it as
``eval.*`` and the gated file's as ``variant.eval.*``, so ``eval.map50_95`` meant int8 in every run
before and fp32 after, mixed silently in a comparison (review "mlview" 1). A gate run with
``--report-json gate-cpu.json`` was refused for good at sending as if its record were edited (records 9).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeproof.config import TrackParams
from edgeproof.tracking.pipeline import record_pipeline_run
from edgeproof.tracking.record import build_record, snapshot
from tests.unit.test_tracking import SHA, make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env  # noqa: F401

REFERENCE = {
    "map50_95": 0.77266,
    "map50": 0.96,
    "model_sha256": "f" * 64,
    "per_class": [{"name": "circle", "ap": 0.77}],
}
REFERENCE_BENCH = {"fps_e2e": 119.8, "model_sha256": "f" * 64, "device": {"cpu_model": "Reference CPU"}}


def _with_variant(tmp_path: Path):
    """The run's files as the gate stage passes them with --release: the gated variant's own eval/bench
    as eval/bench, metrics/eval.json and metrics/bench.json (the fp32 reference) apart."""
    files = make_run_files(tmp_path)
    (tmp_path / "metrics").mkdir(exist_ok=True)
    files.reference_metrics = {}
    for name, data in (("eval", REFERENCE), ("bench", REFERENCE_BENCH)):
        files.reference_metrics[name] = tmp_path / "metrics" / f"{name}.json"
        files.reference_metrics[name].write_text(json.dumps(data))
    files.release = tmp_path / "release.json"
    files.release.write_text(json.dumps({"build_profile": "cpu-ci", "release_variant": "int8"}))
    return files


def test_each_file_is_logged_under_its_own_name(tmp_path):
    record = build_record(_with_variant(tmp_path), tmp_path)
    metrics = record["metrics"]
    assert metrics["eval.map50"] == 0.91 and metrics["bench.latency_ms.p95"] == 20.0  # int8's, as always
    assert metrics["reference.eval.map50_95"] == 0.77266 and metrics["reference.bench.fps_e2e"] == 119.8  # fp32
    assert metrics["reference.eval.class.circle.ap"] == 0.77 and metrics["eval.class.circle.ap50"] == 0.95
    assert not [k for k in metrics if k.startswith("variant.")]
    tags = record["tags"]
    assert (tags["model_sha256"], tags["device"], tags["variant"]) == (SHA, "Test CPU", "int8")  # the gated file's


def test_the_artifacts_keep_the_names_of_their_files(tmp_path):
    files = _with_variant(tmp_path)
    gate = files.metrics["gate"].rename(tmp_path / "gate-cpu.json")
    files.metrics["gate"] = gate
    folder = snapshot(files, tmp_path, tmp_path / "outbox", log_model=False)
    reports = folder / "artifacts" / "reports"
    assert (reports / "eval.json").read_bytes() == files.metrics["eval"].read_bytes()  # int8's, as always
    assert json.loads((reports / "reference" / "eval.json").read_text()) == REFERENCE
    assert json.loads((reports / "reference" / "bench.json").read_text()) == REFERENCE_BENCH
    assert (reports / "gate.json").read_bytes() == gate.read_bytes()  # the name the outbox check reads
    assert (reports / "release.json").read_bytes() == files.release.read_bytes()


def test_a_gate_report_under_another_name_is_sent_and_registers_the_model(tmp_path, client):  # noqa: F811
    files = make_run_files(tmp_path)
    files.metrics["gate"] = files.metrics["gate"].rename(tmp_path / "gate-cpu.json")
    git_repo(tmp_path)
    result = record_pipeline_run(files, tmp_path, tmp_path / ".state", TrackParams(experiment="unit"))
    assert result["pending"] is False and result.get("error") is None, result
    assert result["sent"][-1]["model_version"] == "1"
    run_id = result["sent"][-1]["run_id"]
    assert {a.path for a in client.list_artifacts(run_id, "reports")} >= {"reports/gate.json"}


def test_the_gate_stage_records_the_gated_files_as_eval_bench_and_the_reference_apart():
    """dvc.yaml's gate tracks metrics/eval.json and metrics/bench.json: the reference's; the gated files
    are eval/bench, as before the reference was tracked."""
    import shlex

    import yaml

    from edgeproof.release.gating import GateRun, _record

    repo = Path(__file__).resolve().parents[2]
    cmd = shlex.split(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["gate"]["cmd"])
    tracked = cmd[cmd.index("--track-metrics") + 1 : cmd.index("--track-curve")]
    assert {"metrics/eval.json", "metrics/bench.json"} <= set(tracked)
    ev, bench = Path("metrics/variants/int8/eval.json"), Path("metrics/variants/int8/bench.json")
    args = GateRun(
        params=Path("params.yaml"),
        report_json=Path("reports/gate.json"),
        report_md=Path("reports/gate.md"),
        headline=Path("metrics/headline.json"),
        train_metrics=Path("metrics/train.json"),
        eval=ev,
        bench=bench,
        track_metrics=[Path(p) for p in tracked],
    )
    sources = _record(args, args.params)
    assert sources.metrics["eval"] == ev and sources.metrics["bench"] == bench
    assert sources.reference_metrics == {"eval": Path("metrics/eval.json"), "bench": Path("metrics/bench.json")}


def test_recording_the_reference_changes_no_key_an_older_record_logged(tmp_path):
    """A record made before the reference was tracked (an outbox record replayed after an upgrade) logs
    the same eval.*/bench.* keys with the same values as one made now: the reference only adds keys."""
    files = _with_variant(tmp_path)
    now = build_record(files, tmp_path)["metrics"]
    files.reference_metrics = {}
    older = build_record(files, tmp_path)["metrics"]
    assert {k: v for k, v in now.items() if not k.startswith("reference.")} == older
    assert older["eval.map50_95"] == 0.7 and older["bench.fps_e2e"] == 50.0
