"""What a finished training reports: the per-epoch curve and the best epoch, as the checkpoint says.

"Best" is read from ``best.pt`` itself: ultralytics stores the validation metrics of the epoch it
saved there (``train_metrics``). edgeproof does not re-derive ultralytics' rule for which epoch that
is (its fitness formula and its tie-breaking have changed between releases); it finds the epoch in
``results.csv`` whose row carries exactly those metrics.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.training.checkpoint import load_checkpoint_dict

log = logging.getLogger(__name__)

# ultralytics' column names -> edgeproof's (the rest: "train/box_loss" -> "train_box_loss")
_RENAME = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "map50",
    "metrics/mAP50-95(B)": "map50_95",
}
SUMMARY_KEYS = ("map50", "map50_95", "precision", "recall")
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
NOTE = (
    "validation metrics are ultralytics' own (PyTorch model, its interpolation); "
    "release decisions use metrics/eval.json (pycocotools on the ONNX artifact)"
)


def clean_key(key: str) -> str:
    """edgeproof's name for an ultralytics metric (``metrics/mAP50(B)`` -> ``map50``)."""
    key = key.strip()
    return _RENAME.get(key, key.replace("/", "_"))


def read_results_csv(path: Path) -> list[dict[str, float]]:
    """Per-epoch rows of ultralytics' ``results.csv`` with clean keys, one per epoch (the last one written)."""
    rows: dict[int, dict[str, float]] = {}
    with path.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {clean_key(key): float(value) for key, value in raw.items()}
            row["epoch"] = int(row["epoch"])
            # an epoch interrupted after its row was written is trained and written again on resume
            rows[row["epoch"]] = row
    return [rows[e] for e in sorted(rows)]


def curve_csv(rows: list[dict[str, float]]) -> str:
    """The curve as CSV text for ``dvc plots`` (the :data:`CURVE_KEYS` columns present)."""
    buf = io.StringIO()
    fields = [k for k in CURVE_KEYS if rows and k in rows[0]]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _as_csv(value: float) -> float:
    """``value`` as ultralytics writes it to results.csv (``%.6g``)."""
    return float(f"{value:.6g}")


def best_from_checkpoint(best_pt: Path, curve: list[dict[str, float]]) -> dict[str, Any]:
    """``{"epoch", "metrics"}`` of the epoch saved in ``best_pt``, from the checkpoint's own ``train_metrics``.

    ``epoch`` is the results.csv epoch whose metrics equal the checkpoint's (the latest if several
    are identical), or None if no row does. Raises ValueError if the checkpoint carries no metrics.
    """
    saved = load_checkpoint_dict(best_pt).get("train_metrics")
    numeric = {
        clean_key(k): _as_csv(float(v))
        for k, v in (saved.items() if isinstance(saved, Mapping) else ())
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "fitness"
    }
    if "map50_95" not in numeric:
        raise ValueError(f"{best_pt}: the checkpoint carries no validation metrics (train_metrics)")
    matches = [
        int(row["epoch"])
        for row in curve
        if all(row.get(k) == v for k, v in numeric.items() if k in row) and "map50_95" in row
    ]
    if not matches:
        log.warning("no epoch of results.csv has the metrics saved in %s; best_epoch unknown", best_pt)
    return {"epoch": matches[-1] if matches else None, "metrics": {k: numeric[k] for k in SUMMARY_KEYS if k in numeric}}


def training_metrics(best_pt: Path, curve: list[dict[str, float]], summary: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics/train.json``: epochs run, the best epoch and its metrics (from ``best_pt``), the final ones."""
    if not curve:
        raise RuntimeError(f"training finished but {best_pt.parent.parent}/results.csv has no epochs")
    best = best_from_checkpoint(best_pt, curve)
    final = curve[-1]
    return {
        "epochs": len(curve),
        "best_epoch": best["epoch"],
        "best": best["metrics"],
        "final": {k: final[k] for k in SUMMARY_KEYS if k in final},
        "train_seconds": round(final.get("time", 0.0), 2),
        "resumed": summary.get("resumed", False),
        "run_fingerprint": summary.get("fingerprint"),
        "note": NOTE,
    }
