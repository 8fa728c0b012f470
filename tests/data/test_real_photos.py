"""Real photographs through `data` and `evaluate`, with ultralytics' validator as the cross-check.

The photos are scikit-image's bundled samples (:mod:`tests.data.photos`: grayscale, EXIF-rotated,
3072 px). The model is deliberately weak: a fixed ONNX graph that outputs the same candidate boxes
for every image (the val boxes projected into the 64 px input, jittered, with made-up scores, plus
random boxes). Its PR curve is jagged, so ultralytics' own AP formula and COCO's differ by more than
0.02 on identical detections: the old check (ultralytics' AP vs pycocotools, tolerance 0.02) would
have failed this correct pipeline. Compared like with like, it passes; a broken pipeline still fails.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeproof.config import parse_params
from edgeproof.data.canonical import DatasetMeta
from edgeproof.data.prepare import prepare
from edgeproof.evaluation import predict
from edgeproof.evaluation.crosscheck import CrossCheckError, Finished, raise_on_disagreement
from edgeproof.evaluation.external import run_ultralytics
from edgeproof.evaluation.run import Evaluation, evaluate_onnx
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.preprocess import boxes_to_input, letterbox_geometry, load_image
from edgeproof.training.crosscheck import ultralytics_val
from tests.conftest import make_fixed_detector
from tests.data.builders import tree_state
from tests.data.photos import write_photo_source

IMGSZ = 64
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ultralytics") is None, reason="ultralytics is not installed (train extra)"
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The data stage's output for the photo source, the weak model, and ultralytics' finished check."""
    repo = tmp_path_factory.mktemp("photos")
    coco = write_photo_source(repo)
    before = tree_state(repo / "data/sources")
    params = parse_params({"data": {"source": "coco", "strict": True, "coco": coco}}).data
    report = prepare(params, repo, repo / "prepared")
    assert tree_state(repo / "data/sources") == before, "the data stage modified the source photos"
    model = _weak_model(repo / "prepared", repo / "weak.onnx")
    evaluate = _params()
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEPROOF_STATE_DIR", str(repo / "state"))
    try:
        ultralytics = run_ultralytics(model, repo / "prepared", evaluate, IMGSZ, ultralytics_val)
    finally:
        mp.undo()
    return {"data": repo / "prepared", "model": model, "report": report, "ultralytics": ultralytics}


def _params() -> Any:
    return parse_params({"evaluate": {"batch": 2, "cross_check": {"ultralytics": True}}}).evaluate


def _weak_model(data: Path, path: Path, seed: int = 0, noise_boxes: int = 10) -> Path:
    gt = json.loads((data / "annotations/val.json").read_text())
    cat_ids = json.loads((data / "meta.json").read_text())["category_ids"]
    rng = np.random.default_rng(seed)
    cols = []
    for im in gt["images"]:
        lb = letterbox_geometry(im["height"], im["width"], (IMGSZ, IMGSZ))
        for a in (a for a in gt["annotations"] if a["image_id"] == im["id"]):
            x, y, w, h = a["bbox"]
            b = boxes_to_input(np.array([[x, y, x + w, y + h]], np.float32), lb)[0] + rng.normal(0, 1.0, 4)
            cls = cat_ids.index(a["category_id"])
            col = np.zeros(6, np.float32)
            col[:4] = [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]]
            col[4 + cls], col[5 - cls] = rng.uniform(0.05, 0.95), rng.uniform(0.0, 0.3)
            cols.append(col)
    for _ in range(noise_boxes):
        col = np.zeros(6, np.float32)
        col[:2], col[2:4], col[4:] = rng.uniform(8, 56, 2), rng.uniform(6, 40, 2), rng.uniform(0, 0.9, 2)
        cols.append(col)
    return make_fixed_detector(path, np.stack(cols, axis=1), IMGSZ, {0: "face", 1: "object"})


def _evaluate(photos: dict[str, Any]) -> Evaluation:
    return evaluate_onnx(
        photos["model"], photos["data"], _params(), DeploySettings(), ultralytics=photos["ultralytics"]
    )


def test_the_data_stage_reads_grayscale_exif_and_large_photos(photos: dict[str, Any]) -> None:
    data, report = photos["data"], photos["report"]
    assert report["problems_total"] == 0 and report["splits"]["val"]["images"] == 6
    val = {im["file_name"]: im for im in json.loads((data / "annotations/val.json").read_text())["images"]}
    exif = val["chelsea_exif6.png"]  # stored sideways with orientation 6: now an upright PNG
    assert (exif["width"], exif["height"]) == (451, 300)
    assert load_image(data / "images/val/chelsea_exif6.png").shape == (300, 451, 3)
    assert load_image(data / "images/val/camera_gray.png").shape == (512, 512, 3)
    assert (val["astronaut_large.jpg"]["width"], val["astronaut_large.jpg"]["height"]) == (3072, 3072)


def test_a_correct_pipeline_passes_although_the_ap_formulas_differ(photos: dict[str, Any]) -> None:
    assert isinstance(photos["ultralytics"], Finished) and photos["ultralytics"].value is not None
    cc = _evaluate(photos).metrics["cross_check"]
    assert cc["detection_agreement"]["share"] >= 0.99 and cc["detection_agreement"]["edgeproof"] > 100
    assert cc["difference"]["ultralytics"] <= 0.001
    assert cc["ultralytics_own_ap"]["difference_vs_pycocotools"] > 0.02  # what the old check compared
    assert 0.05 < cc["pycocotools"] < 0.5  # weak, but not nothing
    assert cc["passed"] is True
    raise_on_disagreement(cc)


def test_shifted_boxes_fail_and_point_at_the_letterbox(photos: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    real = predict.to_coco_results

    def shifted(*args: Any) -> list[dict[str, Any]]:
        return [{**r, "bbox": [r["bbox"][0] + 3.0, *r["bbox"][1:]]} for r in real(*args)]

    monkeypatch.setattr(predict, "to_coco_results", shifted)
    cc = _evaluate(photos).metrics["cross_check"]
    assert cc["passed"] is False
    with pytest.raises(CrossCheckError) as err:
        raise_on_disagreement(cc)
    assert "astronaut.jpg (id 101" in str(err.value) and "letterbox" in str(err.value)


def test_swapped_category_ids_fail_and_point_at_the_ids(
    photos: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DatasetMeta, "class_to_category", lambda self: {0: 27, 1: 11})
    cc = _evaluate(photos).metrics["cross_check"]
    assert cc["passed"] is False and cc["detection_agreement"]["share"] < 0.5
    with pytest.raises(CrossCheckError, match="category ids"):
        raise_on_disagreement(cc)
