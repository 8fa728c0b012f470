"""Evaluate an ONNX artifact on a prepared dataset's val split: metrics, cross-check and the plots' inputs."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.canonical import DatasetMeta, load_meta
from edgeproof.data.classkeys import BACKGROUND, keys_in_order
from edgeproof.evaluation import operating, plots
from edgeproof.evaluation.coco import (
    NO_DETECTIONS_WARNING,
    STAT_NAMES,
    CocoScore,
    background_images,
    gt_counts,
    score_coco,
)
from edgeproof.evaluation.crosscheck import Finished, cross_check
from edgeproof.evaluation.external import Validator, independent_skip, run_ultralytics
from edgeproof.evaluation.independent import independent_stats
from edgeproof.evaluation.matching import ImageTruth, truth_by_image
from edgeproof.evaluation.params import EvaluateParams, resolve_parallelism
from edgeproof.evaluation.predict import Decoding, Predictions, predict_coco
from edgeproof.evaluation.shards import ShardedCocoEval
from edgeproof.io import read_json
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.session import SessionSettings

log = logging.getLogger(__name__)

MAP_NOTE = "mAP/AR: pycocotools at a low confidence (conf), multi-label NMS at iou, as COCO tools expect"
OP_NOTE = (
    "deployment postprocessing (params section deploy: best class per box, NMS at iou); a detection counts "
    "when score > conf and it overlaps a same-class box with IoU >= match_iou (COCO matching; crowd regions ignored)"
)


@dataclass(frozen=True)
class Evaluation:
    """Metrics (``metrics/eval.json``), the COCO detections they were computed from, and plot inputs."""

    metrics: dict[str, Any]
    detections: list[dict[str, Any]]
    plot_inputs: plots.PlotInputs


def _check_classes(detector: Detector, names: list[str], model: Path, data_root: Path) -> None:
    """The model must predict the dataset's classes: their count, and (when the model carries its
    names) the same names in the same order, else class indices map to the wrong categories."""
    out = detector.session.get_outputs()[0].shape
    model_classes = out[1] - 4 if isinstance(out[1], int) else (len(detector.names) or None)
    if model_classes is not None and model_classes != len(names):
        raise ValueError(
            f"{model} predicts {model_classes} classes but {data_root}/meta.json lists {len(names)}: "
            "evaluate a model trained on this dataset"
        )
    model_names = [detector.names.get(i) for i in range(len(names))] if detector.names else None
    if model_names is not None and model_names != list(names):
        raise ValueError(
            f"{model} class names {model_names} differ from {data_root}/meta.json names {list(names)} "
            "(by class index): evaluate a model trained on this dataset, with its classes in this order"
        )


def map_postprocess(params: EvaluateParams) -> Postprocess:
    """The mAP set's post-processing (low confidence, multi-label: what COCO tools expect)."""
    return Postprocess.scoring(params.scoring)


def _detector(model: Path, params: EvaluateParams, intra_op_threads: int) -> Detector:
    session = SessionSettings(providers=tuple(params.providers), intra_op_threads=intra_op_threads)
    return Detector(model, map_postprocess(params), session)


def _thresholds(params: EvaluateParams, deploy: DeploySettings) -> dict[str, Any]:
    match_iou = params.operating_point.match_iou
    return {
        "conf": params.conf,
        "iou": params.iou,
        "max_det": params.max_det,
        "multi_label": params.multi_label,
        "note": MAP_NOTE,
        "operating_point": {"conf": deploy.conf, "iou": deploy.iou, "match_iou": match_iou, "note": OP_NOTE},
    }


def _operating(
    preds: Predictions,
    truths: dict[int, ImageTruth],
    meta: DatasetMeta,
    params: EvaluateParams,
    deploy: DeploySettings,
) -> tuple[dict[str, Any], np.ndarray]:
    op, conf, n = params.operating_point, deploy.conf, len(meta.names)
    matched = operating.match_all(truths, preds.deploy, n, op.match_iou)
    point = operating.operating_point(matched, meta.names, meta.category_ids, conf)
    matrix = operating.confusion_matrix(truths, preds.deploy, n, conf, op.match_iou)
    point = {"conf": conf, "iou": deploy.iou, "match_iou": op.match_iou, **point}
    keys = keys_in_order(meta.names, meta.category_ids)  # one label per row and column, even for shared names
    point["confusion_matrix"] = {
        "labels": [*keys, BACKGROUND],
        "index": "counts[predicted][actual]",
        "counts": matrix.tolist(),
    }
    return point, matrix


