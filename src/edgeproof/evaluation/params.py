"""The ``evaluate`` section of params.yaml (owned by the evaluation package)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgeproof.schema import Section as _Section

#: ``true`` = required (a missing package fails the stage), ``false`` = off,
#: ``"auto"`` = run it when the package is importable, otherwise record ``null`` and the reason.
CheckMode = bool | Literal["auto"]


class OperatingPointParams(_Section):
    """The deployment thresholds: what the device ships with (keep equal to ``benchmark.conf/iou``)."""

    conf: float = Field(0.25, ge=0.0, lt=1.0)
    iou: float = Field(0.7, gt=0.0, le=1.0)
    match_iou: float = Field(0.5, gt=0.0, le=1.0)


class CrossCheckParams(_Section):
    """Independent re-scoring of the same model; a larger disagreement than the tolerance fails the stage."""

    independent: CheckMode = "auto"
    independent_tolerance: float = Field(0.001, ge=0.0, le=1.0)
    ultralytics: CheckMode = "auto"
    ultralytics_tolerance: float = Field(0.02, ge=0.0, le=1.0)
    ultralytics_device: str = "cpu"


class PlotParams(_Section):
    """The evaluation plots under ``plots/eval``."""

    mosaic_images: int = Field(16, ge=0, le=256)
    mosaic_columns: int = Field(4, ge=1, le=16)
    dpi: int = Field(100, ge=50, le=400)
    curve_points: int = Field(101, ge=11, le=1001)


class EvaluateParams(_Section):
    """COCO-style evaluation of the optimized ONNX model on the val split."""

    conf: float = Field(0.001, ge=0.0, lt=1.0)
    iou: float = Field(0.7, gt=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=10_000)
    multi_label: bool = True
    batch: int = Field(8, ge=1, le=256)
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    operating_point: OperatingPointParams = Field(default_factory=OperatingPointParams)
    cross_check: CrossCheckParams = Field(default_factory=CrossCheckParams)
    plots: PlotParams = Field(default_factory=PlotParams)
