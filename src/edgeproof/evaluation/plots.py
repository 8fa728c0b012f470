"""Plot data: the files for ``dvc plots`` and what the ``plots`` stage draws from.

Text files (committed to git: text diffs across branches):

* ``pr_curve.csv``      — ``class, recall, precision``: pycocotools' interpolated precision at IoU 0.5
  (the curve AP50 averages; ``all`` = mean over classes, whose mean is mAP50); written by ``evaluate``;
* ``confusion.json``    — one ``{"actual", "predicted"}`` row per matched pair, missed box
  (``predicted: background``) and false alarm (``actual: background``): DVC's ``confusion`` template;
  written by ``evaluate`` (it depends on the deploy thresholds only);
* ``f1_confidence.csv`` — ``class, confidence, precision, recall, f1`` of the deployment detections;
  written by ``plots`` (``plots.curve_points`` sets its grid).

:class:`PlotInputs` (``reports/plot_inputs_val.npz``, written by ``evaluate``) carries the exact arrays
the charts need: the PR curves and the deployment detections, so changing a plot setting redraws
the charts without running inference again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.classkeys import ALL, BACKGROUND
from edgeproof.io import atomic_path, write_json, write_text
from edgeproof.runtime.postprocess import Detections

CLASS_TEMPLATE = Path(__file__).parent / "dvc_templates" / "lines_by_class.json"


@dataclass(frozen=True)
class PlotPaths:
    """Where the ``plots`` stage writes each file (dvc.yaml passes every path explicitly)."""

    f1_curve: Path
    pr_png: Path
    f1_png: Path
    confusion_png: Path
    mosaic: Path

    @classmethod
    def under(cls, folder: Path) -> PlotPaths:
        """The standard file names inside ``folder`` (what dvc.yaml uses under ``plots/eval``)."""
        names = (
            "f1_confidence.csv",
            "pr_curve.png",
            "f1_confidence.png",
            "confusion_matrix.png",
            "val_mosaic.jpg",  # photos: JPEG is a fraction of the PNG size
        )
        return cls(*(Path(folder) / n for n in names))

    def files(self) -> list[Path]:
        """Every path, data files first."""
        return list(astuple(self))


@dataclass(frozen=True)
class PlotInputs:
    """What evaluate hands the plots stage: class names, PR curves, the confusion matrix and the
    deployment detections per image (boxes in original pixels, kept down to the mAP confidence)."""

    names: list[str]
    recall_points: np.ndarray
    pr_curves: dict[str, np.ndarray]
    confusion: np.ndarray
    deploy: dict[int, Detections]

    def save(self, path: Path) -> Path:
        """Write the arrays losslessly (``.npz``), atomically."""
        ids = sorted(self.deploy)
        dets = [self.deploy[i] for i in ids]
        arrays = {
            "names": np.asarray(self.names, dtype=str),
            "recall_points": self.recall_points,
            "pr_names": np.asarray(list(self.pr_curves), dtype=str),
            "pr_curves": np.stack(list(self.pr_curves.values())) if self.pr_curves else np.zeros((0, 0)),
            "confusion": self.confusion,
            "image_ids": np.asarray(ids, dtype=np.int64),
            "counts": np.asarray([len(d) for d in dets], dtype=np.int64),
            "boxes": np.concatenate([d.boxes for d in dets]) if dets else np.zeros((0, 4), np.float32),
            "scores": np.concatenate([d.scores for d in dets]) if dets else np.zeros(0, np.float32),
            "classes": np.concatenate([d.classes for d in dets]) if dets else np.zeros(0, np.int64),
        }
        with atomic_path(path, suffix=".npz") as tmp, tmp.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: Path) -> PlotInputs:
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as z:
            ends = np.cumsum(z["counts"])
            starts = ends - z["counts"]
            deploy = {
                int(i): Detections(z["boxes"][a:b], z["scores"][a:b], z["classes"][a:b])
                for i, a, b in zip(z["image_ids"], starts, ends, strict=True)
            }
            curves = {str(n): z["pr_curves"][k] for k, n in enumerate(z["pr_names"])}
            return cls([str(n) for n in z["names"]], z["recall_points"], curves, z["confusion"], deploy)


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
        series[ALL] = np.mean(np.stack(list(series.values())), axis=0)
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


def write_eval_plot_data(inputs: PlotInputs, pr_curve: Path, confusion: Path) -> list[Path]:
    """The evaluate stage's plot data files (PR curve CSV, confusion rows), atomically."""
    rows = pr_rows(inputs.recall_points, inputs.pr_curves)
    return [
        write_text(pr_curve, _csv(rows, ("class", "recall", "precision"))),
        write_json(confusion, confusion_rows(inputs.confusion, inputs.names)),
    ]


def write_f1_curve(path: Path, f1_rows: Sequence[Mapping[str, Any]]) -> Path:
    """``f1_confidence.csv`` (values rounded to 6 decimals), atomically."""
    rounded = [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()} for row in f1_rows]
    return write_text(path, _csv(rounded, ("class", "confidence", "precision", "recall", "f1")))
