"""Keep ultralytics offline, quiet about integrations, writing only where we say, and never unpickling code.

ultralytics reads its environment switches when it is first imported, so :func:`configure` must
run before ``import ultralytics``; it is idempotent and returns the ``YOLO`` class.

Checkpoints: ultralytics unpickles ``.pt`` files with ``torch.load(weights_only=False)`` unless
``ULTRALYTICS_SAFE_LOAD`` is set, so a crafted file (a user's ``train.model``, a planted ``last.pt``,
a ``best.pt`` pulled from a shared DVC remote) would run arbitrary code when loaded. :func:`configure`
turns ultralytics' restricted loader on (``weights_only=True`` against its allow-list of model
classes) for every load, including the ones ultralytics makes through its unrestricted ``torch_load``
helper (``strip_optimizer`` at the end of training), and refuses to run when that loader is missing.
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
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
    # torch itself then refuses weights_only=False in this process and its children (ultralytics' DDP
    # workers re-import ultralytics without the patches below, but inherit the environment)
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
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
    _local_weights_only()
    _restricted_checkpoint_loading()
    _plain_pil_open()
    return YOLO


def _plain_pil_open() -> None:
    """Undo ultralytics' process-wide ``PIL.Image.open`` patch.

    On import it replaces ``Image.open`` with a wrapper that, on any unidentifiable file, runs
    ``check_requirements("pi-heif")`` (a pip install when auto-install is on) and imports ``pi_heif``:
    a corrupt image then raises ``ModuleNotFoundError`` instead of Pillow's error, in every module
    of the process (edgeproof's own image loading too). HEIF is not a format edgeproof accepts.
    """
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is not original:
        Image.open = original


def _local_weights_only() -> None:
    """Load exactly the weights file named, never a renamed one, never a download.

    ultralytics resolves every ``.pt`` through ``attempt_download_asset``, which first rewrites
    ``yolov5n.pt`` to ``yolov5nu.pt`` (``check_yolov5u_filename``), then loads that file if it exists
    or downloads it (from GitHub, even for a name of your own). Both are replaced: the name is kept
    as given, and a file that is not on disk is a FileNotFoundError.
    """
    from ultralytics.utils import checks, downloads

    def keep_name(file: str, verbose: bool = True) -> str:
        return file

    def local_file(file: str | Path, *args: Any, **kwargs: Any) -> str:
        path = Path(str(file).strip())
        if not path.is_file():
            raise FileNotFoundError(f"{file}: no such local weights file (edgeproof never downloads weights)")
        return str(path)

    checks.check_yolov5u_filename = keep_name
    downloads.attempt_download_asset = local_file


def _restricted_checkpoint_loading() -> None:
    """Make every checkpoint load in ultralytics a ``weights_only=True`` load against its allow-list.

    ``ULTRALYTICS_SAFE_LOAD`` is read once, when ultralytics is first imported; the module constants
    are set as well in case something imported it earlier. ultralytics' ``torch_load`` helper (used
    directly by ``strip_optimizer``, which rewrites ``best.pt``/``last.pt`` when training ends)
    defaults to ``weights_only=False`` even then, so it is replaced in every module that imported it.
    Raises RuntimeError if this ultralytics/torch cannot load restricted (fail closed).
    """
    import ultralytics.utils as ul_utils
    from ultralytics.nn import tasks
    from ultralytics.utils import patches, torch_utils

    safe = getattr(tasks, "_SafeLoad", None)
    if safe is None or not safe.SUPPORTED or not hasattr(ul_utils, "SAFE_LOAD"):
        raise RuntimeError(
            "this ultralytics/torch cannot load checkpoints with weights_only=True (ultralytics' restricted "
            "loader needs torch>=2.6 and an ultralytics release with ULTRALYTICS_SAFE_LOAD); edgeproof refuses "
            "to unpickle .pt files unrestricted"
        )
    ul_utils.SAFE_LOAD = tasks.SAFE_LOAD = True
    original = getattr(patches.torch_load, "__wrapped__", patches.torch_load)

    def restricted_torch_load(file: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("weights_only") is True:  # already ultralytics' restricted path (allow-list registered)
            return original(file, *args, **kwargs)
        kwargs["weights_only"] = True
        if isinstance(file, (str, os.PathLike)):
            with safe.loading(file):  # registers the model classes this checkpoint names, if allowed
                return original(file, *args, **kwargs)
        return original(file, *args, **kwargs)

    restricted_torch_load.__wrapped__ = original  # type: ignore[attr-defined]
    for module in (patches, torch_utils, tasks):
        if hasattr(module, "torch_load"):
            module.torch_load = restricted_torch_load


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
