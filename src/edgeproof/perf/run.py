"""One side-by-side speed run: same machine, same val images, same image size, batch 1.

Entries are timed in interleaved rounds (every entry once per round, the order rotated from round to
round) and each keeps the median of its rounds, so a burst of load from elsewhere on the machine hits all
entries alike.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeproof.benchmark import BenchmarkParams, run_benchmark
from edgeproof.data.canonical import load_meta, split_image_paths
from edgeproof.device.fingerprint import device_fingerprint
from edgeproof.evaluation.params import EvaluateParams
from edgeproof.evaluation.run import evaluate_onnx
from edgeproof.io import file_mb, read_json
from edgeproof.perf import pipelines, ultra
from edgeproof.perf.anatomy import frame_steps, profile_model
from edgeproof.perf.floor import compute_floor, count_flops, matmul_peak, memory_roof
from edgeproof.perf.targets import ratios, round_entries, spread
from edgeproof.profiles import VARIANTS
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector, read_input_size
from edgeproof.runtime.postprocess import Postprocess
from edgeproof.runtime.preprocess import load_image
from edgeproof.runtime.session import SessionSettings
from edgeproof.runtime.timing import interleaved

log = logging.getLogger(__name__)

NAMES = {
    "ultralytics-pt": "ultralytics YOLO(best.pt).predict",
    "ultralytics-onnx": "ultralytics YOLO(best.onnx).predict, its own ONNX export",
    "ultralytics-onnx+parallel": "ultralytics YOLO(best.onnx).predict, one YOLO per core in parallel",
}
KEYS = ("latency_model_ms_p50", "latency_model_ms_p95", "latency_ms_p50", "latency_ms_p95", "fps_e2e")


@dataclass(frozen=True)
class PerfInputs:
    """What to compare and on what."""

    weights: Path  # models/best.pt
    optimized: Path  # models/optimized (<variant>.onnx)
    data: Path  # data/prepared
    release: Path | None  # reports/release.json, for the release variant's name
    rounds: int = 5
    fp16_reason: str | None = None  # why fp16 is not measured here (None: measure it)


def _variants(inputs: PerfInputs) -> tuple[dict[str, Path], list[dict[str, str]]]:
    found, skipped = {}, []
    for name in VARIANTS:
        path = inputs.optimized / f"{name}.onnx"
        if not path.exists():
            continue
        if name == "fp16" and inputs.fp16_reason:
            skipped.append({"variant": name, "reason": inputs.fp16_reason})
        else:
            found[name] = path
    if "fp32" not in found:
        raise FileNotFoundError(f"{inputs.optimized / 'fp32.onnx'}: not found (run `dvc repro optimize`)")
    return found, skipped


def _edgeproof(path: Path, images: list[Path], bench: BenchmarkParams, deploy: DeploySettings) -> dict[str, float]:
    doc = run_benchmark(path, images, bench, deploy, apart=False)  # the serial figures only, per round
    lat, e2e = doc["latency_model_ms"], doc["latency_ms"]
    return {
        "latency_model_ms_p50": lat["p50"],
        "latency_model_ms_p95": lat["p95"],
        "latency_ms_p50": e2e["p50"],
        "latency_ms_p95": e2e["p95"],
        "fps_e2e": doc["fps_e2e"],
    }


def _best(rounds: list[dict[str, Any]], floor_ms: float) -> dict[str, Any]:
    p50s = [r["latency_model_ms_p50"] for r in rounds if r["latency_model_ms_p50"] is not None]
    p50 = min(p50s) if p50s else None
    return {
        "fps_e2e": max(r["fps_e2e"] for r in rounds),
        "latency_model_ms_p50": p50,
        "latency_vs_floor": p50 / floor_ms if p50 is not None else None,  # unrounded: a target compares it
    }


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds; ``None`` where the entry has no such figure."""
    values = {k: [r[k] for r in rounds if r[k] is not None] for k in KEYS}
    return {k: statistics.median(v) if v else None for k, v in values.items()}  # unrounded: targets compare them


