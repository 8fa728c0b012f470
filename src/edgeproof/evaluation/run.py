"""Evaluate an ONNX artifact on a prepared dataset's val split."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeproof.data.canonical import load_meta
from edgeproof.evaluation.coco import coco_evaluate
from edgeproof.evaluation.params import EvaluateParams
from edgeproof.evaluation.predict import predict_coco
from edgeproof.io import read_json, sha256_file
from edgeproof.runtime.detector import Detector, DetectorConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """Metrics (``metrics/eval.json``) and the COCO detections they were computed from."""

    metrics: dict[str, Any]
    detections: list[dict[str, Any]]


def _check_classes(detector: Detector, n_classes: int, model: Path, data_root: Path) -> None:
    out = detector.session.get_outputs()[0].shape
    model_classes = out[1] - 4 if isinstance(out[1], int) else (len(detector.names) or None)
    if model_classes is not None and model_classes != n_classes:
        raise ValueError(
            f"{model} predicts {model_classes} classes but {data_root}/meta.json lists {n_classes}: "
            "evaluate a model trained on this dataset"
        )


def evaluate_onnx(model: Path, data_root: Path, params: EvaluateParams, split: str = "val") -> Evaluation:
    """Score ``model`` with pycocotools on ``data_root``'s ``split`` using the project's own runtime."""
    meta = load_meta(data_root)
    gt = read_json(data_root / "annotations" / f"{split}.json")
    config = DetectorConfig(
        providers=tuple(params.providers),
        conf=params.conf,
        iou=params.iou,
        max_det=params.max_det,
        multi_label=params.multi_label,
    )
    detector = Detector(model, config)
    _check_classes(detector, len(meta.names), model, data_root)
    preds = predict_coco(detector, gt, data_root / "images" / split, meta.class_to_category(), params.batch)
    metrics = coco_evaluate(gt, preds.results)
    metrics.update(
        model_sha256=sha256_file(model),
        model_path=model.as_posix(),
        split=split,
        n_images=len(gt["images"]),
        n_gt=sum(1 for a in gt["annotations"] if not a.get("iscrowd", 0)),
        n_detections=len(preds.results),
        images_per_s=round(preds.images_per_s, 2),
        providers=detector.providers,
        thresholds={
            "conf": params.conf,
            "iou": params.iou,
            "max_det": params.max_det,
            "multi_label": params.multi_label,
            "note": "mAP is computed at a low confidence threshold, as COCO tools expect",
        },
    )
    log.info(
        "mAP50-95 %.4f  mAP50 %.4f  (%d detections)",
        metrics["map50_95"] or 0,
        metrics["map50"] or 0,
        len(preds.results),
    )
    return Evaluation(metrics=metrics, detections=preds.results)


def results_json(detections: list[dict[str, Any]]) -> str:
    """COCO results file text (compact: it can hold many low-confidence boxes)."""
    return json.dumps(detections, separators=(",", ":")) + "\n"
