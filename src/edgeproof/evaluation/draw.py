"""The ``plots`` stage's library: charts and the worst-first mosaic from what ``evaluate`` wrote.

Inputs are ``metrics/eval.json`` (per-class AP50, the operating point's conf and match IoU),
:class:`edgeproof.evaluation.plots.PlotInputs` (PR curves, confusion matrix, deployment detections)
and the prepared dataset (ground truth and images for the mosaic). :func:`draw_plots` runs no model;
:func:`draw_shipped` evaluates the shipped file once when it is not the evaluated one, so its charts
are its own. Every chart is titled with its model (variant and sha256 prefix).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.data.canonical import load_meta
from edgeproof.data.classkeys import ALL, class_keys
from edgeproof.evaluation import figures, operating
from edgeproof.evaluation.matching import truth_by_image
from edgeproof.evaluation.mosaic import mosaic_figure
from edgeproof.evaluation.params import EvaluateParams, PlotsParams
from edgeproof.evaluation.plots import PlotInputs, PlotPaths, write_f1_curve
from edgeproof.io import read_json, require_sha256
from edgeproof.runtime.deploy import DeploySettings

log = logging.getLogger(__name__)


def draw_plots(
    metrics: Mapping[str, Any], inputs: PlotInputs, data_root: Path, paths: PlotPaths, params: PlotsParams
) -> list[Path]:
    """Write the F1 curve data, the PR / F1 / confusion charts and the mosaic to ``paths``; return them."""
    split = str(metrics.get("split", "val"))
    op = metrics["operating_point"]
    conf, match_iou = float(op["conf"]), float(op["match_iou"])
    meta = load_meta(data_root)
    gt = read_json(data_root / "annotations" / f"{split}.json")
    truths = truth_by_image(gt, {c: i for i, c in enumerate(meta.category_ids)})
    matched = operating.match_all(truths, inputs.deploy, len(inputs.names), match_iou)
    f1_rows = operating.f1_curve(matched, inputs.names, params.curve_points)
    # the PR curves' keys: a name two classes share names neither of them there
    keys = class_keys(zip(meta.category_ids, meta.names, strict=True))
    ap50 = {keys.get(int(row["category_id"]), row["name"]): row["ap50"] for row in metrics["per_class"]}
    ap50[ALL] = metrics["map50"]
    images_dir = data_root / "images" / split
    image_paths = {int(im["id"]): images_dir / im["file_name"] for im in gt["images"]}
    model = figures.model_label(metrics)
    files = [
        write_f1_curve(paths.f1_curve, f1_rows),
        figures.pr_figure(paths.pr_png, inputs.recall_points, inputs.pr_curves, ap50, params.dpi, model),
        figures.f1_figure(paths.f1_png, f1_rows, conf, params.dpi, model),
        figures.confusion_figure(
            paths.confusion_png, inputs.confusion, inputs.names, conf, match_iou, params.dpi, model
        ),
        mosaic_figure(
            paths.mosaic,
            operating.image_scores(matched, conf),
            image_paths,
            truths,
            inputs.deploy,
            inputs.names,
            conf,
            match_iou,
            params.mosaic_images,
            params.mosaic_columns,
            params.dpi,
            model,
        ),
    ]
    log.info("wrote %d plot files", len(files))
    return files


def shipped_model(release: Mapping[str, Any]) -> tuple[Path, str]:
    """The file and sha256 ``reports/release.json`` releases for its build profile."""
    entry = release["profiles"][release["build_profile"]]
    return Path(entry["path"]), str(entry["sha256"])


def draw_shipped(
    release: Mapping[str, Any],
    metrics: Mapping[str, Any],
    inputs: PlotInputs,
    data_root: Path,
    folder: Path,
    params: PlotsParams,
    evaluate: EvaluateParams,
    deploy: DeploySettings,
) -> list[Path]:
    """The same charts for the model that ships (e.g. int8), under ``folder``.

    When it is the evaluated file (same sha256) they are drawn from evaluate's outputs; otherwise
    its own evaluation is run (the project's one evaluation, without the cross-checks, which the
    release stage's and evaluate's runs already did), so the shipped charts are never fp32's. A file
    whose sha256 is not the released one is refused (:class:`~edgeproof.io.Sha256Mismatch`).
    """
    from edgeproof.evaluation.run import evaluate_onnx

    model, sha = shipped_model(release)
    if sha != metrics.get("model_sha256"):
        # the file at release.json's path must still be the released one: other bytes there would get the
        # shipped charts (the gate refuses such a file too)
        where = f"reports/release.json for {release['build_profile']}"
        require_sha256(model, sha, where, "rerun `dvc repro` to rebuild the release")
        log.info("plots of the shipped model %s (sha256 %s): evaluating it", model, sha[:12])
        quick = evaluate.model_copy(
            update={"cross_check": evaluate.cross_check.model_copy(update={"independent": False, "ultralytics": False})}
        )
        result = evaluate_onnx(model, data_root, quick, deploy)
        metrics, inputs = result.metrics, result.plot_inputs
    return draw_plots(metrics, inputs, data_root, PlotPaths.under(folder), params)
