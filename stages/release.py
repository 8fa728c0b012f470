"""DVC stage ``release``: evaluate and benchmark every variant, then choose the release per device profile.

Writes ``reports/release.json`` (the contract the gate, the hand-off bundle and the headline read),
each measured variant's evaluation and benchmark under ``metrics/variants/<variant>/``, and the
latency-vs-mAP plot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.release.build import ReleasePaths, ReleaseSettings, build_release
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    p = load_params(args.params)
    paths = ReleasePaths(
        args.optimized, args.parity, args.eval, args.data, args.variants, args.report, args.plot_csv, args.plot_png
    )
    build_release(paths, ReleaseSettings(p.evaluate, p.benchmark, p.deploy, p.release, p.profiles))


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--optimized", type=Path, required=True, help="metrics/optimize.json (the variants built)")
    p.add_argument("--parity", type=Path, required=True, help="metrics/parity.json")
    p.add_argument("--eval", type=Path, required=True, help="metrics/eval.json (fp32's evaluation, reused)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--variants", type=Path, required=True, help="output: folder of <variant>/{eval,bench}.json")
    p.add_argument("--report", type=Path, required=True, help="output: reports/release.json")
    p.add_argument("--plot-csv", type=Path, required=True, help="output: latency-vs-mAP plot data")
    p.add_argument("--plot-png", type=Path, required=True, help="output: latency-vs-mAP chart")
    return run("release", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
