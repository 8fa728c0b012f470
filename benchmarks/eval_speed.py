"""How fast is edgeproof's evaluation next to ultralytics ``val`` on the same ONNX model and data?

    python benchmarks/eval_speed.py --model models/optimized/fp32.onnx --data data/prepared
    python benchmarks/eval_speed.py --val-images 500   # a larger synthetic val set, for steadier figures

Both run ``--repeat`` times, alternating, with the batch size, confidence, NMS IoU and max_det of
``params.yaml: evaluate``; the medians are reported. Two throughputs per tool:

* **loop images/s** — the evaluation loop (decode, letterbox, inference, NMS, bookkeeping):
  edgeproof's progress-bar loop, and ultralytics from ``on_val_start`` to ``on_val_end`` (which
  also holds its own, much lighter, AP computation);
* **end-to-end images/s** — the whole call: session creation, dataset scan, warm-up and scoring
  (edgeproof: inference, pycocotools, faster-coco-eval and the operating point; ``--with-plots`` adds
  the plots).

``--val-images N`` scores a fresh synthetic val split of N images (``params.yaml: data`` otherwise)
in a temporary folder; the model must have been trained on the synthetic classes.

A JSON and a Markdown report go to ``benchmarks/out/`` (git-ignored). Needs the train extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeproof.config import load_params
from edgeproof.evaluation.crosscheck import Finished
from edgeproof.evaluation.draw import draw_plots
from edgeproof.evaluation.plots import PlotPaths
from edgeproof.evaluation.run import evaluate_onnx
from edgeproof.io import read_json, write_json, write_text
from edgeproof.training.crosscheck import ultralytics_val

OUT = Path(__file__).parent / "out"


def _ours(model: Path, data: Path, params: Any, with_plots: bool) -> dict[str, Any]:
    start = time.perf_counter()
    skip = Finished.skip("not run by the speed benchmark")
    result = evaluate_onnx(model, data, params.evaluate, params.deploy, ultralytics=skip)
    if with_plots:
        with tempfile.TemporaryDirectory() as tmp:
            draw_plots(result.metrics, result.plot_inputs, data, PlotPaths.under(Path(tmp)), params.plots)
    seconds = time.perf_counter() - start
    m = result.metrics
    speed = m["speed"]
    return {
        "loop_images_per_s": speed["images_per_s"],
        "seconds": seconds,
        "map50_95": m["map50_95"],
        "parallelism": {k: speed[k] for k in ("streams", "intra_op_threads", "score_workers")},
    }


def _theirs(model: Path, data: Path, params: Any, imgsz: int) -> dict[str, Any]:
    out = ultralytics_val(
        model, data, imgsz=imgsz, batch=params.batch, conf=params.conf, iou=params.iou, max_det=params.max_det
    )
    return {"loop_images_per_s": out["images_per_s"], "seconds": out["seconds"], "map50_95": out["own_map50_95"]}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run both evaluations ``args.repeat`` times, alternating; return the report dict."""
    all_params = load_params(args.params)
    params = all_params.evaluate
    n_images = len(read_json(args.data / "annotations" / f"{args.split}.json")["images"])
    ours, theirs = [], []
    for i in range(args.repeat):
        ours.append(_ours(args.model, args.data, all_params, args.with_plots))
        theirs.append(_theirs(args.model, args.data, params, args.imgsz))
        print(f"run {i + 1}/{args.repeat}: edgeproof {ours[-1]}  ultralytics {theirs[-1]}", flush=True)
    report: dict[str, Any] = {"model": str(args.model), "data": str(args.data), "n_images": n_images}
    for name, runs in (("edgeproof", ours), ("ultralytics", theirs)):
        seconds = _median(runs, "seconds")
        report[name] = {
            "loop_images_per_s": round(_median(runs, "loop_images_per_s"), 2),
            "end_to_end_images_per_s": round(n_images / seconds, 2),
            "seconds": round(seconds, 3),
            "map50_95": runs[-1]["map50_95"],
        }
    for kind in ("loop_images_per_s", "end_to_end_images_per_s"):
        report[f"ratio_{kind}"] = round(report["edgeproof"][kind] / report["ultralytics"][kind], 3)
    report["settings"] = {
        **ours[-1]["parallelism"],
        "batch": params.batch,
        "conf": params.conf,
        "iou": params.iou,
        "max_det": params.max_det,
        "imgsz": args.imgsz,
        "repeat": args.repeat,
        "with_plots": args.with_plots,
        "providers": params.providers,
    }
    report["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report as a small Markdown table."""
    e, u = report["edgeproof"], report["ultralytics"]
    return "\n".join(
        [
            f"# Evaluation speed: {report['n_images']} images, {report['model']}",
            "",
            "| | edgeproof | ultralytics val | ratio |",
            "|---|---|---|---|",
            f"| loop images/s | {e['loop_images_per_s']} | {u['loop_images_per_s']} "
            f"| {report['ratio_loop_images_per_s']} |",
            f"| end-to-end images/s | {e['end_to_end_images_per_s']} | {u['end_to_end_images_per_s']} "
            f"| {report['ratio_end_to_end_images_per_s']} |",
            f"| mAP50-95 | {e['map50_95']} | {u['map50_95']:.6f} | |",
            "",
            f"Settings: {json.dumps(report['settings'])}; machine: {json.dumps(report['machine'])}",
            "",
        ]
    )


def synthetic_val(params_path: Path, n_val: int, out: Path) -> Path:
    """A synthetic dataset with ``n_val`` val images (and one train image) under ``out``."""
    from edgeproof.data.prepare import prepare

    data = load_params(params_path).data
    synthetic = data.synthetic.model_copy(update={"n_train": 1, "n_val": n_val})
    prepare(data.model_copy(update={"source": "synthetic", "synthetic": synthetic}), Path.cwd(), out)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("models/optimized/fp32.onnx"))
    p.add_argument("--data", type=Path, default=Path("data/prepared"))
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--split", default="val")
    p.add_argument("--imgsz", type=int, default=None, help="model input size (default: train.imgsz)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--val-images", type=int, default=None, help="score a synthetic val set of this size")
    p.add_argument("--with-plots", action="store_true", help="include writing the plots in edgeproof's time")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.imgsz = args.imgsz or load_params(args.params).train.imgsz
    with tempfile.TemporaryDirectory() as tmp:
        if args.val_images:
            args.data = synthetic_val(args.params, args.val_images, Path(tmp) / "prepared")
        report = measure(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    write_json(args.out / f"eval_speed-{stamp}.json", report)
    write_text(args.out / f"eval_speed-{stamp}.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
