"""Running the cross-checks' other tools and handing back finished results.

faster-coco-eval re-scores the same detections (it runs inside the scoring pool, see
:mod:`edgeproof.evaluation.run`); ultralytics' validator runs the same ONNX file through its own
pipeline. Each ends as an :class:`edgeproof.evaluation.crosscheck.Finished`: a value, or a skip with
its reason. ultralytics lives behind the train extra (:mod:`edgeproof.training.crosscheck`) and is
imported only when it is going to run, so the evaluation package imports neither torch nor ultralytics.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgeproof.evaluation.crosscheck import Finished, skip_reason
from edgeproof.evaluation.independent import INSTALL_HINT, independent_available
from edgeproof.evaluation.params import EvaluateParams

ULTRALYTICS_MISSING = "ultralytics is not installed (it comes with the `train` extra)"
SINGLE_LABEL = (
    "evaluate.multi_label is false, but ultralytics' validator always keeps every class above conf per box: "
    "its detections would not be comparable"
)


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


def run_ultralytics(model: Path, data_root: Path, params: EvaluateParams, imgsz: int | list[int]) -> Finished:
    """ultralytics ``val`` on ``model`` at the mAP settings: its detections in the dataset's ids and its
    own AP; or the reason it did not run."""
    reason = ultralytics_skip(params)
    if reason is not None:
        return Finished.skip(reason)
    try:
        from edgeproof.training.crosscheck import ultralytics_val  # torch + ultralytics: only from here on
    except ImportError as exc:  # installed but broken (e.g. torch missing): like not installed
        missing = f"ultralytics cannot be imported ({exc})"
        if params.cross_check.ultralytics is True:
            raise RuntimeError(f"evaluate.cross_check.ultralytics is true but {missing}") from exc
        return Finished.skip(missing)
    value = ultralytics_val(
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