def _kind(key: str, models: Mapping[str, Any]) -> str:
    base = key.split("+")[0]
    side = "ultralytics" if base in models else "edgeproof"
    marks = (
        (pipelines.OVERLAP_INFO, "-overlap-info"),
        (pipelines.OVERLAP, "-overlap"),
        (pipelines.PARALLEL, "-parallel"),
    )
    for mark, suffix in marks:
        if mark in key:
            return side + suffix
    return side


def _maps(
    inputs: PerfInputs,
    models: Mapping[str, Any],
    files: Mapping[str, Path],
    imgsz: int,
    evaluate: EvaluateParams,
    deploy: DeploySettings,
) -> dict[str, float | None]:
    gt = read_json(inputs.data / "annotations" / "val.json")
    cat = load_meta(inputs.data).class_to_category()
    scoring = evaluate.scoring
    # ultralytics' predict has no multi_label (its NMS keeps one class per box): the rest is the same
    thresholds = {"conf": scoring.conf, "iou": scoring.iou, "max_det": scoring.max_det}
    images_dir = inputs.data / "images" / "val"
    maps = {key: ultra.predict_map(m, gt, images_dir, cat, imgsz, thresholds) for key, m in models.items()}
    off = evaluate.cross_check.model_copy(update={"ultralytics": False, "independent": False})
    quick = evaluate.model_copy(update={"cross_check": off})
    maps.update(
        {name: evaluate_onnx(path, inputs.data, quick, deploy).metrics["map50_95"] for name, path in files.items()}
    )
    return maps


def _time_rounds(
    inputs: PerfInputs,
    models: Mapping[str, Any],
    files: Mapping[str, Path],
    images: list[Path],
    imgsz: int,
    timing: ultra.Timing,
    bench: BenchmarkParams,
    deploy: DeploySettings,
) -> dict[str, list[dict[str, float]]]:
    """Time every entry once per round, ``inputs.rounds`` times (:func:`edgeproof.runtime.timing.interleaved`: the
    order turns from round to round); each entry's figures per round."""
    entries: dict[str, Callable[[], dict[str, Any]]] = {
        key: functools.partial(ultra.time_predict, model, images, imgsz, timing) for key, model in models.items()
    }
    entries.update({name: functools.partial(_edgeproof, path, images, bench, deploy) for name, path in files.items()})
    entries.update(pipelines.pipeline_entries(files, _release_name(inputs), images, bench, deploy))
    entries.update(pipelines.ultralytics_parallel(models, images, imgsz, timing))

    def log_round(r: int, results: dict[str, list[dict[str, Any]]]) -> None:
        log.info("round %d/%d: %s", r + 1, inputs.rounds, {k: v[-1]["fps_e2e"] for k, v in results.items()})

    return interleaved(entries, inputs.rounds, on_round=log_round)


def _release_name(inputs: PerfInputs) -> str | None:
    return read_json(inputs.release).get("release_variant") if inputs.release and inputs.release.exists() else None


def _entries(
    rounds: Mapping[str, list[dict[str, float]]],
    models: Mapping[str, Any],
    maps: Mapping[str, float | None],
    floor_ms: float,
) -> list[dict[str, Any]]:
    """One report entry per timed model: its median round, mAP, ratio to the compute floor and best round."""
    entries = []
    for key, runs in rounds.items():
        base = key.split("+")[0]  # a pipeline entry's detections are its serial entry's
        variant = {"ultralytics-pt": "pytorch", "ultralytics-onnx": "fp32"}.get(base, base)
        name = NAMES.get(key, f"edgeproof Detector, {key}")
        if pipelines.OVERLAP_INFO in key:
            name += " (information only: not the split named in advance)"
        entry = {"name": name, "kind": _kind(key, models), "variant": variant, **_median(runs), "map50_95": maps[base]}
        p50 = entry["latency_model_ms_p50"]
        entry["latency_vs_floor"] = p50 / floor_ms if p50 is not None else None  # unrounded: a target compares it
        entry["rounds_fps_e2e"] = [r["fps_e2e"] for r in runs]
        entry["rounds_latency_model_ms_p50"] = [r["latency_model_ms_p50"] for r in runs]
        entry["best_round"] = _best(runs, floor_ms)
        entries.append(entry)
    return entries


