"""The mAP scoring post-processing: what the detector does with raw output when its detections are scored.

One concept, one home, like :mod:`edgeproof.runtime.deploy`. COCO-style mAP wants every plausible
detection (a very low confidence, several classes per box): that is not the deployment's operating
point, and it is the same wherever a model is scored, on the build machine (``evaluate``, the release
choice, ``edgeproof perf``) and on the device (from the bundle's ``deploy.json``). ``params.yaml``'s
``evaluate.conf``, ``.iou``, ``.max_det`` and ``.multi_label`` are these settings
(:attr:`edgeproof.evaluation.params.EvaluateParams.scoring`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeproof.settings import bounded, parse_dataclass


@dataclass(frozen=True)
class ScoringSettings:
    """Post-processing of the detections that mAP is computed on."""

    conf: float = bounded(0.001, ge=0.0, lt=1.0)  # keep detections with score > conf: the whole PR curve
    iou: float = bounded(0.7, gt=0.0, le=1.0)  # NMS IoU
    max_det: int = bounded(300, ge=1, le=10_000)  # detections kept per image, best first
    multi_label: bool = True  # every (box, class) pair above conf, as COCO tools expect

    @classmethod
    def parse(cls, raw: Any, where: str = "evaluate") -> ScoringSettings:
        """Strictly parse a mapping of these settings; errors name ``<where>.<key>``."""
        return parse_dataclass(cls, raw, where)
