"""DVC stage ``evaluate``: pycocotools mAP of the deployed ONNX artifact on the val split."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.evaluation.run import evaluate_onnx, results_json
from edgeproof.io import write_json, write_text
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params).evaluate
    result = evaluate_onnx(args.model, args.data, params)
    write_text(args.detections, results_json(result.detections))
    write_json(args.metrics, result.metrics)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--model", type=Path, required=True, help="the ONNX model to score (the release candidate)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--metrics", type=Path, required=True, help="output: COCO metrics JSON")
    p.add_argument("--detections", type=Path, required=True, help="output: COCO results JSON")
    return run("evaluate", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
