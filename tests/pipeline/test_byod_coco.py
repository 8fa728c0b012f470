"""Bring your own COCO data: the real `dvc repro` on a generated COCO subset with category ids 1, 3, 90.

The detections and the evaluation must use the original category and image ids, and the source
folder must be byte-for-byte what it was before the run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from edgeproof.evaluation.params import EvaluateParams
from tests.data.builders import CATEGORIES, clean_coco, coco_ann, tree_state
from tests.pipeline.repo_copy import dvc, make_repo

pytestmark = pytest.mark.pipeline

SRC = "data/sources/coco"
IDS = {1, 3, 90}


def _evaluate_overrides() -> dict:
    """Every image gets detections (conf 0) and the optional extras stay off, where this version has them."""
    fields = EvaluateParams.model_fields
    out: dict = {"conf": 0.0}
    if "cross_check" in fields:
        out["cross_check"] = {"independent": False, "ultralytics": False}
    return out


def _coco_with_an_extra_category(root) -> None:
    """ids 1, 3, 90 plus a 'bus' (id 5) the subset leaves out."""
    paths = clean_coco(root, n_train=8, n_val=4)
    for path in paths.values():
        data = json.loads(path.read_text())
        data["categories"] = [*CATEGORIES, {"id": 5, "name": "bus"}]
        for image in data["images"]:
            coco_ann(data["annotations"], image["id"], 5, (60, 5, 20, 15), iscrowd=0, segmentation=[])
        path.write_text(json.dumps(data))


def test_dvc_repro_on_a_coco_subset_keeps_the_original_ids(tmp_path):
    coco = {
        "images": f"{SRC}/train",
        "annotations": f"{SRC}/annotations/instances_train.json",
        "val_images": f"{SRC}/val",
        "val_annotations": f"{SRC}/annotations/instances_val.json",
        "classes": ["person", "car", "toothbrush"],
    }
    overrides = {
        "data": {"source": "coco", "strict": True, "coco": coco},
        "train": {"epochs": 1, "imgsz": 64, "batch": 4, "workers": 0, "cache": False},
        "evaluate": _evaluate_overrides(),
        "plots": {"mosaic_images": 0},
        "benchmark": {"warmup": 1, "runs": 3, "e2e_images": 2},
        "profiles": {"cpu-ci": {"gate": {"min_map50": 0.0, "min_fps": 0.0, "max_latency_p95_ms": 1e6}}},
    }
    root = make_repo(tmp_path / "repo", overrides)
    _coco_with_an_extra_category(root / SRC)
    before = tree_state(root / SRC)

    proc = dvc(root, "repro")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    assert tree_state(root / SRC) == before, "the source dataset was modified"
    val_gt = json.loads((root / SRC / "annotations/instances_val.json").read_text())
    detections = json.loads((root / "reports/detections_val.json").read_text())
    assert detections, "no detections to check the ids of"
    assert {d["category_id"] for d in detections} <= IDS
    assert {d["image_id"] for d in detections} <= {im["id"] for im in val_gt["images"]}
    ev = json.loads((root / "metrics/eval.json").read_text())
    assert {row["category_id"] for row in ev["per_class"]} == IDS
    data = json.loads((root / "metrics/data.json").read_text())
    assert data["category_ids"] == [1, 3, 90] and data["problems_total"] == 0
    assert data["selection"]["boxes_other_classes"] == 12  # the 'bus' boxes, one per image
    prepared = json.loads((root / "data/prepared/annotations/val.json").read_text())
    assert sorted(im["id"] for im in prepared["images"]) == sorted(im["id"] for im in val_gt["images"])
    _check_mlflow_has_the_data_report(root, proc.stdout + proc.stderr)


def _check_mlflow_has_the_data_report(root, log: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("edgeproof")
    assert experiment is not None, "no MLflow record of the run; its log:\n" + log[-12000:]
    (run,) = client.search_runs([experiment.experiment_id])
    # the data report is one of the run's artifacts (the run's metrics are the headline)
    with tempfile.TemporaryDirectory() as tmp:  # not into the repo: its git status is checked
        report = json.loads(Path(client.download_artifacts(run.info.run_id, "reports/data.json", tmp)).read_text())
    assert report["splits"]["train"]["images"] == 8 and report["splits"]["val"]["images"] == 4
    assert report["splits"]["val"]["classes"]["toothbrush"] == 2
    assert report["problems_total"] == 0 and "unreadable_image" in report["problems"]
    # issue 21: a real `dvc repro`: the run starts when it began, and each stage that ran has its time
    stages = {k: v for k, v in run.data.metrics.items() if k.startswith("time_s.")}
    assert {"time_s.data", "time_s.train", "time_s.gate", "time_s.total"} <= set(stages), sorted(stages)
    assert abs((run.info.end_time - run.info.start_time) / 1000 - stages["time_s.total"]) < 0.01
    assert stages["time_s.train"] > 0 and run.data.tags["provenance"]
