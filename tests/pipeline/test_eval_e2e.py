"""The real `dvc repro` with the full evaluation: metric set, three-way cross-check, plots, MLflow.

Runs the whole pipeline on tiny params in a throw-away copy of the repo. The cross-check runs for
real here: pycocotools, faster-coco-eval and ultralytics' validator all score the same ONNX file.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeproof.evaluation.coco import STAT_NAMES
from tests.pipeline.repo_copy import dvc, make_repo

pytestmark = pytest.mark.pipeline

PLOTS = {
    "pr_curve": "plots/eval/pr_curve.csv",
    "f1_curve": "plots/eval/f1_confidence.csv",
    "confusion": "plots/eval/confusion.json",
    "pr_png": "plots/eval/pr_curve.png",
    "f1_png": "plots/eval/f1_confidence.png",
    "confusion_png": "plots/eval/confusion_matrix.png",
    "mosaic": "plots/eval/val_mosaic.jpg",
}
IMAGES = [PLOTS[k] for k in ("pr_png", "f1_png", "confusion_png", "mosaic")]
TEMPLATE = "src/edgeproof/evaluation/dvc_templates/lines_by_class.json"
TOP_LEVEL = [
    {"Evaluation - precision-recall per class at IoU 0.5": {"template": TEMPLATE, "x": "recall",
                                                            "y": {PLOTS["pr_curve"]: "precision"}}},
    {"Evaluation - F1 vs confidence": {"template": TEMPLATE, "x": "confidence", "y": {PLOTS["f1_curve"]: "f1"}}},
    {"Evaluation - confusion matrix": {"template": "confusion", "x": "actual", "y": {PLOTS["confusion"]: "predicted"}}},
    *IMAGES,
]  # fmt: skip


def _integrate(root: Path) -> None:
    """Until dvc.yaml carries the new evaluate stage, apply it to the copy (same as the proposed block)."""
    path = root / "dvc.yaml"
    if "--mosaic" in path.read_text():
        return
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    ev = spec["stages"]["evaluate"]
    ev["cmd"] += " " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in PLOTS.items())
    ev["deps"] += ["src/edgeproof/training/crosscheck.py", "src/edgeproof/training/ultralytics_env.py"]
    ev["outs"] += [{p: {"cache": False}} for p in list(PLOTS.values())[:3]] + IMAGES
    gate = spec["stages"]["gate"]
    gate["cmd"] += " --track-plots " + " ".join(IMAGES)
    gate["deps"] += IMAGES
    spec["plots"] = spec.get("plots", []) + TOP_LEVEL
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = {"plots": {"mosaic_images": 4, "mosaic_columns": 2, "dpi": 50}}
    root = make_repo(tmp_path_factory.mktemp("eval") / "repo", overrides)
    _integrate(root)
    proc = dvc(root, "repro")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


def test_full_metric_set(repo: Path) -> None:
    ev = json.loads((repo / "metrics/eval.json").read_text())
    for name in STAT_NAMES:
        assert name in ev and (ev[name] is None or 0.0 <= ev[name] <= 1.0), name
    assert ev["model_sha256"] and ev["n_images"] == 6 and ev["n_gt"] > 0 and ev["n_detections"] >= 0
    meta = json.loads((repo / "data/prepared/meta.json").read_text())
    assert [r["name"] for r in ev["per_class"]] == meta["names"]
    assert [r["category_id"] for r in ev["per_class"]] == meta["category_ids"]
    assert all({"ap", "ap50", "n_gt"} <= set(r) for r in ev["per_class"])
    op = ev["operating_point"]
    assert op["conf"] == ev["thresholds"]["operating_point"]["conf"] == 0.25 and ev["thresholds"]["conf"] == 0.001
    assert {"precision", "recall", "f1", "tp", "fp", "fn"} <= set(op["overall"])
    counts = op["confusion_matrix"]["counts"]
    assert len(counts) == len(meta["names"]) + 1 and op["confusion_matrix"]["labels"][-1] == "background"
    assert sum(row[a] for row in counts for a in range(len(meta["names"]))) == ev["n_gt"]  # every box once
    speed = ev["speed"]
    assert speed["images_per_s"] > 0 and speed["scored_seconds"] >= speed["seconds"] > 0
    assert speed["ratio_vs_ultralytics"] == round(speed["images_per_s"] / speed["ultralytics_images_per_s"], 3)
    assert speed["streams"] >= 1 and speed["score_workers"] >= 0


def test_three_way_cross_check_ran_and_agrees(repo: Path) -> None:
    cc = json.loads((repo / "metrics/eval.json").read_text())["cross_check"]
    numbers = [cc["pycocotools"], cc["independent"], cc["ultralytics"]]
    assert all(isinstance(v, float) for v in numbers), cc
    assert abs(cc["pycocotools"] - cc["independent"]) <= cc["tolerance"]["independent"] == 0.001
    # like with like: pycocotools on ultralytics' own detections of the same ONNX file
    assert abs(cc["pycocotools"] - cc["ultralytics"]) <= cc["tolerance"]["ultralytics"] == 0.001
    assert cc["detection_agreement"]["share"] >= 0.99, cc["detection_agreement"]
    assert isinstance(cc["ultralytics_own_ap"]["map50_95"], float) and cc["ultralytics_own_ap"]["note"]
    assert cc["passed"] is True and cc["skipped"] == {}


def test_the_cross_check_left_the_data_stage_output_alone(repo: Path) -> None:
    assert not list((repo / "data/prepared").rglob("*.cache"))
    status = dvc(repo, "status", "data")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout


def test_plots_render(repo: Path, tmp_path: Path) -> None:
    for path in PLOTS.values():
        assert (repo / path).stat().st_size > 0, path
    proc = dvc(repo, "plots", "show", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = json.loads(proc.stdout)
    assert not shown.get("errors"), shown.get("errors")
    columns = [  # the columns behind every rendered vega plot, whatever its title
        set(entry["content"]["data"]["values"][0])
        for entries in shown["data"].values()
        for entry in entries
        if entry["type"] == "vega" and entry["content"]["data"]["values"]
    ]
    for wanted in ({"class", "recall", "precision"}, {"class", "confidence", "f1"}, {"actual", "predicted"}):
        assert any(wanted <= c for c in columns), wanted
    assert set(IMAGES) <= set(shown["data"])
    html = dvc(repo, "plots", "show", "-o", str(tmp_path / "html"))
    assert html.returncode == 0, html.stderr[-2000:]
    page = (tmp_path / "html" / "index.html").read_text()
    assert page.count("vegaEmbed(") >= 3  # PR, F1 and confusion (plus training curves)
    static = {p.name for p in (tmp_path / "html" / "static").iterdir()}
    assert {f"workspace_{p.replace('/', '_')}" for p in IMAGES} <= static


def test_a_plot_setting_reruns_the_plots_stage_only(repo: Path) -> None:
    """Params granularity matches cost: a chart setting must not rerun inference."""
    path = repo / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    params["plots"]["dpi"] = 60
    try:
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        status = dvc(repo, "status", "--json")
        assert status.returncode == 0, status.stderr[-2000:]
        changed = set(json.loads(status.stdout))
        assert "plots" in changed and "evaluate" not in changed and "benchmark" not in changed, changed
    finally:
        path.write_text(original)


def test_plot_images_are_mlflow_artifacts(repo: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("edgeproof").experiment_id])[0]
    names = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {Path(p).name for p in IMAGES} <= names
    # the evaluation report is one of the run's artifacts (the run's metrics are the headline)
    with tempfile.TemporaryDirectory() as tmp:  # not into the repo: its git status is checked
        report = json.loads(Path(client.download_artifacts(run.info.run_id, "reports/eval.json", tmp)).read_text())
    assert report["cross_check"]["ultralytics"] is not None
    assert "recall" in report["operating_point"]["overall"]
