"""DVC stage ``plots``: the evaluation charts, F1-vs-confidence data and the worst-first mosaic.

Drawn from evaluate's outputs (metrics, plot inputs) and the prepared dataset, without running the
model, for the evaluated fp32 file (``plots/eval``); and the same charts for the model that ships
(``reports/release.json``, e.g. int8) under ``--shipped``, which costs one evaluation of that file
when it is not the evaluated one. Every chart is titled with its model's variant and sha256 prefix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.evaluation.draw import draw_plots, draw_shipped
from edgeproof.evaluation.plots import PlotInputs, PlotPaths
from edgeproof.folders import atomic_dir
from edgeproof.io import read_json
from stages._common import parser, run

DEFAULTS = PlotPaths.under(Path("plots/eval"))
OUTPUTS = {
    "f1_curve": "precision/recall/F1 against confidence (CSV, dvc plots)",
    "pr_png": "PR curve chart",
    "f1_png": "F1-vs-confidence chart",
    "confusion_png": "confusion matrix chart",
    "mosaic": "worst-first mosaic of val images, predictions vs ground truth",
}


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    paths = PlotPaths(**{key: getattr(args, key) for key in OUTPUTS})
    metrics, inputs = read_json(args.eval), PlotInputs.load(args.plot_inputs)
    draw_plots(metrics, inputs, args.data, paths, params.plots)
    with atomic_dir(args.shipped) as tmp:
        release = read_json(args.release)
        draw_shipped(release, metrics, inputs, args.data, tmp, params.plots, params.evaluate, params.deploy)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--eval", type=Path, required=True, help="evaluate's metrics JSON")
    p.add_argument("--plot-inputs", type=Path, required=True, help="evaluate's plot inputs (.npz)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder (ground truth, images)")
    p.add_argument("--release", type=Path, required=True, help="reports/release.json: the model that ships")
    p.add_argument("--shipped", type=Path, required=True, help="output folder: the charts of the shipped model")
    for key, help_text in OUTPUTS.items():
        default = getattr(DEFAULTS, key)
        p.add_argument(
            f"--{key.replace('_', '-')}", type=Path, default=default, help=f"output: {help_text} [{default}]"
        )
    return run("plots", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
