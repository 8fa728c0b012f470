"""Latency against mAP for each variant: DVC plot data (CSV) and a chart (PNG, also logged to MLflow)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.io import atomic_path, write_text

FIELDS = ("variant", "latency_model_ms_p50", "latency_ms_p95", "fps_e2e", "map50_95", "map50", "released")


def rows(variants: Mapping[str, Mapping[str, Any]], released: str) -> list[dict[str, Any]]:
    """One row per evaluated variant."""
    return [
        {"variant": name, **{k: v.get(k) for k in FIELDS[1:-1]}, "released": name == released}
        for name, v in variants.items()
        if v.get("evaluated")
    ]


def write_csv(path: Path, data: list[dict[str, Any]]) -> Path:
    """The DVC plot data (``plots/release/latency_map.csv``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return write_text(path, buf.getvalue())


def write_png(path: Path, data: list[dict[str, Any]], title: str, dpi: int = 100) -> Path:
    """Model-only p50 latency (x) against mAP50-95 (y), one labelled point per variant."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=dpi)
    for row in data:
        marker = "*" if row["released"] else "o"
        ax.scatter(row["latency_model_ms_p50"], row["map50_95"], s=160 if row["released"] else 60, marker=marker)
        label = f"{row['variant']} ({row['fps_e2e']:.0f} FPS e2e)" + (" released" if row["released"] else "")
        ax.annotate(label, (row["latency_model_ms_p50"], row["map50_95"]), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel("model-only latency p50 (ms)")
    ax.set_ylabel("mAP50-95 (pycocotools)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.margins(x=0.6, y=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
