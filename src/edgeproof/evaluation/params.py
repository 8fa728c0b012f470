"""The ``evaluate`` and ``plots`` sections of params.yaml (owned by the evaluation package)."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field

from edgeproof.profiles import ProviderName
from edgeproof.runtime.scoring import ScoringSettings
from edgeproof.schema import Section as _Section
from edgeproof.schema import TorchDevice

#: ``true`` = required (a missing package fails the stage), ``false`` = off,
#: ``"auto"`` = run it when the package is importable, otherwise record ``null`` and the reason.
CheckMode = bool | Literal["auto"]
Auto = Literal["auto"]
_SCORING = ScoringSettings()


class OperatingPointParams(_Section):
    """How the operating point is judged. Its thresholds (conf, NMS IoU, max_det, agnostic) are the
    ``deploy`` section's (:class:`edgeproof.runtime.deploy.DeploySettings`), not evaluation settings."""

    match_iou: float = Field(0.5, gt=0.0, le=1.0)


class CrossCheckParams(_Section):
    """Independent re-scoring of the same model; a larger disagreement than the tolerance fails the stage.

    ``ultralytics_tolerance`` bounds |edgeproof's mAP50-95 - pycocotools' mAP50-95 of ultralytics' own
    detections| (same scorer, two pipelines); ultralytics' own AP formula is reported, never checked.
    """

    # at most 0.1 mAP50-95: a larger gap is not two scorers disagreeing but other detections, and a
    # tolerance of 1.0 accepted any mAP; a scorer is switched off by saying so (false), not by a tolerance
    independent: CheckMode = "auto"
    independent_tolerance: float = Field(0.001, ge=0.0, le=0.1)
    ultralytics: CheckMode = "auto"
    ultralytics_tolerance: float = Field(0.001, ge=0.0, le=0.1)
    ultralytics_device: TorchDevice = "cpu"


class PlotsParams(_Section):
    """The ``plots`` stage: charts and mosaic under ``plots/eval``, drawn from what evaluate wrote."""

    mosaic_images: int = Field(16, ge=0, le=256)
    mosaic_columns: int = Field(4, ge=1, le=16)
    dpi: int = Field(100, ge=50, le=400)
    curve_points: int = Field(101, ge=11, le=1001)


class EvaluateParams(_Section):
    """COCO-style evaluation of the optimized ONNX model on the val split."""

    # the mAP scoring post-processing: its defaults and meaning are ScoringSettings' (see .scoring)
    conf: float = Field(_SCORING.conf, ge=0.0, lt=1.0)
    iou: float = Field(_SCORING.iou, gt=0.0, le=1.0)
    max_det: int = Field(_SCORING.max_det, ge=1, le=10_000)
    multi_label: bool = _SCORING.multi_label
    batch: int = Field(8, ge=1, le=256)
    providers: list[ProviderName] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    streams: Annotated[int, Field(ge=1, le=64)] | Auto = "auto"
    intra_op_threads: int = Field(0, ge=0, le=256)
    score_workers: Annotated[int, Field(ge=0, le=64)] | Auto = "auto"
    operating_point: OperatingPointParams = Field(default_factory=OperatingPointParams)
    cross_check: CrossCheckParams = Field(default_factory=CrossCheckParams)

    @property
    def scoring(self) -> ScoringSettings:
        """conf, iou, max_det and multi_label: the mAP scoring post-processing, as one settings object."""
        return ScoringSettings(conf=self.conf, iou=self.iou, max_det=self.max_det, multi_label=self.multi_label)


def _cpu_only(providers: list[str]) -> bool:
    return all(p == "CPUExecutionProvider" for p in providers)


#: Below this many images a scoring process costs more to start (~0.5 s) than it can save.
MIN_IMAGES_FOR_WORKERS = 256


def resolve_parallelism(params: EvaluateParams, n_images: int, cpus: int | None = None) -> tuple[int, int, int]:
    """``(streams, intra_op_threads, score_workers)`` with ``auto`` and ``0`` decided for this machine.

    On the CPU provider, whole batches in parallel use the cores better than one batch split
    across them (measured on 2 cores: 5.9 vs 7.4 ms per image), so ``auto`` runs up to 4 batches
    at once and splits the cores among them; GPU providers get one stream. ``auto`` scoring
    workers need a core to spare (4 CPUs or more: one process per 4, at most 4) and at least
    :data:`MIN_IMAGES_FOR_WORKERS` images; otherwise pycocotools runs after inference, here.
    """
    cpus = max(1, cpus or os.cpu_count() or 1)
    cpu = _cpu_only(params.providers)
    streams = params.streams if params.streams != "auto" else (min(4, cpus) if cpu else 1)
    threads = params.intra_op_threads or (max(1, cpus // streams) if cpu else 0)
    workers = params.score_workers
    if workers == "auto":
        workers = min(4, cpus // 4) if n_images >= MIN_IMAGES_FOR_WORKERS else 0
    return streams, threads, workers
