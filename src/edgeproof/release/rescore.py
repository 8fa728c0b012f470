"""The gate's own scoring of the file it judges (the ``rescored`` rule's figures: :mod:`edgeproof.gate_rescore`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.device.fingerprint import device_fingerprint
from edgeproof.evaluation.params import EvaluateParams
from edgeproof.evaluation.run import rescore_onnx
from edgeproof.gate_rescore import CROSS_MACHINE_TOLERANCE, Rescored
from edgeproof.runtime.deploy import DeploySettings

log = logging.getLogger(__name__)


def rescore(
    model: Path, data_root: Path, evaluate: EvaluateParams, deploy: DeploySettings, bench: Mapping[str, Any]
) -> Rescored:
    """Score ``model`` on ``data_root``'s val split as the evaluation does; the mAP tolerance is 0 when this
    machine is the one ``bench`` (the gated file's ``bench.json``, measured by the same release-stage run as
    its evaluation) names, else params' ``evaluate.cross_check.ultralytics_tolerance`` capped at
    :data:`~edgeproof.gate_rescore.CROSS_MACHINE_TOLERANCE` (other CPU kernels; ``device`` is a field of a
    file a user can edit, so what it opens stays small)."""
    figures = rescore_onnx(model, data_root, evaluate, deploy)
    there = bench.get("device") if isinstance(bench, Mapping) else None
    here = device_fingerprint(list(figures["providers"]))
    elsewhere = None
    if here != there:
        differ = sorted(
            k for k in {*here, *(there if isinstance(there, Mapping) else {})} if _get(there, k) != here.get(k)
        )
        elsewhere = (
            f"the files were measured on another machine or setup (bench.json device differs in "
            f"{', '.join(differ) or 'its form'}): mAP held within min(evaluate.cross_check.ultralytics_tolerance, "
            f"{CROSS_MACHINE_TOLERANCE}); "
            "`dvc repro -f -s release` here makes it exact"
        )
    log.info(
        "rescored %s on %s val in %.1f s: map50 %s, map50_95 %s",
        model,
        data_root,
        figures["seconds"],
        figures["map50"],
        figures["map50_95"],
    )
    cap = min(evaluate.cross_check.ultralytics_tolerance, CROSS_MACHINE_TOLERANCE)
    tolerance = 0.0 if elsewhere is None else cap
    return Rescored(figures, f"{model.as_posix()} on {data_root.as_posix()} val", tolerance, elsewhere)


def _get(device: Any, key: str) -> Any:
    return device.get(key) if isinstance(device, Mapping) else None
