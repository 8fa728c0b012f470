"""DVC stage ``evaluate``: full COCO metrics, operating point, cross-checks and plots of the ONNX artifact.

Fails (exit 2, both numbers named) when pycocotools' mAP50-95 disagrees with the independent
scorer or with ultralytics' validator by more than the tolerances in params; the metrics and plots
are still written, so the disagreement can be inspected.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.evaluation.crosscheck import raise_on_disagreement
from edgeproof.evaluation.plots import PlotPaths
from edgeproof.evaluation.run import evaluate_onnx, results_json, write_plots
from edgeproof.io import write_json, write_text
from stages._common import parser, run

DEFAULTS = PlotPaths.under(Path("plots/eval"))
PLOT_ARGS = {
    "pr_curve": "output: per-class PR curves at IoU 0.5 (CSV, dvc plots)",
    "f1_curve": "output: precision/recall/F1 against confidence (CSV, dvc plots)",
    "confusion": "output: confusion pairs at the deployment thresholds (JSON, dvc confusion template)",
    "pr_png": "output: PR curve chart",
    "f1_png": "output: F1-vs-confidence chart",
    "confusion_png": "output: confusion matrix chart",
    "mosaic": "output: worst-first mosaic of val images, predictions vs ground truth",
}


def _body(args: argparse.Namespace) -> None:
    all_params = load_params(args.params)
    params = all_params.evaluate
    result = evaluate_onnx(args.model, args.data, params, all_params.deploy)
    write_text(args.detections, results_json(result.detections))
    write_plots(result, PlotPaths(**{key: getattr(args, key) for key in PLOT_ARGS}), params)
    write_json(args.metrics, result.metrics)
    raise_on_disagreement(result.metrics["cross_check"])


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--model", type=Path, required=True, help="the ONNX model to score (the release candidate)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--metrics", type=Path, required=True, help="output: COCO metrics JSON")
    p.add_argument("--detections", type=Path, required=True, help="output: COCO results JSON")
    for key, help_text in PLOT_ARGS.items():
        default = getattr(DEFAULTS, key)
        p.add_argument(f"--{key.replace('_', '-')}", type=Path, default=default, help=f"{help_text} [{default}]")
    return run("evaluate", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
