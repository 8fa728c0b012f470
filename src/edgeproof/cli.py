"""The ``edgeproof`` command line: the edge-side tools, usable without DVC (e.g. on a Jetson runner).

Results go to stdout as JSON; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from edgeproof.config import ParamsError, load_params

log = logging.getLogger("edgeproof")


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _cmd_params(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    _emit(params.model_dump() if args.show else {"ok": True, "file": str(args.params)})
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from edgeproof.runtime.detector import Detector, DetectorConfig

    config = DetectorConfig(providers=tuple(args.providers), conf=args.conf, iou=args.iou)
    detector = Detector(args.model, config)
    for path in args.images:
        det = detector.detect_files([path])[0]
        _emit(
            {
                "image": str(path),
                "detections": [
                    {
                        "class": int(c),
                        "name": detector.names.get(int(c), str(int(c))),
                        "score": round(float(s), 4),
                        "box_xyxy": [round(float(v), 2) for v in b],
                    }
                    for b, s, c in zip(det.boxes, det.scores, det.classes, strict=True)
                ],
            }
        )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from edgeproof.evaluation.run import evaluate_onnx

    _emit(evaluate_onnx(args.model, args.data, load_params(args.params).evaluate).metrics)
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from edgeproof.benchmark import run_benchmark
    from edgeproof.data.canonical import split_image_paths

    _emit(run_benchmark(args.model, split_image_paths(args.data, "val"), load_params(args.params).benchmark))
    return 0


def _cmd_device(args: argparse.Namespace) -> int:
    from edgeproof.fingerprint import device_fingerprint

    _emit(device_fingerprint())
    return 0


def _cmd_track_replay(args: argparse.Namespace) -> int:
    from edgeproof.paths import state_dir
    from edgeproof.tracking.pipeline import replay

    sent = replay(state_dir(), Path.cwd(), load_params(args.params).track)
    _emit({"sent": sent})
    return 0


def _cmd_perf(args: argparse.Namespace) -> int:
    from edgeproof.io import write_json, write_text
    from edgeproof.paths import state_dir
    from edgeproof.perf.report import render
    from edgeproof.perf.run import PerfInputs, run_perf
    from edgeproof.training.optimize import fp16_judgeable

    params = load_params(args.params)
    update = {"e2e_images": args.images, **({"runs": args.frames} if args.frames else {})}
    bench = params.benchmark.model_copy(update=update)
    inputs = PerfInputs(args.weights, args.optimized, args.data, args.release, args.rounds, fp16_judgeable())
    doc = run_perf(inputs, params.evaluate, bench, params.deploy, state_dir())
    write_json(args.out / "perf.json", doc)
    write_text(args.out / "perf.md", render(doc))
    _emit(doc["details"]["ratios"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="edgeproof", description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("params", help="validate params.yaml (and --show the effective values)")
    s.add_argument("--show", action="store_true")
    s.set_defaults(func=_cmd_params)
    s = sub.add_parser("detect", help="run an ONNX model on image files")
    s.add_argument("model", type=Path)
    s.add_argument("images", type=Path, nargs="+")
    s.add_argument("--conf", type=float, default=0.25)
    s.add_argument("--iou", type=float, default=0.7)
    s.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"])
    s.set_defaults(func=_cmd_detect)
    for name, func, what in (
        ("evaluate", _cmd_evaluate, "pycocotools mAP"),
        ("benchmark", _cmd_benchmark, "latency/FPS"),
    ):
        s = sub.add_parser(name, help=f"{what} of an ONNX model on a prepared dataset (params from --params)")
        s.add_argument("--model", type=Path, required=True)
        s.add_argument("--data", type=Path, default=Path("data/prepared"))
        s.set_defaults(func=func)
    sub.add_parser("device", help="print this machine's device fingerprint").set_defaults(func=_cmd_device)
    s = sub.add_parser(
        "perf", help="side-by-side speed: ultralytics predict vs edgeproof per variant (needs train extra)"
    )
    s.add_argument("--weights", type=Path, default=Path("models/best.pt"))
    s.add_argument("--optimized", type=Path, default=Path("models/optimized"), help="folder of <variant>.onnx")
    s.add_argument("--data", type=Path, default=Path("data/prepared"))
    s.add_argument("--release", type=Path, default=Path("reports/release.json"))
    s.add_argument("--out", type=Path, default=Path("reports"), help="writes perf.json and perf.md here")
    s.add_argument("--images", type=int, default=50, help="val images cycled by every entry")
    s.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each entry keeps its median")
    s.add_argument("--frames", type=int, default=0, help="timed frames per entry per round (0: benchmark.runs)")
    s.set_defaults(func=_cmd_perf)
    s = sub.add_parser("track", help="MLflow tracking")
    s.add_argument("action", choices=["replay"], help="replay: send records waiting in the outbox")
    s.set_defaults(func=_cmd_track_replay)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgeproof`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ParamsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
