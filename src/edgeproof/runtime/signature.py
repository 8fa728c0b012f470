"""What a model must look like for the runtime to decode it: checked when a :class:`~edgeproof.runtime.detector.
Detector` is built (and, for what the graph leaves open, on its first run), each refusal naming the file.

A YOLO detector exported as ultralytics does (``format="onnx"``, no ``nms=True``): one image input,
``(batch, 3, H, W)`` float in [0, 1] or the letterboxed ``(batch, H, W, 3)`` uint8 pixels, and a first
output ``(batch, 4 + classes, anchors)`` of box rows then per-class scores in [0, 1]. Any other layout
decodes into boxes that look plausible and are wrong, so it is refused, saying what it looks like.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}
NMS_COLUMNS = 6  # an export with NMS built in (nms=True): (batch, max_det, 6): x1, y1, x2, y2, score, class
SCORE_SLACK = 1e-3  # a sigmoid's score, stored as float16 or dequantized from uint8, may round a hair past 1


def check_input(path: Path, inp: Any) -> Any:
    """The numpy dtype to feed ``inp`` (an ONNX Runtime ``NodeArg``); raise naming ``path`` unless it is an
    image batch: NCHW float32 (or float16, which the runtime casts to) in [0, 1], or the letterboxed pixels
    themselves, NHWC uint8 (``optimize.input: uint8_nhwc``: the graph converts them)."""
    shape = list(inp.shape)
    problems = []
    if inp.type == "tensor(uint8)":
        if len(shape) != 4 or shape[3] != 3:
            problems.append(f"a uint8 input must be (batch, height, width, 3), got rank {len(shape)}")
    elif len(shape) != 4:
        problems.append(f"rank {len(shape)}, expected 4 (batch, 3, height, width)")
    elif shape[1] != 3:
        problems.append(f"{shape[1]} channels, expected 3 (RGB)")
    if inp.type not in _INPUT_TYPES:
        problems.append(f"element type {inp.type}, expected tensor(float) (float32), tensor(float16) or tensor(uint8)")
    if problems:
        raise ValueError(f"{path}: input {inp.name!r} {shape} is not an image batch: " + "; ".join(problems))
    return _INPUT_TYPES[inp.type]


def check_inputs(path: Path, inputs: Sequence[Any]) -> Any:
    """The one input the runtime feeds (the image batch); raise naming ``path`` when the model requires
    others. ONNX Runtime lists only the inputs without a default (an initializer of that name is one), and
    would refuse every run for a missing one, an error that named the image being run rather than the model.
    """
    if len(inputs) != 1:
        listed = [f"{i.name!r} {list(i.shape)} {i.type}" for i in inputs]
        raise ValueError(
            f"{path}: the model requires {len(inputs)} inputs ({', '.join(listed) or 'none'}); the runtime feeds "
            "exactly one, the image batch: give the others default values (initializers) or remove them"
        )
    return inputs[0]


def _looks_like(rows: Any, anchors: Any, expected: Optional[int]) -> str:
    """What an output that is not ``(4 + classes, anchors)`` probably is, and how to get a detector's."""
    if expected is not None and rows == expected + 1:
        return "; one row more than 4 + classes: an objectness row (YOLOv5's anchor-based head) or an angle (task obb)"
    if expected is not None and rows == expected + 32:
        return "; 32 rows more than 4 + classes: a segmentation model's mask coefficients (task segment)"
    if not (isinstance(rows, int) and isinstance(anchors, int)) or rows <= anchors:
        return ""
    if anchors == NMS_COLUMNS:
        return (
            f"; ({rows}, {NMS_COLUMNS}) is the output of an export with NMS built in (batch, max_det, 6: box, score, "
            "class): re-export without nms=True"
        )
    return (
        f"; ({rows}, {anchors}) looks transposed, (batch, anchors, 4 + classes): export as ultralytics does "
        "(format='onnx'), without transposing the output"
    )


def layout_problem(rows: Any, anchors: Any, num_classes: Optional[int]) -> Optional[str]:
    """Why a ``rows x anchors`` output (ints, or symbolic names the graph leaves open) is not a detector's
    ``(4 + classes, anchors)``, ``classes`` the model's names' count if known; None when it may be.

    Without names the row count cannot be checked: then more rows than anchors is refused, since a real
    detector has many more anchors (84 at 64 px) than rows, while a transposed output or an NMS export's
    ``(max_det, 6)`` have more rows than columns and would decode into wrong boxes without an error.
    """
    expected = 4 + num_classes if num_classes else None
    if isinstance(rows, int) and rows < 5:
        return f"{rows} rows, expected 4 box rows + at least 1 class row"
    if isinstance(rows, int) and expected is not None and rows != expected:
        problem = f"{rows} rows, expected 4 + {num_classes} classes (from the model's names) = {expected}"
        return problem + _looks_like(rows, anchors, expected)
    if expected is None and isinstance(rows, int) and isinstance(anchors, int) and rows > anchors:
        hint = _looks_like(rows, anchors, expected)
        return f"{rows} rows for {anchors} anchors, and no class names in the model to check the rows against" + hint
    return None


def check_task(path: Path, metadata: Dict[str, Any]) -> None:
    """Refuse, naming ``path``, a model whose ultralytics metadata says it is not a detection model."""
    task = metadata.get("task")
    if task is not None and task != "detect":
        raise ValueError(
            f"{path}: task {task!r} (the model's metadata): edgeproof decodes detection models only (task "
            "'detect'); a segment model's output also holds mask coefficients, an obb model's an angle, a pose "
            "model's keypoints"
        )


def check_output(path: Path, out: Any, num_classes: Optional[int]) -> Optional[int]:
    """The number of output rows (``4 + nc``) when the graph states it; raise naming ``path`` unless the
    first output can be a detector's ``(batch, 4 + nc, anchors)`` (:func:`layout_problem`)."""
    shape = list(out.shape)
    if len(shape) != 3:
        problem: Optional[str] = f"rank {len(shape)}, expected 3"
    else:
        problem = layout_problem(shape[1], shape[2], num_classes)
    if problem:
        where = f"{path}: not a detector: output {out.name!r} {shape}"
        raise ValueError(f"{where} is not (batch, 4 + classes, anchors): {problem}")
    rows = shape[1] if isinstance(shape[1], int) else None
    return rows or (4 + num_classes if num_classes else None)


def check_scores(path: Path, raw: np.ndarray) -> None:
    """Refuse, naming ``path``, an output whose class rows are not scores in [0, 1] (a layout the graph did
    not reveal: box coordinates, logits or class indices where scores should be)."""
    scores = raw[:, 4:]
    if not scores.size:
        return
    low, high = float(scores.min()), float(scores.max())
    if not (low >= -SCORE_SLACK and high <= 1 + SCORE_SLACK):  # also refuses NaN
        raise ValueError(
            f"{path}: not a detector: its class rows (output rows 4 and on) hold values from {low:g} to {high:g}, "
            "not scores in [0, 1]: the output is not (batch, 4 + classes, anchors) with sigmoid class scores "
            "(transposed, an export with NMS built in, or raw logits)"
        )


def class_names(path: Path, metadata: Dict[str, Any]) -> Dict[int, str]:
    """The class names of the model's metadata (ultralytics writes a dict, other exporters a list); a warning,
    naming ``path``, when it has none: classes are then shown as indices and the rows cannot be checked."""
    names = metadata.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if isinstance(names, dict) and names:
        try:
            return {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            pass
    log.warning(
        "%s: no usable class names in the model's metadata (%r): classes are shown as indices, and its output "
        "rows cannot be checked against a class count",
        path,
        names,
    )
    return {}
