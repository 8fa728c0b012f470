"""PNG charts of the evaluation (matplotlib, Agg, bundled DejaVu fonts: nothing is fetched).

The same files are DVC image plots and MLflow artifacts. Figures are built on
``matplotlib.figure.Figure`` directly (no pyplot global state) and saved atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.classkeys import ALL, BACKGROUND
from edgeproof.io import atomic_path


def new_figure(width: float, height: float) -> Any:
    """A standalone Agg figure (matplotlib imported here, lazily)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: Path, dpi: int) -> Path:
    """Write ``fig`` to ``path`` atomically, as PNG or (``.jpg``) JPEG quality 90."""
    fmt = "jpg" if path.suffix.lower() in {".jpg", ".jpeg"} else "png"
    extra = {"pil_kwargs": {"quality": 90}} if fmt == "jpg" else {}
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, **extra)
    return path


def model_label(metrics: Mapping[str, Any]) -> str:
    """ "int8 · sha256 b3fd4af86be8": which file a chart shows (the variant is the model file's stem)."""
    path, sha = metrics.get("model_path"), metrics.get("model_sha256")
    variant = Path(str(path)).stem if path else "model"
    return f"{variant} · sha256 {str(sha)[:12]}" if sha else variant


def _model_title(fig: Any, model: str) -> None:
    """Every chart names the model it was drawn for (fp32 charts must not pass for the shipped int8)."""
    if model:
        fig.suptitle(f"model: {model}", fontsize=9, fontweight="bold")


def _class_lines(ax: Any, x: np.ndarray, series: Mapping[str, np.ndarray], labels: Mapping[str, str]) -> None:
    for name, y in series.items():
        bold = name == ALL
        ax.plot(x, y, lw=3 if bold else 1.2, color="black" if bold else None, label=labels.get(name, name))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)


def pr_figure(
    path: Path,
    recall_points: np.ndarray,
    curves: Mapping[str, np.ndarray],
    ap50: Mapping[str, float | None],
    dpi: int,
    model: str = "",
) -> Path:
    """Per-class precision-recall at IoU 0.5 (pycocotools' interpolated curves behind AP50)."""
    fig = new_figure(6.5, 5)
    _model_title(fig, model)
    ax = fig.add_subplot()
    series = dict(curves)
    if series:
        series[ALL] = np.mean(np.stack(list(series.values())), axis=0)
    labels = {k: f"{k}  AP50 {v:.3f}" for k, v in ap50.items() if v is not None}
    _class_lines(ax, recall_points, series, labels)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall per class, IoU 0.5 (pycocotools, mAP detections)", fontsize=10)
    if not series:
        ax.text(0.5, 0.5, "no ground truth", ha="center")
    return save(fig, path, dpi)


def f1_figure(path: Path, rows: Sequence[Mapping[str, Any]], deploy_conf: float, dpi: int, model: str = "") -> Path:
    """F1 against the confidence threshold per class and overall, with the deployment threshold marked."""
    fig = new_figure(6.5, 5)
    _model_title(fig, model)
    ax = fig.add_subplot()
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        series.setdefault(str(row["class"]), []).append((float(row["confidence"]), float(row["f1"])))
    arrays = {k: np.asarray(v) for k, v in series.items()}
    x = next(iter(arrays.values()))[:, 0] if arrays else np.linspace(0, 1, 11)
    _class_lines(ax, x, {k: v[:, 1] for k, v in arrays.items()}, {})
    ax.axvline(deploy_conf, color="tab:red", ls="--", lw=1)
    if ALL in arrays:
        best = arrays[ALL][arrays[ALL][:, 1].argmax()]
        at = np.interp(deploy_conf, arrays[ALL][:, 0], arrays[ALL][:, 1])
        ax.set_title(
            f"F1 vs confidence (deployment NMS)  all: best {best[1]:.3f} at {best[0]:.2f}, "
            f"{at:.3f} at deployment conf {deploy_conf:g}",
            fontsize=9,
        )
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel("F1")
    return save(fig, path, dpi)


def confusion_figure(
    path: Path,
    matrix: np.ndarray,
    names: Sequence[str],
    conf: float,
    match_iou: float,
    dpi: int,
    model: str = "",
) -> Path:
    """Counts ``[predicted, actual]`` with a background row/column; colour = share of the actual column."""
    labels = [*names, BACKGROUND]
    n = len(labels)
    fig = new_figure(1.6 + 0.75 * n, 1.4 + 0.7 * n)
    _model_title(fig, model)
    ax = fig.add_subplot()
    totals = matrix.sum(axis=0, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for p in range(n):
        for a in range(n):
            if matrix[p, a]:
                color = "white" if share[p, a] > 0.6 else "black"
                ax.text(a, p, str(int(matrix[p, a])), ha="center", va="center", fontsize=9, color=color)
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("actual (ground truth)")
    ax.set_ylabel("predicted")
    ax.set_title(f"Confusion matrix at conf > {conf:g}, IoU ≥ {match_iou:g}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of actual column")
    return save(fig, path, dpi)
