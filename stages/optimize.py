"""DVC stage ``optimize``: onnxsim + ONNX Runtime graph optimization -> the FP32 release candidate."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.io import write_json
from edgeproof.training.optimize import optimize_onnx
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params).optimize
    args.out.parent.mkdir(parents=True, exist_ok=True)
    facts = optimize_onnx(args.model, args.out, params.simplify, params.graph_optimization)
    write_json(
        args.metrics, {"release_variant": "fp32", "release_path": args.out.as_posix(), "variants": {"fp32": facts}}
    )


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--model", type=Path, required=True, help="exported ONNX model")
    p.add_argument("--out", type=Path, required=True, help="output: optimized FP32 ONNX model")
    p.add_argument("--metrics", type=Path, required=True, help="output: optimization facts JSON")
    return run("optimize", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
