"""DVC stage ``benchmark``: latency/FPS of the release candidate with ONNX Runtime on this machine
(end-to-end at the ``deploy`` operating point)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.benchmark import run_benchmark
from edgeproof.config import load_params
from edgeproof.data.canonical import split_image_paths
from edgeproof.io import write_json
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    images = split_image_paths(args.data, "val")
    write_json(args.metrics, run_benchmark(args.model, images, params.benchmark, params.deploy))


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--model", type=Path, required=True, help="the ONNX model to time (the release candidate)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder (val images feed the e2e run)")
    p.add_argument("--metrics", type=Path, required=True, help="output: benchmark JSON")
    return run("benchmark", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
