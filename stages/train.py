"""DVC stage ``train``: seeded, resumable YOLO training -> best.pt, metrics and curves."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.io import copy_file, write_json, write_text
from edgeproof.paths import state_dir
from edgeproof.training.train import train
from stages._common import parser, run

CURVE_KEYS = (
    "epoch",
    "map50",
    "map50_95",
    "precision",
    "recall",
    "train_box_loss",
    "train_cls_loss",
    "train_dfl_loss",
    "val_box_loss",
    "val_cls_loss",
    "val_dfl_loss",
    "time",
)


def _curve_csv(rows: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=[k for k in CURVE_KEYS if rows and k in rows[0]], extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params).train
    result = train(params, args.data, state_dir())
    curve = result.curve
    if not curve:
        raise RuntimeError(f"training finished but {result.best_pt.parent.parent}/results.csv has no epochs")
    # ties go to the earliest epoch, as ultralytics keeps the first best.pt it saw
    best = max(curve, key=lambda r: (r.get("map50_95", 0.0), -r["epoch"]))
    final = curve[-1]
    metrics = {
        "epochs": len(curve),
        "best_epoch": int(best["epoch"]),
        "best": {k: best[k] for k in ("map50", "map50_95", "precision", "recall") if k in best},
        "final": {k: final[k] for k in ("map50", "map50_95", "precision", "recall") if k in final},
        "train_seconds": round(final.get("time", 0.0), 2),
        "resumed": result.summary.get("resumed", False),
        "run_fingerprint": result.summary.get("fingerprint"),
        "note": "validation metrics are ultralytics' own (PyTorch model, its interpolation); "
        "release decisions use metrics/eval.json (pycocotools on the ONNX artifact)",
    }
    write_text(args.curve, _curve_csv(curve))
    write_json(args.metrics, metrics)
    copy_file(result.best_pt, args.model)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--model", type=Path, required=True, help="output: best weights (.pt)")
    p.add_argument("--metrics", type=Path, required=True, help="output: training metrics JSON")
    p.add_argument("--curve", type=Path, required=True, help="output: per-epoch curve CSV (dvc plots)")
    return run("train", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
