"""A team server for real: ``mlflow server`` on PostgreSQL with a proxied artifact store, fed over
HTTP by the pipeline's gate stage, read back with ``MlflowClient``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgeproof.tracking.record import HEADLINE, figure_metrics, flatten
from edgeproof.tracking.view import runs_view_path
from tests.services.recorded import recorded_repo
from tests.services.servers import mlflow_server, postgres

pytestmark = pytest.mark.services

DB_PASSWORD, USER_PASSWORD, TOKEN = "db-s3cret-4e1", "user-s3cret-8b2", "tok-s3cret-0c9"


def test_pipeline_records_into_a_postgres_backed_server(tmp_path):
    from mlflow.tracking import MlflowClient

    repo = tmp_path / "repo"
    repo.mkdir()
    recorded = recorded_repo(repo)
    store = tmp_path / "artifact-store"
    with (
        postgres(DB_PASSWORD) as db_uri,
        mlflow_server(
            ["--backend-store-uri", db_uri, "--artifacts-destination", store.as_uri()], tmp_path / "server.log"
        ) as url,
    ):
        # credentials in the URI and a token, as a team member would set them
        secret_uri = url.replace("http://", f"http://edgeproof:{USER_PASSWORD}@")
        proc = recorded.run_gate({"MLFLOW_TRACKING_URI": secret_uri, "MLFLOW_TRACKING_TOKEN": TOKEN})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "registered version 1" in proc.stderr

        client = MlflowClient(url)
        exp = client.get_experiment_by_name("edgeproof")
        assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
        assert f"{url}/{runs_view_path(exp.experiment_id)}" in proc.stderr  # the link, without the credentials
        (run,) = client.search_runs([exp.experiment_id])
        params = yaml.safe_load((repo / "params.yaml").read_text())
        assert run.data.params["train.epochs"] == str(params["train"]["epochs"])
        gate = params["profiles"]["cpu-ci"]["gate"]
        assert run.data.params["profiles.cpu-ci.gate.min_fps"] == str(gate["min_fps"])
        # every file under its own name: eval.* and bench.* are the gated model's, the release variant
        # reports/release.json chose, as every run logged them; reference.eval.* and reference.bench.* are
        # metrics/eval.json and metrics/bench.json (the fp32 reference, artifacts under reports/reference/)
        release = json.loads((repo / "reports" / "release.json").read_text())
        gated = release["variants"][release["release_variant"]]
        recorded_as = {
            "eval": repo / gated["eval_json"],
            "bench": repo / gated["bench_json"],
            "reference.eval": repo / "metrics" / "eval.json",
            "reference.bench": repo / "metrics" / "bench.json",
        }
        files = sorted((repo / "metrics").glob("*.json"))
        assert repo / "metrics" / f"{HEADLINE}.json" in files  # the file `dvc metrics diff` shows, from the gate
        headline = json.loads((repo / "metrics" / f"{HEADLINE}.json").read_text())
        numbers = {k: float(v) for k, v in flatten(headline).items() if isinstance(v, (bool, int, float))}
        assert {k: run.data.metrics[k] for k in numbers} == numbers  # every headline number, exactly (verdict 1/0)
        # every number of the gated model's reports is a metric too, as docs/experiments.md promises:
        # runs compare on them in MLflow's UI (the detail is also in the artifacts, byte for byte)
        detail = {name: json.loads(source.read_text()) for name, source in recorded_as.items()}
        reported = figure_metrics(detail)
        assert {"eval.map50_95", "bench.latency_ms.p95", "reference.eval.map50_95"} <= set(reported)
        assert any(k.startswith("reference.eval.class.") for k in reported)
        assert run.data.metrics["eval.map50_95"] == json.loads(recorded_as["eval"].read_text())["map50_95"]
        assert {k: run.data.metrics.get(k) for k in reported} == reported
        for name, source in recorded_as.items():
            where = f"reports/{name.replace('.', '/')}.json"  # reports/eval.json, reports/reference/eval.json
            local = Path(client.download_artifacts(run.info.run_id, where, str(tmp_path / name)))
            assert local.read_bytes() == source.read_bytes()
        assert run.data.metrics["gate_passed"] == 1.0 and run.data.metrics["mAP50-95"] > 0
        assert run.data.tags["model_sha256"] == recorded.sha and run.info.run_name.startswith("main@")
        # issue 21: the run starts with the (simulated) dvc repro, not with the data stage's output 8 min before
        assert 0 < run.info.end_time - run.info.start_time < 60_000
        reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
        assert "reports/gate.json" in reports
        assert any(store.rglob("gate.json"))  # the server stored the artifacts in its artifact store

        (output,) = run.outputs.model_outputs
        model = client.get_logged_model(output.model_id)
        assert model.tags["model_sha256"] == recorded.sha
        assert {f.path for f in client.list_logged_model_artifacts(output.model_id)} >= {"MLmodel", "model.onnx"}
        version = client.get_model_version_by_alias("edgeproof-detector", "champion")
        assert str(version.version) == "1" and version.source == f"models:/{output.model_id}"
        assert version.tags["model_sha256"] == recorded.sha
        assert version.tags[f"gate.{release['build_profile']}"] == "passed"

        # the record really is in PostgreSQL
        import psycopg2

        with psycopg2.connect(db_uri.replace("+psycopg2", "")) as conn, conn.cursor() as cur:
            cur.execute("select count(*) from runs where run_uuid = %s", (run.info.run_id,))
            assert cur.fetchone() == (1,)

        # no credential in what the server stored or what the stage printed
        stored = [proc.stdout, proc.stderr, json.dumps(run.to_dictionary()), version.description or ""]
        stored += [json.dumps(dict(version.tags)), json.dumps(dict(model.tags))]
        stored += [p.read_text(errors="replace") for p in store.rglob("*") if p.is_file() and p.suffix != ".onnx"]
        for text in stored:
            assert USER_PASSWORD not in text and TOKEN not in text and DB_PASSWORD not in text
        assert not list((repo / ".edgeproof" / "tracking" / "outbox").iterdir())  # sent, nothing waiting
