"""The ``evaluate`` section of params.yaml (owned by the evaluation package)."""

from __future__ import annotations

from pydantic import Field

from edgeproof.schema import Section as _Section


class EvaluateParams(_Section):
    """COCO-style evaluation of the optimized ONNX model on the val split."""

    conf: float = Field(0.001, ge=0.0, lt=1.0)
    iou: float = Field(0.7, gt=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=10_000)
    multi_label: bool = True
    batch: int = Field(8, ge=1, le=256)
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
