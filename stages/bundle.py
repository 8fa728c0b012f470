"""DVC stage ``bundle``: the Jetson hand-off folder (release model(s), manifest, build results, val subset)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.bundle import build_bundle
from edgeproof.config import load_params
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    build_bundle(
        out=args.out,
        release_path=args.release,
        build_metrics={"eval": args.eval, "bench": args.bench},
        data_dir=args.data,
        deploy=params.deploy,
        profiles=params.profiles,
        scoring=params.evaluate.scoring,
        params=params.bundle,
    )


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--release", type=Path, required=True, help="reports/release.json: the model each profile runs")
    p.add_argument("--eval", type=Path, required=True, help="build-side evaluation JSON (copied into the bundle)")
    p.add_argument("--bench", type=Path, required=True, help="build-side benchmark JSON (copied into the bundle)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset (val images + COCO ground truth)")
    p.add_argument("--out", type=Path, required=True, help="output: the bundle folder")
    return run("bundle", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
