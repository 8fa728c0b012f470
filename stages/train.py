"""DVC stage ``train``: seeded, resumable YOLO training -> best.pt, metrics and curves."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.io import atomic_path, write_json, write_text
from edgeproof.paths import state_dir
from edgeproof.training.checkpoint import reproducible_checkpoint
from edgeproof.training.results import curve_csv, training_metrics
from edgeproof.training.train import train
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params).train
    state = state_dir()
    result = train(params, args.data, state)
    metrics = training_metrics(result.best_pt, result.curve, result.summary)
    best = reproducible_checkpoint(result.best_pt, state)
    write_text(args.curve, curve_csv(result.curve))
    write_json(args.metrics, metrics)
    with atomic_path(args.model, suffix=".pt") as tmp:
        tmp.write_bytes(best)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--model", type=Path, required=True, help="output: best weights (.pt)")
    p.add_argument("--metrics", type=Path, required=True, help="output: training metrics JSON")
    p.add_argument("--curve", type=Path, required=True, help="output: per-epoch curve CSV (dvc plots)")
    return run("train", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
