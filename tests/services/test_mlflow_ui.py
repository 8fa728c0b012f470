"""The MLflow UI, checked in a real browser: what a user sees after the pipeline recorded its runs.

Screenshots land in ``test-artifacts/mlflow-ui/`` (git-ignored; ``$EDGEPROOF_TEST_ARTIFACTS``
moves it); the README's images are cropped, scaled copies of them.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.services.recorded import recorded_repo
from tests.services.servers import ARTIFACTS, browse, chromium, mlflow_server

pytestmark = pytest.mark.services

ML_VIEW = "workflowType=machine_learning"
ASSISTANT_PANEL_PX = 430  # MLflow 3's assistant side panel opens on a browser's first visit; cropped away


def _crop(path, width: int) -> None:
    from PIL import Image

    with Image.open(path) as img:
        img.crop((0, 0, width - ASSISTANT_PANEL_PX, 720)).save(path.with_name(f"{path.stem}-cropped.png"))


def test_runs_view_and_registered_model_page(tmp_path):
    from mlflow.tracking import MlflowClient

    chromium()  # skip early, with the reason, when there is no browser
    repo = tmp_path / "repo"
    repo.mkdir()
    recorded = recorded_repo(repo)
    first = recorded.run_gate()  # clean main: the released model (champion)
    assert first.returncode == 0, first.stderr[-3000:]
    recorded.git("checkout", "-q", "-b", "tighter-latency")  # a branch: its passing model is a candidate
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["gate"]["max_latency_p95_ms"] = float(params["gate"]["max_latency_p95_ms"]) * 0.9
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    recorded.git("commit", "-qam", "tighter latency rule")
    second = recorded.run_gate()
    assert second.returncode == 0, second.stderr[-3000:]

    db = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(db)
    exp = client.get_experiment_by_name("edgeproof")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert len(runs) == 2
    out = ARTIFACTS / "mlflow-ui"
    out.mkdir(parents=True, exist_ok=True)

    with mlflow_server(["--backend-store-uri", db], tmp_path / "ui.log", command="ui") as url:
        run = runs[next(n for n in runs if n.startswith("main@"))]
        pages = {
            "runs": f"{url}/#/experiments/{exp.experiment_id}/runs?{ML_VIEW}",
            "run": f"{url}/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}?{ML_VIEW}",
            "registered-model": f"{url}/#/models/edgeproof-detector?{ML_VIEW}",
        }
        shots = {name: out / f"{name}.png" for name in ("runs", "registered-model")}
        with ThreadPoolExecutor(max_workers=3) as pool:  # the browser mostly waits on the server
            doms = dict(zip(pages, pool.map(browse, pages.values()), strict=True))
            list(pool.map(lambda n: browse(pages[n], screenshot=shots[n], width=1800), shots))

    dom = doms["runs"]
    assert "Model training" in dom and "Runs" in dom
    for name in runs:  # both runs, with the columns MLflow fills from datasets, sources and models
        assert name in dom
    assert "synthetic-val" in dom and "dvc.yaml" in dom
    assert re.search(r"fp32-[0-9a-f]{8}", dom)
    for key in ("eval.map50_95", "eval.map50", "bench.fps_e2e", "bench.latency_ms.p95"):
        assert key in doms["run"]
        assert f"{run.data.metrics[key]:.2f}"[:4] in doms["run"]
    model_dom = doms["registered-model"]
    assert "champion" in model_dom and "candidate" in model_dom and "Version 1" in model_dom
    for shot in shots.values():
        assert shot.stat().st_size > 10_000
        _crop(shot, 1800)
