"""Edge tools: an ONNX model on images, a video or a prepared dataset (``detect``, ``evaluate``,
``benchmark``), and the device side (``device``: this machine's fingerprint, ``device-gate``: the
judgement of device results). Usable without DVC, e.g. on a Jetson runner."""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgeproof.cli.common import DEFAULT_PARAMS, emit
from edgeproof.config import load_params

log = logging.getLogger(__name__)


def detect_postprocess(args: argparse.Namespace) -> Any:
    """The deploy section of ``--params``, with the flags given on top. Only the implicit default
    ``params.yaml`` may be absent (default deploy settings); a file named with ``--params`` must exist."""
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.postprocess import Postprocess

    implicit_absent = args.params is DEFAULT_PARAMS and not args.params.exists()
    deploy = DeploySettings() if implicit_absent else load_params(args.params).deploy
    if implicit_absent:  # e.g. run from a subfolder: say so, never use other settings silently
        log.warning("no %s in %s: built-in deploy settings %s", args.params, Path.cwd(), asdict(deploy))
    flags = {k: getattr(args, k) for k in ("conf", "iou", "max_det", "agnostic") if getattr(args, k) is not None}
    return Postprocess.deployed(DeploySettings.parse({**asdict(deploy), **flags}, "edgeproof detect"))


def _cmd_detect(args: argparse.Namespace) -> int:
    from edgeproof.detect import run

    return run(args, detect_postprocess(args))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """The metrics as JSON on stdout; a failed cross-check then fails the command as it fails the DVC stage
    (``raise_on_disagreement``: logged as an error naming both numbers, exit 2)."""
    from edgeproof.evaluation.crosscheck import raise_on_disagreement
    from edgeproof.evaluation.run import evaluate_onnx
    from edgeproof.training.crosscheck import ultralytics_val  # imports ultralytics only when it runs

    params = load_params(args.params)
    metrics = evaluate_onnx(args.model, args.data, params.evaluate, params.deploy, validator=ultralytics_val).metrics
    emit(metrics)  # printed either way: a disagreement is inspected in them
    raise_on_disagreement(metrics["cross_check"])
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
    from edgeproof.verdict.device import run_device_gate

    results = args.results or Path("reports/device") / args.profile
    # release None: the bundle's own build/release.json, the release record of the same build
    return run_device_gate(
        args.bundle,
        args.profile,
        results,
        args.release,
        args.baseline,
        args.rules_params,
        args.proposed_params,
        args.baseline_unavailable,
        args.baseline_optional,
    )


def add_commands(sub: Any) -> None:
    """Register the edge tools' subcommands."""
    _add_model_commands(sub)
    _add_device_commands(sub)


def _add_model_commands(sub: Any) -> None:
    """``detect``, ``evaluate`` and ``benchmark``: an ONNX model on images, a video or a prepared dataset."""
    from edgeproof.detect import add_arguments

    s = sub.add_parser("detect", help="detect objects in images, folders, globs or a video (like yolo predict)")
    add_arguments(s)
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
    s.add_argument(
        "--release", type=Path, default=None, help="release report (default: the bundle's build/release.json)"
    )
    s.add_argument("--baseline", type=Path, default=None, help="main's gate.json for this profile (regression rules)")
    s.add_argument(
        "--baseline-unavailable",
        metavar="WHY",
        default=None,
        help="main's baseline could not be fetched (WHY): regression rules inconclusive; without it and without "
        "--baseline, main has none yet and they are not judged",
    )
    s.add_argument(
        "--baseline-optional",
        action="store_true",
        help="a run that may go without main's baseline (a push to main): a regression rule --baseline cannot "
        "support (its figure missing or in an older record) is judged as without one, with a note",
    )
    s.add_argument(
        "--rules-params",
        type=Path,
        default=None,
        help="the base branch's params.yaml: its profiles judge (default: the bundle's profiles.json)",
    )
    s.add_argument(
        "--proposed-params",
        type=Path,
        default=None,
        help="the pull request's params.yaml, shown beside the base's rules (default: the bundle's profiles.json)",
    )
    s.set_defaults(func=_cmd_device_gate)