def run_perf(
    inputs: PerfInputs, evaluate: EvaluateParams, bench: BenchmarkParams, deploy: DeploySettings, state: Path
) -> dict[str, Any]:
    """The ``reports/perf.json`` document."""
    files, skipped = _variants(inputs)
    val = split_image_paths(inputs.data, "val")
    images = val[: bench.e2e_images]
    bench = bench.model_copy(update={"batch": 1})
    gflop, peaks, roofs = count_flops(files["fp32"]) / 1e9, [matmul_peak()], [memory_roof()]
    imgsz, _ = read_input_size(files["fp32"])  # square: the export's train.imgsz
    timing = ultra.Timing(bench.warmup, bench.runs, deploy.conf, deploy.iou, deploy.max_det, deploy.agnostic)
    with ultra.temp_folder() as tmp:
        models = ultra.load_models(inputs.weights, imgsz, state, Path(tmp))
        maps = _maps(inputs, models, files, imgsz, evaluate, deploy)
        rounds = _time_rounds(inputs, models, files, images, imgsz, timing, bench, deploy)
    anatomy = where_time_goes(files, _release_name(inputs), images, bench, deploy, gflop)
    peaks.append(matmul_peak())  # again after the rounds: the floor takes the best (least disturbed) figure
    roofs.append(memory_roof())
    floor = compute_floor(gflop, peaks)
    entries = _entries(rounds, models, maps, floor["compute_floor_ms"])
    release = _release_name(inputs)
    return {
        "machine": _machine(),
        "image_size": imgsz,
        "compute_floor_ms": floor["compute_floor_ms"],
        "release_variant": release,
        "entries": entries,
        "anatomy": anatomy,
        "details": {
            **floor,
            "rounds": inputs.rounds,
            "images": len(images),
            "frames_per_round": bench.runs,
            "warmup": bench.warmup,
            "batch": 1,
            "not_measured": skipped,
            # what the mAP column is scored on: every val image at the evaluation's thresholds, not the timed frames
            "map_scoring": {**dataclasses.asdict(evaluate.scoring), "images": len(val)},
            "memory_roof": {k: max(r[k] or 0 for r in roofs) or None for k in roofs[0]},
            "ratios": ratios(entries, release),
            "ratios_by_round": spread(
                [ratios(round_entries(entries, r, floor["compute_floor_ms"]), release) for r in range(inputs.rounds)]
            ),
            # the least disturbed round of each entry: on a shared CPU, closest to the machine's own speed
            "ratios_best_round": ratios([{**e, **e["best_round"]} for e in entries], release),
        },
    }


def where_time_goes(
    files: Mapping[str, Path],
    release: str | None,
    images: list[Path],
    bench: BenchmarkParams,
    deploy: DeploySettings,
    gflop: float,
) -> dict[str, Any]:
    """fp32's and the release variant's time per operator type and per frame step (after the timed rounds,
    so the profiler never runs during them)."""
    session = SessionSettings(tuple(bench.providers), bench.graph_optimization, bench.intra_op_threads)
    out = {}
    for name in dict.fromkeys(["fp32", release or "fp32"]):
        if name not in files:
            continue
        detector = Detector(files[name], Postprocess.deployed(deploy), session)
        sample, _ = detector.preprocess([load_image(images[0])])
        out[name] = {
            "model": {
                **profile_model(files[name], sample, session, bench.runs, gflop),
                "file_mb": file_mb(files[name], 2),
            },
            "frame": frame_steps(detector, images, bench.runs),
        }
    return out


def _machine() -> str:
    fp = device_fingerprint()
    return f"{fp.get('cpu_model')}, {fp.get('cpu_cores')} cores, onnxruntime {fp.get('onnxruntime', {}).get('version')}"
