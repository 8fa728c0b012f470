"""Latency against mAP for each variant: DVC plot data (CSV) and a chart (PNG, also logged to MLflow).

Both axes are honest: x is the end-to-end time per frame (1000 / end-to-end FPS, the same quantity
as the FPS in the labels and the gate), y is mAP50-95 on a range of at least 0.1 that starts from
the data, so a 0.001 difference looks like one. Variants built but not measured here (e.g. fp16
without a GPU provider) are named under the chart with the reason, never silently missing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeproof.io import write_text

FIELDS = (
    "variant",
    "latency_e2e_ms",
    "latency_model_ms_p50",
    "latency_ms_p95",
    "fps_e2e",
    "map50_95",
    "map50",
    "released",
)
MIN_SPAN = 0.1  # smallest mAP range on the y-axis


def rows(variants: Mapping[str, Mapping[str, Any]], released: str) -> list[dict[str, Any]]:
    """One row per evaluated variant; ``latency_e2e_ms`` is 1000 / ``fps_e2e`` (None when unmeasured)."""
    out = []
    for name, v in variants.items():
        if not v.get("evaluated"):
            continue
        fps = v.get("fps_e2e")
        e2e = round(1000.0 / fps, 3) if isinstance(fps, (int, float)) and fps > 0 else None
        row = {"variant": name, "latency_e2e_ms": e2e, **{k: v.get(k) for k in FIELDS[2:-1]}}
        out.append({**row, "released": name == released})
    return out


def unmeasured(variants: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Variants built but not measured here, with the reason ``reports/release.json`` gives."""
    return {name: str(v.get("reason") or "not measured") for name, v in variants.items() if not v.get("evaluated")}


def write_csv(path: Path, data: list[dict[str, Any]], fields: Sequence[str] = FIELDS) -> Path:
    """DVC plot data (``plots/release/latency_map.csv``; the energy chart passes its own ``fields``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return write_text(path, buf.getvalue())


def y_range(values: list[float]) -> tuple[float, float]:
    """An mAP range of at least :data:`MIN_SPAN` around ``values``, within [0, 1]."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(0.0, MIN_SPAN - (hi - lo)) / 2 + 0.01
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    if hi - lo < MIN_SPAN:  # clipped at 0 or 1: extend the other way
        lo, hi = (0.0, MIN_SPAN) if lo == 0.0 else (1.0 - MIN_SPAN, 1.0)
    return lo, hi


def write_png(
    path: Path, data: list[dict[str, Any]], title: str, dpi: int = 100, not_measured: Mapping[str, str] | None = None
) -> Path:
    """End-to-end ms per frame (x) against mAP50-95 (y), one labelled point per measured variant."""
    from edgeproof.evaluation.figures import new_figure, save

    notes = [f"{name}: not measured here: {reason}" for name, reason in sorted((not_measured or {}).items())]
    fig = new_figure(7, 4.4 + 0.25 * len(notes))
    ax = fig.add_subplot()
    points = [r for r in data if r.get("latency_e2e_ms") is not None and r.get("map50_95") is not None]
    for row in points:  # labels in a legend, by colour: beside the points they overlapped (int8 on fp32)
        x, y = row["latency_e2e_ms"], row["map50_95"]
        label = f"{row['variant']}: {row['fps_e2e']:.0f} FPS, mAP {y:.3f}" + (" (released)" if row["released"] else "")
        ax.scatter(x, y, s=160 if row["released"] else 60, marker="*" if row["released"] else "o", label=label)
    if points:
        ax.legend(fontsize=8, loc="best")
    xs = [r["latency_e2e_ms"] for r in points]
    ax.set_xlim(0, max(xs) * 1.5 if xs else 1.0)  # from 0: a 20 % speed-up looks like 20 %
    ax.set_ylim(*y_range([r["map50_95"] for r in points]))
    ax.set_xlabel("end-to-end time per frame, ms (= 1000 / end-to-end FPS; read, decode, infer, NMS)")
    ax.set_ylabel("mAP50-95 (pycocotools)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if notes:
        import textwrap

        fig.text(0.01, 0.0, "\n".join(textwrap.shorten(n, 120) for n in notes), fontsize=7, va="bottom")
        fig.get_layout_engine().set(rect=(0, 0.06 * len(notes), 1, 1 - 0.06 * len(notes)))
    return save(fig, path, dpi)
