"""A mosaic of val images, worst first: ground truth against deployment predictions.

Each tile shows one image at the operating point: ground-truth boxes that were found (green, thin
dashes) or missed (orange, dashed), and predictions that are correct (blue) or false positives
(red). Every box has a black outline, so it stays visible on any background; labels sit inside
the image (inside the box at the top edge). Tiles are ordered by per-image F1, lowest first, so
the reviewer sees the failures before the successes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.evaluation.figures import new_figure, save
from edgeproof.evaluation.matching import TP, ImageTruth, match_image
from edgeproof.evaluation.operating import ImageScore
from edgeproof.runtime.postprocess import Detections
from edgeproof.runtime.preprocess import load_image

STYLES = {
    "ground truth, found": {"edgecolor": "limegreen", "ls": (0, (1, 1))},
    "ground truth, missed": {"edgecolor": "orange", "ls": "--"},
    "prediction, correct": {"edgecolor": "deepskyblue", "ls": "-"},
    "prediction, false positive": {"edgecolor": "red", "ls": "-"},
}
LABEL_ROOM = 0.08  # share of the image height a label needs above its box
OUTLINE = 3.0  # black stroke under each coloured box: visible on green, white or dark backgrounds


def _box(ax: Any, xyxy: np.ndarray, style: str, text: str | None = None) -> None:
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = (float(v) for v in xyxy)
    outline = [patheffects.withStroke(linewidth=OUTLINE, foreground="black")]
    box = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, path_effects=outline, **STYLES[style])
    ax.add_patch(box)
    if text:
        # above the box, or inside it where the box touches the top edge (never clipped away)
        bottom, top = ax.get_ylim()  # images: y grows downwards, the top edge is the smaller limit
        inside = y0 - top < LABEL_ROOM * abs(bottom - top)
        label_box = {"facecolor": STYLES[style]["edgecolor"], "alpha": 0.85, "pad": 0.5, "lw": 0.5, "ec": "black"}
        ax.text(x0, y0, text, fontsize=6, color="black", va="top" if inside else "bottom", clip_on=True, bbox=label_box)


def _tile(ax: Any, image: np.ndarray, truth: ImageTruth, det: Detections, names: Sequence[str], thr: float) -> None:
    match = match_image(truth, det.boxes, det.scores, det.classes, thr)
    ax.imshow(image)
    for g in range(len(truth.classes)):
        if not truth.crowd[g]:
            missed = not match.gt_matched[g]
            style = "ground truth, missed" if missed else "ground truth, found"
            _box(ax, truth.boxes[g], style, names[int(truth.classes[g])] if missed else None)
    for d in range(len(det)):
        style = "prediction, correct" if match.status[d] == TP else "prediction, false positive"
        _box(ax, det.boxes[d], style, f"{names[int(det.classes[d])]} {float(det.scores[d]):.2f}")
    ax.set_xticks([])
    ax.set_yticks([])


def mosaic_figure(
    path: Path,
    scores: Sequence[ImageScore],
    images: Mapping[int, Path],
    truths: Mapping[int, ImageTruth],
    deploy: Mapping[int, Detections],
    names: Sequence[str],
    conf: float,
    match_iou: float,
    n_images: int,
    columns: int,
    dpi: int,
    model: str = "",
) -> Path:
    """Draw the ``n_images`` lowest-F1 images of ``scores`` (already worst first) into one image file."""
    chosen = list(scores[:n_images])
    cols = max(1, min(columns, len(chosen)))
    rows = max(1, math.ceil(len(chosen) / cols))
    fig = new_figure(3.2 * cols, 3.4 * rows + 0.6)
    for i, s in enumerate(chosen):
        ax = fig.add_subplot(rows, cols, i + 1)
        det = deploy.get(s.image_id, Detections.empty())
        keep = det.scores > conf
        shown = Detections(det.boxes[keep], det.scores[keep], det.classes[keep])
        _tile(ax, load_image(images[s.image_id]), truths[s.image_id], shown, names, match_iou)
        ax.set_title(f"{images[s.image_id].name}\nF1 {s.f1:.2f}  missed {s.fn}  false+ {s.fp}", fontsize=7)
    if not chosen:
        fig.add_subplot().text(0.5, 0.5, "no images", ha="center")
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    outline = [patheffects.withStroke(linewidth=OUTLINE, foreground="black")]
    handles = [
        Line2D([], [], color=st["edgecolor"], ls=st["ls"], lw=1.5, path_effects=outline, label=k)
        for k, st in STYLES.items()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    head = f"model: {model}\n" if model else ""
    fig.suptitle(f"{head}Worst val images first (per-image F1 at conf > {conf:g}, IoU ≥ {match_iou:g})", fontsize=10)
    return save(fig, path, dpi)