def val_counts(gt: dict[str, Any]) -> dict[str, int]:
    """What an evaluation is over: images, background images (scored for false positives only), boxes and
    crowd regions (ignored by the mAP); the evaluation writes them and the gate's own scoring holds them."""
    return {
        "n_images": len(gt["images"]),
        "n_background_images": background_images(gt),
        "n_gt": sum(gt_counts(gt).values()),
        "n_gt_crowd": _crowd_boxes(gt),
    }


def _metrics(
    model: Path,
    gt: dict[str, Any],
    scored: _Scored,
    detector: Detector,
    params: EvaluateParams,
    deploy: DeploySettings,
    point: dict[str, Any],
    cross: dict[str, Any],
) -> dict[str, Any]:
    preds, n_images = scored.preds, len(gt["images"])
    warnings = [NO_DETECTIONS_WARNING.format(n=n_images)] if not preds.results else []
    warnings += [f"cross-check {k} skipped: {v}" for k, v in cross["skipped"].items()]
    speed = {
        "images_per_s": round(preds.images_per_s, 2),
        "seconds": round(preds.seconds, 3),
        "batch": preds.batch,
        # session to scores: inference, pycocotools and faster-coco-eval (not ultralytics, not plots)
        "scored_seconds": round(scored.seconds, 3),
        "scored_images_per_s": round(n_images / scored.seconds, 2) if scored.seconds > 0 else 0.0,
        **scored.parallelism,
    }
    theirs = cross.get("ultralytics_images_per_s")  # its validation loop, same model, images and batch
    speed["ultralytics_images_per_s"] = theirs
    speed["ratio_vs_ultralytics"] = round(preds.images_per_s / theirs, 3) if theirs else None
    return {
        **scored.coco.metrics,
        "model_sha256": detector.sha256,
        "model_path": model.as_posix(),
        **val_counts(gt),
        "n_detections": len(preds.results),
        "images_per_s": speed["images_per_s"],
        "speed": speed,
        "providers": detector.providers,
        "thresholds": _thresholds(params, deploy),
        "operating_point": point,
        "cross_check": cross,
        "warnings": warnings,
    }


def _crowd_boxes(gt: dict[str, Any]) -> int:
    return int(sum(1 for a in gt["annotations"] if a.get("iscrowd", 0)))


def _log_summary(metrics: dict[str, Any]) -> None:
    overall, cross = metrics["operating_point"]["overall"], metrics["cross_check"]
    log.info(
        "mAP50-95 %.4f  mAP50 %.4f  (%d detections); at conf %g: P %s R %s F1 %s",
        metrics["map50_95"] or 0,
        metrics["map50"] or 0,
        metrics["n_detections"],
        metrics["operating_point"]["conf"],
        overall["precision"],
        overall["recall"],
        overall["f1"],
    )
    log.info(
        "cross-check mAP50-95: pycocotools %s  independent %s  ultralytics %s",
        cross["pycocotools"],
        cross["independent"],
        cross["ultralytics"],
    )


@dataclass(frozen=True)
class _Scored:
    preds: Predictions
    coco: CocoScore
    independent: Finished
    seconds: float
    parallelism: dict[str, int]


def _predict_and_score(
    model: Path, data_root: Path, split: str, params: EvaluateParams, deploy: DeploySettings, gt: dict[str, Any]
) -> tuple[Detector, _Scored]:
    """Inference, pycocotools and (when it runs) faster-coco-eval: overlapped where cores allow."""
    start = time.perf_counter()
    meta = load_meta(data_root)
    streams, threads, workers = resolve_parallelism(params, len(gt["images"]))
    detector = _detector(model, params, threads)
    _check_classes(detector, meta.names, model, data_root)
    # the deployment set, kept down to the mAP confidence (curves); counted at deploy.conf
    decoding = Decoding(
        detector.postprocess_settings, Postprocess.deployed(deploy, conf=params.conf), meta.class_to_category()
    )
    skip = independent_skip(params)
    with ShardedCocoEval(gt, workers) as scorer:  # pycocotools scores finished shards during inference
        preds = predict_coco(detector, gt, data_root / "images" / split, decoding, params.batch, streams, scorer.add)
        # faster-coco-eval runs in the worker pool while pycocotools accumulates here
        wait = scorer.call(independent_stats, gt, preds.results) if skip is None else None
        coco = score_coco(gt, preds.results, scorer.finish())
        independent = Finished(wait()) if wait is not None else Finished.skip(skip or "")
    parallelism = {"streams": streams, "intra_op_threads": threads, "score_workers": workers}
    return detector, _Scored(preds, coco, independent, time.perf_counter() - start, parallelism)


