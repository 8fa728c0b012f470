"""Local state locations (all inside the repo by default, all relocatable)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Where edgeproof keeps local state (training checkpoints, ultralytics settings, the tracking
    outbox): ``$EDGEPROOF_STATE_DIR`` or ``./.edgeproof``."""
    return Path(os.environ.get("EDGEPROOF_STATE_DIR", ".edgeproof")).resolve()
