"""``reports/perf.md``: the side-by-side table and the target ratios."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TARGETS = {
    "fp32_fps_vs_ultralytics_onnx": (">=", 1.25, "edgeproof fp32 end-to-end FPS / ultralytics ONNX predict"),
    "release_fps_vs_ultralytics_onnx": (">=", 2.0, "release variant end-to-end FPS / ultralytics ONNX predict"),
    "release_map_drop": ("<=", 0.015, "release variant mAP50-95 drop vs edgeproof fp32"),
    "fp32_latency_vs_floor": ("<=", 1.3, "edgeproof fp32 model-only p50 / compute floor"),
}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _sizes(rate: Mapping[str, Any]) -> list[str]:
    first = (rate.get("measurements") or [{}])[0]
    return [f"{n}²" for n in first.get("by_size", {})]


def _met(op: str, target: float, value: float | None) -> str:
    if value is None:
        return "not measured"
    return "met" if (value >= target if op == ">=" else value <= target) else "**missed**"


def render(doc: Mapping[str, Any]) -> str:
    """Markdown for a ``reports/perf.json`` document."""
    d = doc["details"]
    rate = d["matmul_gflop_per_s"]
    lines = [
        "# Side-by-side speed: edgeproof vs ultralytics",
        "",
        f"Machine: {doc['machine']}. Image size {doc['image_size']} px, batch 1, {d['images']} val images, "
        f"{d['frames_per_round']} frames per entry per round after {d['warmup']} warm-up frames, "
        f"{d['rounds']} interleaved rounds, median of the rounds.",
        "",
        f"Compute floor: {d['gflop']} GFLOP / {rate['best']} GFLOP/s (the best ONNX Runtime float32 MatMul "
        f"throughput measured before and after the rounds, sizes {', '.join(_sizes(rate))}) "
        f"= **{doc['compute_floor_ms']} ms**.",
        f"Release variant: {doc['release_variant'] or 'unknown (no reports/release.json)'}.",
        "",
        "| entry | kind | variant | model-only p50 (ms) | p95 (ms) | p50 / floor | end-to-end FPS | mAP50-95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in doc["entries"]:
        lines.append(
            f"| {e['name']} | {e['kind']} | {e['variant']} | {_fmt(e['latency_model_ms_p50'])} | "
            f"{_fmt(e['latency_model_ms_p95'])} | {_fmt(e.get('latency_vs_floor'))}x | {_fmt(e['fps_e2e'], 1)} | "
            f"{_fmt(e['map50_95'], 4)} |"
        )
    for skipped in d.get("not_measured", []):
        lines.append(
            f"| edgeproof {skipped['variant']} | edgeproof | {skipped['variant']} | not measured here: "
            f"{skipped['reason']} | | | | |"
        )
    best = d.get("ratios_best_round", {})
    lines += ["", "| target | required | median of rounds | | best round | |", "|---|---|---|---|---|---|"]
    for key, (op, target, what) in TARGETS.items():
        value, top = d["ratios"].get(key), best.get(key)
        lines.append(
            f"| {what} | {op} {target} | {_fmt(value, 3)} | {_met(op, target, value)} "
            f"| {_fmt(top, 3)} | {_met(op, target, top)} |"
        )
    lines += [
        "",
        "Model-only: ONNX Runtime `session.run` on a ready tensor (edgeproof), ultralytics' own "
        "`speed['inference']` (ultralytics). End to end: an image file in, boxes out, one frame at a time. "
        "mAP50-95: pycocotools on the val split at the evaluation thresholds for every entry. "
        "Best round: each entry's fastest round (highest FPS, lowest p50), the least disturbed by other "
        "load on a shared machine; the medians are the figures of record.",
    ]
    return "\n".join(lines) + "\n"
