"""DVC stage ``optimize``: the release candidates (fp32, fp16, int8, int8_trt), checked, then published.

Fails (exit 2, nothing published) when a variant does not pass ``onnx.checker`` or does not load
in ONNX Runtime, or when the FP32 model's raw outputs differ from the PyTorch model's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.data.canonical import split_image_paths
from edgeproof.io import write_json
from edgeproof.paths import state_dir
from edgeproof.training.optimize import Inputs, build_variants
from edgeproof.training.parity import torch_reference
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    inputs = Inputs(
        exported=args.model,
        reference=torch_reference(args.weights, state_dir()),
        train_images=split_image_paths(args.data, "train"),
        val_images=split_image_paths(args.data, "val"),
    )
    facts, parity = build_variants(inputs, args.out, params.optimize, params.deploy)
    write_json(args.parity, parity)
    write_json(args.metrics, {"variants": facts, "reference": "fp32"})


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--model", type=Path, required=True, help="exported ONNX model")
    p.add_argument("--weights", type=Path, required=True, help="trained PyTorch weights (the parity reference)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset (train: calibration, val: parity)")
    p.add_argument("--out", type=Path, required=True, help="output: folder of <variant>.onnx files")
    p.add_argument("--metrics", type=Path, required=True, help="output: optimization facts JSON")
    p.add_argument("--parity", type=Path, required=True, help="output: parity JSON")
    return run("optimize", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
