"""Energy per frame against mAP for each device profile and variant: DVC plot data (CSV) and a chart (PNG).

Drawn by the gate stage beside the latency chart, from the device reports it already reads
(``<device-reports>/<profile>/{bench,gate}.json``, CI artifacts). Only measured figures appear, and only
those the headline shows (one test, :func:`edgeproof.verdict.shown.shown_device`: the released file's
report, vouched for by its device gate, on a run that did not throttle):

* x is the **gross** energy per end-to-end frame, mJ (``bench.json`` ``energy_mj_per_frame``), used
  only when ``energy.measurable`` is true; from 0, so a 20 % saving looks like 20 %.
* y is mAP50-95: the device gate's own score (``gate.json`` ``measured.map50_95``, when its accuracy
  rules were judged on device detections), else the build-side evaluation of the same variant
  (``reports/release.json`` ``variants.<variant>``, same sha256). ``map_source`` says which
  (``device`` or ``build side``). The y range is at least 0.1 (:func:`edgeproof.release.plot.y_range`).

A profile without a shown energy figure is named under the chart with its reason (the board's
own, e.g. "no powercap interface", "no device report", or why its report is left out); with no point
at all the chart says that nothing was measured. No number is ever estimated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.io import read_json
from edgeproof.release import plot
from edgeproof.release.plot import y_range
from edgeproof.verdict.rules import invalid_reason
from edgeproof.verdict.shown import shown_device

log = logging.getLogger(__name__)

FIELDS = ("profile", "variant", "energy_mj_per_frame", "map50_95", "map_source")
DEVICE, BUILD = "device", "build side"
NO_REPORT = "no device report (bench.json) for this profile"


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(document, None)``, or ``(None, reason)`` when the file is absent or unreadable."""
    if not path.is_file():
        return None, None
    try:
        doc = read_json(path)
    except (OSError, ValueError) as exc:
        return None, f"{path.name} unreadable ({exc})"
    return (doc, None) if isinstance(doc, dict) else (None, f"{path.name} is not a JSON object")


def _map(value: Any) -> float | None:
    """An mAP50-95 that can be one (in [0, 1]), else None."""
    return float(value) if value is not None and invalid_reason("map50_95", value) is None else None


def _device_map(gate: Mapping[str, Any] | None) -> float | None:
    """The device gate's mAP50-95 when it scored the detections on the device (shown_device has held the
    gate to the same file as the bench)."""
    if not gate:
        return None
    value = (gate.get("measured") or {}).get("map50_95")
    rules = [r for r in gate.get("rules") or [] if isinstance(r, Mapping) and r.get("name") in ("map50", "map_drop")]
    on_device = any(str(r.get("source") or "").startswith("device") for r in rules)
    return _map(value) if on_device else None


def _build_map(release: Mapping[str, Any] | None, variant: Any, sha: Any) -> float | None:
    """The build-side mAP50-95 of ``variant`` in ``reports/release.json``, if that same file was evaluated."""
    record = ((release or {}).get("variants") or {}).get(variant)
    if not isinstance(record, Mapping) or not record.get("evaluated"):
        return None
    if sha and record.get("sha256") not in (None, sha):
        return None
    return _map(record.get("map50_95"))


def _point(folder: Path, release: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """One profile's row, or ``(None, why there is none)``."""
    bench, problem = _read(folder / "bench.json")
    if bench is None:
        return None, problem or NO_REPORT
    shown = shown_device(folder.name, bench, folder / "gate.json", release)  # the headline's test
    if shown.left_out is not None:
        return None, shown.left_out
    energy = shown.figures.get("energy_mj_per_frame")
    if energy is None:
        return None, f"bench.json energy {shown.missing['energy_mj_per_frame']}"
    energy = float(energy)
    gate, _ = _read(folder / "gate.json")
    variant, sha = bench.get("variant"), bench.get("model_sha256")
    device = _device_map(gate)
    y, source = (device, DEVICE) if device is not None else (_build_map(release, variant, sha), BUILD)
    if y is None:
        return None, f"{energy:g} mJ/frame measured, but no mAP50-95 for {variant} (device or build side)"
    row = {"profile": folder.name, "variant": variant, "energy_mj_per_frame": energy}
    return {**row, "map50_95": y, "map_source": source}, None


def collect(
    device_reports: Path | None, release: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows with a measured energy figure (one per profile, i.e. per variant it ran) and, for every
    other profile (a device report folder, or a profile ``release`` names), why it has none."""
    root = Path(device_reports) if device_reports is not None else None
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root is not None and root.is_dir() else []
    names = sorted(set(found) | set((release or {}).get("profiles") or {}))
    points, missing = [], {}
    for name in names:
        row, why = _point(root / name, release) if root is not None else (None, NO_REPORT)
        if row is not None:
            points.append(row)
        else:
            missing[name] = str(why)
    log.info("energy plot: %d measured point(s); no energy figure for %s", len(points), sorted(missing) or "none")
    return points, missing


def write_csv(path: Path, data: list[dict[str, Any]]) -> Path:
    """The DVC plot data (``plots/release/energy_map.csv``): exactly the measured points."""
    return plot.write_csv(path, data, FIELDS)


def _notes(not_measured: Mapping[str, str]) -> list[str]:
    import textwrap

    return [textwrap.shorten(f"{name}: {why}", 120) for name, why in sorted(not_measured.items())]


def write_png(path: Path, data: list[dict[str, Any]], not_measured: Mapping[str, str], dpi: int = 100) -> Path:
    """Gross mJ per frame (x, from 0) against mAP50-95 (y), one labelled point per profile and variant;
    profiles without a measured figure named underneath, and a plain statement when there is no point."""
    from edgeproof.evaluation.figures import new_figure, save

    notes = _notes(not_measured)
    fig = new_figure(7, 4.4 + 0.25 * len(notes))
    ax = fig.add_subplot()
    for row in data:
        x, y = row["energy_mj_per_frame"], row["map50_95"]
        ax.scatter(x, y, s=60, marker="o" if row["map_source"] == DEVICE else "s")
        label = f"{row['profile']} · {row['variant']}: {x:g} mJ, mAP {y:.3f} ({row['map_source']})"
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    xs = [r["energy_mj_per_frame"] for r in data]
    ax.set_xlim(0, max(xs) * 1.5 if xs else 1.0)
    ax.set_ylim(*y_range([r["map50_95"] for r in data]))
    if not data:
        ax.text(0.5, 0.5, "no energy measured on any device profile:\nno point to plot", ha="center",
                va="center", transform=ax.transAxes, fontsize=11)  # fmt: skip
    ax.set_xlabel("energy per end-to-end frame, mJ (gross: board input rail over the FPS window)")
    ax.set_ylabel("mAP50-95 (pycocotools; source in each label)")
    ax.set_title("Energy per frame vs mAP50-95, per device profile and variant", fontsize=10)
    ax.grid(alpha=0.3)
    if notes:
        fig.text(0.01, 0.0, "\n".join(f"no energy figure: {n}" for n in notes), fontsize=7, va="bottom")
        fig.get_layout_engine().set(rect=(0, 0.06 * len(notes), 1, 1 - 0.06 * len(notes)))
    return save(fig, path, dpi)


def draw(device_reports: Path | None, release: Path | None, csv_path: Path, png_path: Path) -> list[dict[str, Any]]:
    """Collect the points from the device reports (and ``reports/release.json`` when it exists), write both files."""
    doc, _ = _read(Path(release)) if release is not None else (None, None)
    points, missing = collect(device_reports, doc)
    write_csv(csv_path, points)
    write_png(png_path, points, missing)
    return points
