"""DVC stage ``export``: ONNX export of best.pt (opset, dynamic batch), fully checked, sha256 recorded.

The input size is ``train.imgsz``; weights trained at another size (their ``train_args.imgsz``) are refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.io import write_json
from edgeproof.paths import state_dir
from edgeproof.training.export import export_onnx
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    facts = export_onnx(
        args.weights, args.out, params.train.imgsz, params.export.opset, params.export.dynamic_batch, state_dir()
    )
    write_json(args.metrics, {**facts, "checker": "onnx.checker full_check passed", "imgsz": params.train.imgsz})


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--weights", type=Path, required=True, help="trained weights (.pt)")
    p.add_argument("--out", type=Path, required=True, help="output: ONNX model")
    p.add_argument("--metrics", type=Path, required=True, help="output: export facts JSON")
    return run("export", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
