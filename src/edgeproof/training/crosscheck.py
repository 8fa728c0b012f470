"""ultralytics' own validator on the deployed ONNX file: the cross-check of edgeproof's mAP.

This needs the train extra (torch + ultralytics) and is imported lazily by
:mod:`edgeproof.evaluation.crosscheck` only when ``evaluate.cross_check.ultralytics`` asks for it.

ultralytics writes ``labels/<split>.cache`` next to the labels, so it validates a private
hard-link view of the prepared dataset (:mod:`edgeproof.training.dataview`), never
``data/prepared`` itself: that is a DVC output, and touching it would make DVC rerun the data stage.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeproof.paths import state_dir
from edgeproof.training.dataview import private_view
from edgeproof.training.ultralytics_env import configure

log = logging.getLogger(__name__)

VAL_ARGS = {
    "rect": False,  # the ONNX input is fixed-size: rectangular batches would not fit it
    "plots": False,  # plotting may fetch a font
    "save_json": False,  # its json ids are not the dataset's: mAP numbers are compared, not files
    "name": "val",
    "exist_ok": True,
    "verbose": False,
}


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send ultralytics' console output (its logger and progress bars print to stdout) to stderr,
    so stdout stays the caller's own (``edgeproof evaluate`` prints its JSON there)."""
    handlers = [
        (h, h.stream)
        for h in logging.getLogger("ultralytics").handlers
        if type(h) is logging.StreamHandler and h.stream is not sys.stderr
    ]
    for handler, _ in handlers:
        handler.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in handlers:
            handler.setStream(stream)


@contextlib.contextmanager
def original_pil_open() -> Iterator[None]:
    """Put ``PIL.Image.open`` back afterwards: importing ultralytics replaces it process-wide (a HEIF
    shim), and the rest of the evaluation must read images exactly as the edge runtime does."""
    from PIL import Image

    original = Image.open
    try:
        yield
    finally:
        Image.open = original


def _summary(result: Any, n_images: int, seconds: float, marks: dict[str, float]) -> dict[str, Any]:
    loop = marks.get("loop_end", 0.0) - marks.get("loop_start", 0.0)
    return {
        "map50_95": float(result.box.map),
        "map50": float(result.box.map50),
        "n_images": n_images,
        "seconds": round(seconds, 3),
        "loop_seconds": round(loop, 3),
        "speed_ms_per_image": {k: round(float(v), 3) for k, v in result.speed.items()},
        "images_per_s": round(n_images / loop, 2) if n_images and loop > 0 else None,
    }


def _run_val(
    yolo_cls: Any, model: Path, data_root: Path, tmp: Path, split: str, settings: dict[str, Any]
) -> tuple[Any, int, dict[str, float], float]:
    data_yaml = private_view(data_root, tmp / "data", splits=(split,))
    n_images = sum(1 for _ in (tmp / "data" / "images" / split).iterdir())
    detector = yolo_cls(str(model), task="detect")
    marks: dict[str, float] = {}
    detector.add_callback("on_val_start", lambda _v: marks.setdefault("loop_start", time.perf_counter()))
    detector.add_callback("on_val_end", lambda _v: marks.setdefault("loop_end", time.perf_counter()))
    start = time.perf_counter()
    result = detector.val(data=str(data_yaml), split=split, project=str(tmp / "runs"), **settings, **VAL_ARGS)
    return result, n_images, marks, time.perf_counter() - start


def ultralytics_val(
    model: Path,
    data_root: Path,
    *,
    imgsz: int | list[int],
    batch: int,
    conf: float,
    iou: float,
    max_det: int,
    device: str = "cpu",
    split: str = "val",
    state: Path | None = None,
) -> dict[str, Any]:
    """Run ``YOLO(model).val`` on a private view of ``data_root``'s ``split``; mAP and speed.

    ``images_per_s`` is the validation loop's throughput (image loading, inference, NMS and metric
    updates: from ultralytics' ``on_val_start`` to ``on_val_end``); ``seconds`` is the whole call,
    with model loading, warm-up and the dataset scan.
    """
    settings = {"imgsz": imgsz, "batch": batch, "conf": conf, "iou": iou, "max_det": max_det, "device": device}
    state = state or state_dir()
    work = state / "evaluate"
    work.mkdir(parents=True, exist_ok=True)
    with original_pil_open(), stdout_to_stderr(), tempfile.TemporaryDirectory(prefix="val-", dir=work) as tmp:
        yolo_cls = configure(state)  # a first import of ultralytics prints (settings file) to stdout too
        result, n_images, marks, seconds = _run_val(yolo_cls, model, data_root, Path(tmp), split, settings)
    out = _summary(result, n_images, seconds, marks)
    log.info("ultralytics val: mAP50-95 %.4f  mAP50 %.4f  (%.1f s)", out["map50_95"], out["map50"], out["seconds"])
    return out
