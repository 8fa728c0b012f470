"""MLflow keeps every file under its own name: ``eval.*`` is ``metrics/eval.json``, the gated variant's files
are ``variant.eval.*`` / ``reports/variants/<variant>/``, and the gate report is ``reports/gate.json``
whatever the stage called it.

``eval.map50_95`` and the artifact ``reports/eval.json`` were the released int8 file's evaluation, the
fp32 reference's 0.77266 was in no metric (review "records" 6), and a gate run with
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
    apart, metrics/eval.json and metrics/bench.json (the fp32 reference) among the tracked metrics."""
    files = make_run_files(tmp_path)
    (tmp_path / "variants" / "int8").mkdir(parents=True)
    files.variant_metrics = {}
    for name in ("eval", "bench"):
        files.variant_metrics[name] = files.metrics[name].rename(tmp_path / "variants" / "int8" / f"{name}.json")
    for name, data in (("eval", REFERENCE), ("bench", REFERENCE_BENCH)):
        files.metrics[name] = tmp_path / "metrics" / f"{name}.json"
        files.metrics[name].parent.mkdir(exist_ok=True)
        files.metrics[name].write_text(json.dumps(data))
    files.release = tmp_path / "release.json"
    files.release.write_text(json.dumps({"build_profile": "cpu-ci", "release_variant": "int8"}))
    return files


def test_each_file_is_logged_under_its_own_name(tmp_path):
    record = build_record(_with_variant(tmp_path), tmp_path)
    metrics = record["metrics"]
    assert metrics["eval.map50_95"] == 0.77266 and metrics["bench.fps_e2e"] == 119.8  # the files of those names
    assert metrics["variant.eval.map50"] == 0.91 and metrics["variant.bench.latency_ms.p95"] == 20.0  # int8's
    assert metrics["eval.class.circle.ap"] == 0.77 and metrics["variant.eval.class.circle.ap50"] == 0.95
    tags = record["tags"]
    assert (tags["model_sha256"], tags["device"], tags["variant"]) == (SHA, "Test CPU", "int8")  # the gated file's


def test_the_artifacts_keep_the_names_of_their_files(tmp_path):
    files = _with_variant(tmp_path)
    gate = files.metrics["gate"].rename(tmp_path / "gate-cpu.json")
    files.metrics["gate"] = gate
    folder = snapshot(files, tmp_path, tmp_path / "outbox", log_model=False)
    reports = folder / "artifacts" / "reports"
    assert json.loads((reports / "eval.json").read_text()) == REFERENCE
    assert (reports / "variants" / "int8" / "eval.json").read_bytes() == files.variant_metrics["eval"].read_bytes()
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


def test_the_gate_stage_records_the_reference_files_and_the_variant_s_apart():
    """dvc.yaml's gate tracks metrics/eval.json and metrics/bench.json; the gated files go in as the variant's."""
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
    assert sources.metrics["eval"] == Path("metrics/eval.json") and sources.metrics["bench"] == Path(
        "metrics/bench.json"
    )
    assert sources.variant_metrics == {"eval": ev, "bench": bench}
