"""Keep ultralytics offline, quiet about integrations, and writing only where we say.

ultralytics reads its environment switches when it is first imported, so :func:`configure` must
run before ``import ultralytics``; it is idempotent and returns the ``YOLO`` class.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from edgeproof.paths import state_dir

log = logging.getLogger(__name__)

# Integrations ultralytics enables by default. MLflow in particular would open its own run in
# ./mlflow.db for every training; edgeproof logs one record per pipeline run itself.
_SETTINGS_OFF = {
    "sync": False,
    "hub": False,
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "neptune": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
    "vscode_msg": False,
    "openvino_msg": False,
}


def configure(root: Path | None = None) -> Any:
    """Set ultralytics' environment for offline use under ``root`` and return ``ultralytics.YOLO``."""
    root = (root or state_dir()) / "ultralytics"
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(root))
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    wanted: dict[str, Any] = {k: v for k, v in _SETTINGS_OFF.items() if k in SETTINGS}
    wanted.update(
        datasets_dir=str(root / "datasets"),
        weights_dir=str(root / "weights"),
        runs_dir=str(root / "runs"),
    )
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)
    _no_download_amp_check()
    return YOLO


def _no_download_amp_check() -> None:
    """Replace ultralytics' AMP self-test, which downloads a reference model on CUDA devices.

    ``YOLO_OFFLINE`` only makes a *failed* download harmless; with a network it still downloads.
    AMP stays as ``train.amp`` says on CUDA and off elsewhere (what the self-test returns on CPU).
    Multi-GPU DDP workers are separate processes that re-import ultralytics without this patch;
    there, ``YOLO_OFFLINE=1`` makes the check skip when no network is reachable.
    """
    from ultralytics.engine import trainer

    def check_amp(model: Any) -> bool:
        device = next(model.parameters()).device
        log.info("AMP self-test skipped (edgeproof never downloads); AMP %s on %s", device.type == "cuda", device)
        return device.type == "cuda"

    trainer.check_amp = check_amp
