"""Plot data files for ``dvc plots`` (CSV/JSON, committed to git: text diffs across branches).

* ``pr_curve.csv``      — ``class, recall, precision``: pycocotools' interpolated precision at IoU 0.5
  (the curve AP50 averages; ``all`` = mean over classes, whose mean is mAP50);
* ``f1_confidence.csv`` — ``class, confidence, precision, recall, f1`` of the deployment detections;
* ``confusion.json``    — one ``{"actual", "predicted"}`` row per matched pair, missed box
  (``predicted: background``) and false alarm (``actual: background``): DVC's ``confusion`` template.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.io import write_json, write_text

BACKGROUND = "background"
CLASS_TEMPLATE = Path(__file__).parent / "dvc_templates" / "lines_by_class.json"


@dataclass(frozen=True)
class PlotPaths:
    """Where each plot goes (dvc.yaml passes every path explicitly)."""

    pr_curve: Path
    f1_curve: Path
    confusion: Path
    pr_png: Path
    f1_png: Path
    confusion_png: Path
    mosaic: Path

    @classmethod
    def under(cls, folder: Path) -> PlotPaths:
        """The standard file names inside ``folder`` (what dvc.yaml uses under ``plots/eval``)."""
        names = (
            "pr_curve.csv",
            "f1_confidence.csv",
            "confusion.json",
            "pr_curve.png",
            "f1_confidence.png",
            "confusion_matrix.png",
            "val_mosaic.jpg",  # photos: JPEG is a fraction of the PNG size
        )
        return cls(*(Path(folder) / n for n in names))

    def files(self) -> list[Path]:
        """Every path, data files first."""
        return list(astuple(self))


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def pr_rows(recall_points: np.ndarray, curves: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Long-format PR rows per class plus the class mean ``all``."""
    rows = []
    series = dict(curves)
    if series:
        series["all"] = np.mean(np.stack(list(series.values())), axis=0)
    for name, precision in series.items():
        rows += [
            {"class": name, "recall": round(float(r), 4), "precision": round(float(p), 6)}
            for r, p in zip(recall_points, precision, strict=True)
        ]
    return rows


def confusion_rows(matrix: np.ndarray, names: Sequence[str]) -> list[dict[str, str]]:
    """Expand a ``[predicted, actual]`` count matrix (last index = background) into DVC rows."""
    labels = [*names, BACKGROUND]
    rows = []
    for p, predicted in enumerate(labels):
        for a, actual in enumerate(labels):
            rows += [{"actual": actual, "predicted": predicted}] * int(matrix[p, a])
    return rows


def write_plot_data(
    paths: PlotPaths,
    recall_points: np.ndarray,
    pr_curves: Mapping[str, np.ndarray],
    f1_rows: Sequence[Mapping[str, Any]],
    matrix: np.ndarray,
    names: Sequence[str],
) -> list[Path]:
    """Write the three plot data files atomically; return their paths."""
    rounded = [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()} for row in f1_rows]
    return [
        write_text(paths.pr_curve, _csv(pr_rows(recall_points, pr_curves), ("class", "recall", "precision"))),
        write_text(paths.f1_curve, _csv(rounded, ("class", "confidence", "precision", "recall", "f1"))),
        write_json(paths.confusion, confusion_rows(matrix, names)),
    ]
