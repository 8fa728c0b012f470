"""Reading an ultralytics checkpoint without running code from it.

A ``.pt`` file is a pickle: unpickled unrestricted it can run anything. Every checkpoint edgeproof
reads itself (``best.pt``'s own metrics, the resume check's ``last.pt``) goes through
:func:`load_checkpoint_dict`, which uses ultralytics' restricted loader (``torch.load(weights_only=True)``
against its allow-list of model classes), switched on for the whole process by
:func:`edgeproof.training.ultralytics_env.configure`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgeproof.training.ultralytics_env import configure

log = logging.getLogger(__name__)


def load_checkpoint_dict(path: Path, state: Path | None = None) -> dict[str, Any]:
    """The checkpoint dict in ``path`` (``epoch``, ``ema``, ``optimizer``, ``train_metrics``, ...), loaded restricted.

    Raises ValueError naming the file if it is not a loadable ultralytics checkpoint, including one
    that references anything outside the allow-list (which is refused, never executed).
    """
    configure(state)
    from ultralytics.nn.tasks import torch_safe_load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=True)
    except Exception as exc:  # ultralytics raises TypeError/UnpicklingError/RuntimeError for refused or torn files
        raise ValueError(f"{path}: not a loadable ultralytics checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not an ultralytics checkpoint (a {type(ckpt).__name__}, not a dict)")
    return ckpt
