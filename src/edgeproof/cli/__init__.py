"""The ``edgeproof`` command line: the edge-side tools, usable without DVC (e.g. on a Jetson runner).

Results go to stdout as JSON; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
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
        _emit(summary)
        return 0
    if not args.images:
        raise ValueError("detect: give image files or --video SOURCE")
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
    from edgeproof.training.crosscheck import ultralytics_val  # imports ultralytics only when it runs

    params = load_params(args.params)
    _emit(evaluate_onnx(args.model, args.data, params.evaluate, params.deploy, validator=ultralytics_val).metrics)
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from edgeproof.benchmark import run_benchmark
    from edgeproof.data.canonical import split_image_paths

    params = load_params(args.params)
    _emit(run_benchmark(args.model, split_image_paths(args.data, "val"), params.benchmark, params.deploy))
    return 0


def _cmd_device(args: argparse.Namespace) -> int:
    from edgeproof.device.fingerprint import device_fingerprint

    _emit(device_fingerprint())
    return 0


def _cmd_device_gate(args: argparse.Namespace) -> int:
    from edgeproof.device.gate import run_device_gate

    results = args.results or Path("reports/device") / args.profile
    release = args.release if args.release is not None else Path("reports/release.json")
    if args.release is None and not release.exists():
        release = None  # no release report in this checkout: the chain ends at the bundle
    return run_device_gate(args.bundle, args.profile, results, release, args.baseline)


def _cmd_track_replay(args: argparse.Namespace) -> int:
    from edgeproof.paths import state_dir
    from edgeproof.tracking.pipeline import replay

    sent = replay(state_dir(), Path.cwd(), load_params(args.params).track)
    _emit({"sent": sent})
    return 0


def _cmd_model(args: argparse.Namespace) -> int:
    from edgeproof.paths import repo_root
    from edgeproof.tracking import registry
    from edgeproof.tracking.mlflow_sink import connect, default_tracking_uri
    from edgeproof.tracking.redact import describe, install_log_filter

    install_log_filter()
    track = load_params(args.params).track
    alias = args.alias or track.champion_alias
    try:
        client = connect(default_tracking_uri(repo_root(Path.cwd())))
        if args.action == "show":
            _emit(registry.show(client, track.model_name, alias))
        else:
            _emit(registry.rollback(client, track.model_name, alias, args.to))
    except ValueError:
        raise
    except Exception as exc:  # MlflowException, connection errors: one line, credentials removed
        raise RuntimeError(f"{track.model_name}@{alias}: {describe(exc)}") from None
    return 0


def checkout_tools(start: Path) -> Path:
    """The ``tools/`` folder of the edgeproof checkout at or above ``start`` (developer commands live there)."""
    for folder in (start, *start.parents):
        if (folder / "tools" / "reliability" / "__main__.py").is_file() and (folder / "dvc.yaml").is_file():
            return folder / "tools"
    raise FileNotFoundError(
        f"edgeproof reliability is a developer tool: run it inside an edgeproof checkout "
        f"(no tools/reliability/ in {start} or above)"
    )


def _cmd_reliability(args: argparse.Namespace) -> int:
    # A separate process on the checkout's tools/: the installed package never imports its test tooling.
    import os
    import subprocess

    tools = checkout_tools(Path.cwd().resolve())
    path = os.pathsep.join([str(tools), str(tools.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "reliability", *args.unknown]
    return subprocess.run(cmd, env={**os.environ, "PYTHONPATH": path}, check=False).returncode


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


def _add_params_command(sub: Any) -> None:
    """``params``: validate params.yaml."""
    s = sub.add_parser("params", help="validate params.yaml (and --show the effective values)")
    s.add_argument("--show", action="store_true")
    s.set_defaults(func=_cmd_params)


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


def _add_perf_command(sub: Any) -> None:
    """``perf``: the side-by-side speed comparison against ultralytics."""
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


def _add_tracking_commands(sub: Any) -> None:
    """``track`` and ``model``: the MLflow outbox and the model registry."""
    s = sub.add_parser("track", help="MLflow tracking")
    s.add_argument("action", choices=["replay"], help="replay: send records waiting in the outbox")
    s.set_defaults(func=_cmd_track_replay)
    s = sub.add_parser("model", help="the MLflow registry: who holds an alias, and moving it back")
    s.add_argument("action", choices=["show", "rollback"], help="show: the alias holder and its gate record")
    s.add_argument("--alias", default=None, help="registry alias (default: track.champion_alias)")
    s.add_argument("--to", default=None, help="rollback: this version (default: the alias' previous holder)")
    s.set_defaults(func=_cmd_model)


def _add_reliability_command(sub: Any) -> None:
    """``reliability``: bad inputs and injected faults against every entry point (a checkout's developer tool)."""
    s = sub.add_parser(
        "reliability",
        add_help=False,  # --help goes to the tool, which owns the arguments
        help="developer tool, from a checkout: feed bad inputs to every entry point, inject faults; write a report",
    )
    s.set_defaults(func=_cmd_reliability, forwards_unknown=True)  # every argument goes to the tool


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="edgeproof", description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    _add_params_command(sub)
    _add_model_commands(sub)
    _add_device_commands(sub)
    _add_perf_command(sub)
    _add_tracking_commands(sub)
    _add_reliability_command(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgeproof`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    args.unknown = unknown
    if args.unknown and not getattr(args, "forwards_unknown", False):
        parser.error(f"unrecognized arguments: {' '.join(args.unknown)}")
    try:
        return int(args.func(args))
    except (ParamsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
