"""Running the cross-checks' other tools and handing back finished results.

faster-coco-eval re-scores the same detections (it runs inside the scoring pool, see
:mod:`edgeproof.evaluation.run`); ultralytics' validator runs the same ONNX file through its own
pipeline. Each ends as an :class:`edgeproof.evaluation.crosscheck.Finished`: a value, or a skip with
its reason. ultralytics' validator lives behind the train extra (:func:`edgeproof.training.crosscheck.
ultralytics_val`) and is handed in by the caller (a stage, the CLI, the release measurement): the
evaluation package sits below training and imports neither it, nor torch, nor ultralytics.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeproof.evaluation.crosscheck import Finished, skip_reason
from edgeproof.evaluation.independent import INSTALL_HINT, independent_available
from edgeproof.evaluation.params import EvaluateParams

ULTRALYTICS_MISSING = "ultralytics is not installed (it comes with the `train` extra)"
SINGLE_LABEL = (
    "evaluate.multi_label is false, but ultralytics' validator always keeps every class above conf per box: "
    "its detections would not be comparable"
)
NO_VALIDATOR = "this caller runs no ultralytics validator (it comes with the `train` extra)"
# edgeproof.training.crosscheck.ultralytics_val: (model, data_root, *, imgsz, batch, conf, iou, max_det, device)
Validator = Callable[..., dict[str, Any]]


def independent_skip(params: EvaluateParams) -> str | None:
    """Why faster-coco-eval will not run (``None``: it runs); raises when required but not installed."""
    return skip_reason(params.cross_check.independent, independent_available(), "independent", INSTALL_HINT)


def ultralytics_skip(params: EvaluateParams) -> str | None:
    """Why ultralytics' validator will not run (``None``: it runs); raises when required but not possible."""
    mode = params.cross_check.ultralytics
    if mode is not False and not params.multi_label:
        return skip_reason(mode, False, "ultralytics", SINGLE_LABEL)
    available = importlib.util.find_spec("ultralytics") is not None
    return skip_reason(mode, available, "ultralytics", ULTRALYTICS_MISSING)


def run_ultralytics(
    model: Path, data_root: Path, params: EvaluateParams, imgsz: int | list[int], validator: Validator | None
) -> Finished:
    """``validator`` (ultralytics ``val``) on ``model`` at the mAP settings: its detections in the dataset's
    ids and its own AP; or the reason it did not run (``validator`` None: the caller has none to give)."""
    reason = ultralytics_skip(params)
    if reason is not None:
        return Finished.skip(reason)
    if validator is None:
        if params.cross_check.ultralytics is True:
            raise RuntimeError(f"evaluate.cross_check.ultralytics is true but {NO_VALIDATOR}")
        return Finished.skip(NO_VALIDATOR)
    value = validator(
        model,
        data_root,
        imgsz=imgsz,
        batch=params.batch,
        conf=params.conf,
        iou=params.iou,
        max_det=params.max_det,
        device=params.cross_check.ultralytics_device,
    )
    return Finished(value)
