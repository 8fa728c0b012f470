"""The deployment operating point: what the shipped detector does with the model's raw output.

One concept, one home. ``params.yaml`` section ``deploy`` is parsed into :class:`DeploySettings`
and every consumer reads it from there: the runtime's post-processing, the evaluation's operating
point, the benchmark's end-to-end path, ``edgeproof detect``, the hand-off bundle and the device
side. The input size is not a setting here: it is a property of the model file (its fixed input
height/width, set by ``train.imgsz`` at export).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeproof.settings import bounded, parse_dataclass


@dataclass(frozen=True)
class DeploySettings:
    """Detection thresholds of the deployed detector (one image in, boxes out)."""

    conf: float = bounded(0.25, ge=0.0, lt=1.0)  # a detection counts when its score > conf
    iou: float = bounded(0.7, gt=0.0, le=1.0)  # NMS IoU: a box is suppressed when IoU > iou
    max_det: int = bounded(300, ge=1, le=10_000)  # detections kept per image, best first
    agnostic: bool = False  # NMS across classes (true) or within each class (false)

    @classmethod
    def parse(cls, raw: Any, where: str = "deploy") -> DeploySettings:
        """Strictly parse the ``deploy`` mapping; errors name ``deploy.<key>``."""
        return parse_dataclass(cls, raw, where)
