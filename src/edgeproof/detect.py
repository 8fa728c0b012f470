"""``edgeproof detect``: the released detector on images, folders, globs or a video, like ``yolo predict``.

* Model: the one ``reports/release.json`` releases for the build profile (its sha256 checked against the
  release's), unless a model file is named.
* Output: annotated copies of the images in ``runs/detect/predict``, ``predict2``, ... (``--no-save``
  to skip), one summary line per image ("3 circles, 1 square, 4.1 ms"); ``--json`` prints JSON Lines
  on stdout instead (one object per image), the summary lines then go to stderr.
* Any output that cannot be written is an error (exit 2, naming the option), never a silent no-op.
* Each image's time is the detector call (letterbox, model, decode + NMS) after one untimed warm-up run of that
  whole path (ONNX Runtime's set-up, OpenCV's lazy import on the first resize).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgeproof.detect_inputs import expand_sources, release_model
from edgeproof.paths import check_save_dir, make_save_dir, remove_unused

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi")  # what OpenCV's writer in device.video produces (mp4v / MJPG)
DEFAULT_SAVE_DIR = Path("runs/detect/predict")


@dataclass(frozen=True)
class DetectOptions:
    """What to write: annotated images under ``save_dir`` (None: none) and JSON Lines or summaries."""

    save_dir: Path | None = DEFAULT_SAVE_DIR
    json_lines: bool = False
    workers: int = 1  # frames in parallel on the one detector (output stays in input order)


def summary(det: Any, names: Mapping[int, str], ms: float) -> str:
    """ "3 circles, 1 square, 4.1 ms": counts per class, most frequent first."""
    counts = Counter(names.get(int(c), str(int(c))) for c in det.classes.tolist())
    parts = [f"{n} {name}{'' if n == 1 else 's'}" for name, n in counts.most_common()]
    return f"{', '.join(parts) or 'no detections'}, {ms:.1f} ms"


def record(path: Path, det: Any, names: Mapping[int, str], ms: float, saved: Path | None) -> dict[str, Any]:
    """One image's JSON Lines object."""
    return {
        "image": str(path),
        "ms": round(ms, 2),
        "saved": str(saved) if saved is not None else None,
        "detections": [
            {
                "class": int(c),
                "name": names.get(int(c), str(int(c))),
                "score": round(float(s), 4),
                "box_xyxy": [round(float(v), 2) for v in b],
            }
            for b, s, c in zip(det.boxes, det.scores, det.classes, strict=True)
        ],
    }


def class_color(cls: int) -> tuple[int, int, int]:
    """A saturated colour per class (ultralytics-like palette)."""
    palette = ((255, 56, 56), (56, 56, 255), (255, 178, 29), (72, 249, 10), (207, 56, 255), (0, 194, 255))
    return palette[cls % len(palette)]


