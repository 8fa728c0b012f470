"""Edge tools: an ONNX model on images, a video or a prepared dataset (``detect``, ``evaluate``,
``benchmark``), and the device side (``device``: this machine's fingerprint, ``device-gate``: the
judgement of device results). Usable without DVC, e.g. on a Jetson runner."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgeproof.cli.common import emit
from edgeproof.config import load_params


def detect_postprocess(args: argparse.Namespace) -> Any:
    """The deploy section of ``--params`` (defaults when the file is absent), with the flags given on top."""
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.postprocess import Postprocess

    deploy = load_params(args.params).deploy if args.params.exists() else DeploySettings()
    flags = {k: getattr(args, k) for k in ("conf", "iou", "max_det", "agnostic") if getattr(args, k) is not None}
    return Postprocess.deployed(DeploySettings.parse({**asdict(deploy), **flags}, "edgeproof detect"))


def _cmd_detect(args: argparse.Namespace) -> int:
    from edgeproof.runtime.detector import Detector
    from edgeproof.runtime.session import SessionSettings

    detector = Detector(args.model, detect_postprocess(args), SessionSettings(tuple(args.providers)))
    if args.video is not None:
        from edgeproof.device.video import run_video

        summary = run_video(
            lambda rgb: detector([rgb])[0], args.video, detector.names, args.out, args.show, args.max_frames
        )
        emit(summary)
        return 0
    if not args.images:
        raise ValueError("detect: give image files or --video SOURCE")
    for path in args.images:
        det = detector.detect_files([path])[0]
        emit(
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
    from edgeproof.training.crosscheck import ultralytics_val  # imports ultralytics only when it runs

    params = load_params(args.params)
    emit(evaluate_onnx(args.model, args.data, params.evaluate, params.deploy, validator=ultralytics_val).metrics)
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from edgeproof.benchmark import run_benchmark
    from edgeproof.data.canonical import split_image_paths

    params = load_params(args.params)
    emit(run_benchmark(args.model, split_image_paths(args.data, "val"), params.benchmark, params.deploy))
    return 0


def _cmd_device(args: argparse.Namespace) -> int:
    from edgeproof.device.fingerprint import device_fingerprint

    emit(device_fingerprint())
    return 0


def _cmd_device_gate(args: argparse.Namespace) -> int:
    from edgeproof.device.gate import run_device_gate

    results = args.results or Path("reports/device") / args.profile
    release = args.release if args.release is not None else Path("reports/release.json")
    if args.release is None and not release.exists():
        release = None  # no release report in this checkout: the chain ends at the bundle
    return run_device_gate(args.bundle, args.profile, results, release, args.baseline)


def add_commands(sub: Any) -> None:
    """Register the edge tools' subcommands."""
    _add_model_commands(sub)
    _add_device_commands(sub)


def _add_model_commands(sub: Any) -> None:
    """``detect``, ``evaluate`` and ``benchmark``: an ONNX model on images, a video or a prepared dataset."""
    s = sub.add_parser("detect", help="run an ONNX model on image files or a video feed at the deploy operating point")
    s.add_argument("model", type=Path)
    s.add_argument("images", type=Path, nargs="*")
    s.add_argument("--video", default=None, help="video file, camera index (0) or RTSP URL (needs OpenCV)")
    s.add_argument("--out", type=Path, default=None, help="write the annotated video here (.mp4 or .avi)")
    s.add_argument("--show", action="store_true", help="show the annotated video in a window (q quits)")
    s.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    s.add_argument("--conf", type=float, help="override deploy.conf of --params")
    s.add_argument("--iou", type=float, help="override deploy.iou of --params")
    s.add_argument("--max-det", type=int, help="override deploy.max_det of --params")
    s.add_argument("--agnostic", action=argparse.BooleanOptionalAction, default=None, help="override deploy.agnostic")
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


def _add_device_commands(sub: Any) -> None:
    """``device`` and ``device-gate``: this machine's fingerprint, and the judgement of device results."""
    sub.add_parser("device", help="print this machine's device fingerprint").set_defaults(func=_cmd_device)
    s = sub.add_parser("device-gate", help="judge device results: exit 0 pass, 1 fail, 3 inconclusive")
    s.add_argument("--bundle", type=Path, default=Path("release/bundle"))
    s.add_argument("--profile", required=True)
    s.add_argument("--results", type=Path, default=None, help="device results (default reports/device/PROFILE)")
    s.add_argument("--release", type=Path, default=None, help="release report (default reports/release.json)")
    s.add_argument("--baseline", type=Path, default=None, help="main's gate.json for this profile (regression rules)")
    s.set_defaults(func=_cmd_device_gate)
