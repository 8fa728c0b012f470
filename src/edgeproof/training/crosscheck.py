"""ultralytics' own validator on the deployed ONNX file: the cross-check of edgeproof's pipeline.

It returns ultralytics' own detections (its ``save_json`` output, mapped to the dataset's original
image and category ids), so the evaluation can score them with the same scorer as its own detections
and compare like with like; ultralytics' own AP (a different formula) comes along as information.

This needs the train extra (torch + ultralytics) and is imported lazily by
:mod:`edgeproof.evaluation.run` only when ``evaluate.cross_check.ultralytics`` asks for it.

ultralytics writes ``labels/<split>.cache`` next to the labels, so it validates a private
hard-link view of the prepared dataset (:mod:`edgeproof.training.dataview`), never
``data/prepared`` itself: that is a DVC output, and touching it would make DVC rerun the data stage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproof.data.canonical import load_meta
from edgeproof.paths import state_dir
from edgeproof.training.dataview import private_view
from edgeproof.training.ultralytics_env import configure

log = logging.getLogger(__name__)

VAL_ARGS = {
    "rect": False,  # the ONNX input is fixed-size: rectangular batches would not fit it
    "plots": False,  # plotting may fetch a font
    "save_json": True,  # its detections (predictions.json), mapped to the dataset's ids below
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
        _set_stream(handler, sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in handlers:
            _set_stream(handler, stream)


def _set_stream(handler: logging.StreamHandler, stream: Any) -> None:
    """``setStream`` flushes the old stream first, which fails when it is already closed (a handler
    created while an earlier caller had replaced ``sys.stdout``, e.g. a test's captured output)."""
    try:
        handler.setStream(stream)
    except ValueError:
        handler.stream = stream


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


def to_dataset_ids(
    predictions: list[dict[str, Any]], class_map: list[int], gt: dict[str, Any], category_ids: list[int]
) -> list[dict[str, Any]]:
    """ultralytics' ``save_json`` detections with the dataset's image ids (by file name) and category
    ids (its ``category_id`` is ``class_map[class index]``; the dataset's is ``category_ids[class index]``)."""
    image_of = {Path(im["file_name"]).name: int(im["id"]) for im in gt["images"]}
    class_of = {int(c): i for i, c in enumerate(class_map)}
    out = []
    for det in predictions:
        name = det.get("file_name") or f"{det['image_id']}"
        if name not in image_of or int(det["category_id"]) not in class_of:
            raise ValueError(
                f"ultralytics detection for {name!r} (category_id {det['category_id']}) does not map to the dataset"
            )
        category = category_ids[class_of[int(det["category_id"])]]
        out.append({"image_id": image_of[name], "category_id": category, "bbox": det["bbox"], "score": det["score"]})
    return out


def _summary(result: Any, n_images: int, seconds: float, marks: dict[str, float]) -> dict[str, Any]:
    loop = marks.get("loop_end", 0.0) - marks.get("loop_start", 0.0)
    return {
        "own_map50_95": float(result.box.map),
        "own_map50": float(result.box.map50),
        "n_images": n_images,
        "seconds": round(seconds, 3),
        "loop_seconds": round(loop, 3),
        "speed_ms_per_image": {k: round(float(v), 3) for k, v in result.speed.items()},
        "images_per_s": round(n_images / loop, 2) if n_images and loop > 0 else None,
    }


@dataclass
class _Run:
    result: Any = None
    n_images: int = 0
    seconds: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    class_map: list[int] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)


def _run_val(yolo_cls: Any, model: Path, data_root: Path, tmp: Path, split: str, settings: dict[str, Any]) -> _Run:
    data_yaml = private_view(data_root, tmp / "data", splits=(split,))
    run = _Run(n_images=sum(1 for _ in (tmp / "data" / "images" / split).iterdir()))
    detector = yolo_cls(str(model), task="detect")

    def on_end(validator: Any) -> None:
        run.marks.setdefault("loop_end", time.perf_counter())
        run.class_map = [int(c) for c in validator.class_map]

    detector.add_callback("on_val_start", lambda _v: run.marks.setdefault("loop_start", time.perf_counter()))
    detector.add_callback("on_val_end", on_end)
    start = time.perf_counter()
    project = tmp / "runs"
    run.result = detector.val(data=str(data_yaml), split=split, project=str(project), **settings, **VAL_ARGS)
    run.seconds = time.perf_counter() - start
    saved = project / str(VAL_ARGS["name"]) / "predictions.json"
    run.predictions = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else []  # none: no detections
    return run


def _float_form(model: Path, tmp: Path) -> Path:
    """``model``, or for a model that takes uint8 pixels (``optimize.input``) the same model with its pixel prefix
    undone (:func:`~edgeproof.training.graph.float_nchw_input`): ultralytics feeds only float NCHW in [0, 1]."""
    import onnx

    from edgeproof.training.graph import float_nchw_input

    loaded = onnx.load(str(model))
    if not float_nchw_input(loaded):
        return model
    out = tmp / model.name
    onnx.save(loaded, str(out))
    return out


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
    """Run ``YOLO(model).val`` on a private view of ``data_root``'s ``split``: its detections and AP, and speed.

    ``detections``: its ``save_json`` output in the dataset's image and category ids (COCO results);
    ``own_map50_95``/``own_map50``: ultralytics' own AP formula on them. ``images_per_s`` is the
    validation loop's throughput (image loading, inference, NMS and metric updates: from ultralytics'
    ``on_val_start`` to ``on_val_end``); ``seconds`` is the whole call, with model loading, warm-up
    and the dataset scan.
    """
    settings = {"imgsz": imgsz, "batch": batch, "conf": conf, "iou": iou, "max_det": max_det, "device": device}
    state = state or state_dir()
    work = state / "evaluate"
    work.mkdir(parents=True, exist_ok=True)
    with original_pil_open(), stdout_to_stderr(), tempfile.TemporaryDirectory(prefix="val-", dir=work) as tmp:
        yolo_cls = configure(state)  # a first import of ultralytics prints (settings file) to stdout too
        read = _float_form(model, Path(tmp))
        run = _run_val(yolo_cls, read, data_root, Path(tmp), split, settings)
    out = _summary(run.result, run.n_images, run.seconds, run.marks)
    out["read"] = "the same file" if read == model else "its float-input form (the uint8 pixel prefix undone)"
    gt = json.loads((data_root / "annotations" / f"{split}.json").read_text(encoding="utf-8"))
    out["detections"] = to_dataset_ids(run.predictions, run.class_map, gt, load_meta(data_root).category_ids)
    log.info(
        "ultralytics val: %d detections, its own mAP50-95 %.4f mAP50 %.4f (%.1f s)",
        *(len(out["detections"]), out["own_map50_95"], out["own_map50"], out["seconds"]),
    )
    return out