def annotate(rgb: np.ndarray, det: Any, names: Mapping[int, str]) -> Any:
    """A PIL image of ``rgb`` with each detection boxed: a class colour inside a black outline (visible
    on any background) and its label inside the image (moved below the box top at the top edge)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, min(image.size) // 40))
    width = max(2, min(image.size) // 200)
    for box, score, cls in zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist(), strict=True):
        x0, y0, x1, y1 = box
        color = class_color(int(cls))
        draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0), width=width + 2)
        draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), outline=color, width=width)
        label = f"{names.get(int(cls), str(int(cls)))} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tw, th = right - left + 4, bottom - top + 4
        tx = min(max(0.0, x0), max(0.0, image.width - tw))
        ty = y0 - th if y0 - th >= 0 else min(y0, image.height - th)
        draw.rectangle((tx, ty, tx + tw, ty + th), fill=color, outline=(0, 0, 0))
        draw.text((tx + 2 - left, ty + 2 - top), label, fill=(255, 255, 255), font=font)
    return image


def detect_images(
    detector: Any, images: Sequence[Path], options: DetectOptions, out: TextIO | None = None
) -> Path | None:
    """Detect on each image, print one line (or JSON object) each, save annotated copies; with
    ``options.workers`` > 1, frames run in parallel and are still reported in input order.

    Returns the folder the annotated images went to (None with ``save_dir=None``)."""
    out = out or sys.stdout
    human = sys.stderr if options.json_lines else out
    detector.warmup()  # untimed, the whole path: the first image's time was ORT's set-up and OpenCV's import
    made = make_save_dir(options.save_dir) if options.save_dir is not None else None
    save_dir = made[0] if made is not None else None
    try:
        _detect_each(detector, images, options, save_dir, (out, human))
    except BaseException:
        if made is not None:
            remove_unused(*made)  # an image that failed first leaves no empty predictN (or runs/detect) behind
        raise
    if save_dir is not None:
        human.write(f"Results saved to {save_dir}\n")
    return save_dir


def _detect_each(
    detector: Any, images: Sequence[Path], options: DetectOptions, save_dir: Path | None, streams: tuple[TextIO, ...]
) -> None:
    from edgeproof.runtime.overlap import detect_parallel

    out, human = streams
    for i, (path, rgb, det, ms) in enumerate(detect_parallel(detector, images, options.workers), 1):
        saved = None
        if save_dir is not None:
            saved = save_dir / f"{path.stem}.jpg"
            if saved.exists():  # two inputs with one name (from different folders) keep both
                saved = save_dir / f"{path.stem}_{i}.jpg"
            annotate(rgb, det, detector.names).save(saved, quality=95)
        human.write(f"image {i}/{len(images)} {path}: {summary(det, detector.names, ms)}\n")
        if options.json_lines:
            out.write(json.dumps(record(path, det, detector.names, ms, saved)) + "\n")


def check_video_out(path: Path | None) -> None:
    """Refuse, before any frame is read, an ``--out`` the video writer cannot produce."""
    if path is None:
        return
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out {path}: unsupported video format {path.suffix!r}; use {' or '.join(VIDEO_SUFFIXES)}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--out {path}: folder {path.parent} does not exist")


def detect_video(
    detect: Callable[[np.ndarray], Any], names: Mapping[int, str], source: str, out_path: Path | None, **kw: Any
) -> dict[str, Any]:
    """Run over a video source (device.video.run_video); an ``out_path`` that ends up missing or empty
    (the codec refused it) is an error, not a summary that names a file nobody wrote."""
    from edgeproof.device.video import run_video

    check_video_out(out_path)
    result = run_video(detect, source, dict(names), out_path, **kw)
    if out_path is not None and (not out_path.is_file() or out_path.stat().st_size == 0):
        raise RuntimeError(f"--out {out_path}: the video writer produced no file ({result['frames']} frames read)")
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``edgeproof detect`` options (the deploy flags override ``--params``' deploy section)."""
    add = parser.add_argument
    add("sources", nargs="*", help="[MODEL.onnx] then images, folders or globs (quote globs)")
    add("--model", type=Path, default=None, help="ONNX model (default: the released one, see --release)")
    add("--release", type=Path, default=Path("reports/release.json"), help="release report naming the default model")
    add("--save", action=argparse.BooleanOptionalAction, default=True, help="write annotated images (default: on)")
    add("--save-dir", type=Path, default=DEFAULT_SAVE_DIR, help="numbered when it exists: predict2, predict3, ...")
    add("--json", action="store_true", help="JSON Lines on stdout, one object per image (summaries to stderr)")
    add("--video", default=None, help="video file, camera index (0) or RTSP URL (needs OpenCV)")
    add("--out", type=Path, default=None, help="write the annotated video here (.mp4 or .avi)")
    add("--show", action="store_true", help="show the annotated video in a window (q quits)")
    add("--max-frames", type=int, default=None, help="stop after this many frames")
    add("--conf", type=float, help="override deploy.conf of --params")
    add("--iou", type=float, help="override deploy.iou of --params")
    add("--max-det", type=int, help="override deploy.max_det of --params")
    add("--agnostic", action=argparse.BooleanOptionalAction, default=None, help="override deploy.agnostic")
    add("--providers", nargs="+", default=["CPUExecutionProvider"])
    add("--workers", type=int, default=1, help="images in parallel, one core each (default 1: one at a time)")


def run(args: argparse.Namespace, postprocess: Any) -> int:
    """``edgeproof detect``: the model (named, or the released one) on ``args.sources`` or ``args.video``."""
    from edgeproof.runtime.detector import Detector
    from edgeproof.runtime.session import SessionSettings

    sources = list(args.sources)
    # the suffix in any case: MODEL.ONNX is a model, not an image (nor a reason to run the released one)
    model = args.model or (Path(sources.pop(0)) if sources and sources[0].lower().endswith(".onnx") else None)
    if args.video is not None:  # before loading anything
        check_video_out(args.out)
        if sources or args.json:
            given = " ".join([*sources, *(["--json"] if args.json else [])])
            raise ValueError(
                f"--video runs on the video only, its summary as JSON on stdout; also given: {given} "
                "(run the images in a separate edgeproof detect)"
            )
    elif args.save:
        check_save_dir(args.save_dir)
    model = model or release_model(args.release)
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1 and args.video is not None:
        raise ValueError("--workers runs images in parallel; a --video runs frame after frame (leave --workers out)")
    # in parallel, each image runs on one core: a single-threaded session shared by the workers
    session = SessionSettings(tuple(args.providers), intra_op_threads=1 if args.workers > 1 else 0)
    detector = Detector(model, postprocess, session)
    log.info("model %s (sha256 %s)", model, detector.sha256[:12])
    if args.video is not None:
        detector.warmup()  # untimed, as before the first image: one-off set-up is not a frame's latency
        result = detect_video(
            lambda rgb: detector([rgb])[0],
            detector.names,
            args.video,
            args.out,
            show=args.show,
            max_frames=args.max_frames,
        )
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    if not sources:
        raise ValueError("detect: give images, folders or globs, or --video SOURCE")
    images = expand_sources(sources)
    detect_images(detector, images, DetectOptions(args.save_dir if args.save else None, args.json, args.workers))
    return 0