def evaluate_onnx(
    model: Path,
    data_root: Path,
    params: EvaluateParams,
    deploy: DeploySettings,
    split: str = "val",
    ultralytics: Finished | None = None,
    validator: Validator | None = None,
) -> Evaluation:
    """Score ``model`` on ``data_root``'s ``split`` with the project's own runtime, and cross-check it.

    The operating point is judged at ``deploy`` (what the device ships). ``ultralytics``: an already
    finished ultralytics check; ``None`` runs ``validator`` (ultralytics' own, from the train extra:
    :func:`edgeproof.training.crosscheck.ultralytics_val`) as ``params.cross_check.ultralytics`` says
    (``auto``: when ultralytics is installed).
    """
    meta = load_meta(data_root)
    gt_path = data_root / "annotations" / f"{split}.json"
    gt = read_json(gt_path)
    if not any(not a.get("iscrowd", 0) for a in gt["annotations"]):
        # pycocotools would give -1 (null) for every AP and the cross-check would compare nulls: nothing is measured
        raise ValueError(
            f"{gt_path}: no ground-truth box to score (crowd regions aside) in {len(gt['images'])} image(s): "
            "every AP would be undefined; the data stage refuses such a split (empty_split)"
        )
    detector, scored = _predict_and_score(model, data_root, split, params, deploy, gt)
    preds, coco = scored.preds, scored.coco
    truths = truth_by_image(gt, {c: i for i, c in enumerate(meta.category_ids)})
    point, matrix = _operating(preds, truths, meta, params, deploy)
    if ultralytics is None:
        h, w = detector.input_size
        ultralytics = run_ultralytics(model, data_root, params, h if h == w else [h, w], validator)
    cross = cross_check(
        coco.metrics["map50_95"], gt, preds.results, params.cross_check, scored.independent, ultralytics
    )
    metrics = {**_metrics(model, gt, scored, detector, params, deploy, point, cross), "split": split}
    _log_summary(metrics)
    # charts and plot data key classes as pycocotools' curves do: one series per class
    inputs = plots.PlotInputs(
        keys_in_order(meta.names, meta.category_ids), coco.recall_points, coco.pr_curves, matrix, preds.deploy
    )
    return Evaluation(metrics=metrics, detections=preds.results, plot_inputs=inputs)


def rescore_onnx(model: Path, data_root: Path, params: EvaluateParams, deploy: DeploySettings) -> dict[str, Any]:
    """``model``'s scores on ``data_root``'s val split, as :func:`evaluate_onnx` scores it (same runtime, same
    scoring thresholds, same pycocotools rounding), without the cross-checks, the operating point or plots:
    what the gate recomputes to hold ``eval.json``'s figures to the file they claim to be of. The 12 COCO
    mAP/AR figures, the per-class APs, the val counts and the sha256 of the bytes the session was built from."""
    gt = read_json(data_root / "annotations" / "val.json")
    alone = params.model_copy(update={"cross_check": params.cross_check.model_copy(update={"independent": False})})
    detector, scored = _predict_and_score(model, data_root, "val", alone, deploy, gt)
    classes = [
        {k: row[k] for k in ("category_id", "ap", "ap50", "ap75", "n_gt")} for row in scored.coco.metrics["per_class"]
    ]
    return {
        **{name: scored.coco.metrics.get(name) for name in STAT_NAMES},
        "per_class": classes,
        **val_counts(gt),
        "model_sha256": detector.sha256,
        "providers": detector.providers,
        "seconds": round(scored.seconds, 3),
    }


def results_json(detections: list[dict[str, Any]]) -> str:
    """COCO results file text (compact: it can hold many low-confidence boxes)."""
    return json.dumps(detections, separators=(",", ":")) + "\n"
