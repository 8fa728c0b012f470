"""DVC stage ``evaluate``: full COCO metrics, operating point (at ``deploy``) and cross-checks of the ONNX
artifact, plus the plot data (PR curve, confusion rows) and the inputs of the ``plots`` stage.

Fails (exit 2, both numbers named) when edgeproof's mAP50-95 disagrees with the independent scorer
or with pycocotools on ultralytics' own detections by more than the tolerances in params; the
metrics and plot data are still written, so the disagreement can be inspected.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.evaluation.crosscheck import raise_on_disagreement
from edgeproof.evaluation.plots import write_eval_plot_data
from edgeproof.evaluation.run import evaluate_onnx, results_json
from edgeproof.io import write_json, write_text
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    from edgeproof.training.crosscheck import ultralytics_val  # the train extra's validator, handed in

    params = load_params(args.params)
    result = evaluate_onnx(args.model, args.data, params.evaluate, params.deploy, validator=ultralytics_val)
    write_text(args.detections, results_json(result.detections))
    write_eval_plot_data(result.plot_inputs, args.pr_curve, args.confusion)
    result.plot_inputs.save(args.plot_inputs)
    write_json(args.metrics, result.metrics)
    raise_on_disagreement(result.metrics["cross_check"])


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--model", type=Path, required=True, help="the ONNX model to score (the release candidate)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--metrics", type=Path, required=True, help="output: COCO metrics JSON")
    p.add_argument("--detections", type=Path, required=True, help="output: COCO results JSON")
    p.add_argument("--pr-curve", type=Path, required=True, help="output: per-class PR curves at IoU 0.5 (CSV)")
    p.add_argument("--confusion", type=Path, required=True, help="output: confusion pairs at deploy (JSON)")
    p.add_argument("--plot-inputs", type=Path, required=True, help="output: arrays the plots stage draws (.npz)")
    return run("evaluate", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
