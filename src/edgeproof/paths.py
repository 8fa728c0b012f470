"""Local state locations (all inside the repo by default, all relocatable)."""

from __future__ import annotations

import os
from pathlib import Path

# `dvc exp run --temp` / `--queue` run the pipeline in `<repo>/.dvc/tmp/exps/[standalone/]<tmp>/`,
# a copy that DVC deletes when the experiment ends.
_DVC_EXPS = (".dvc", "tmp", "exps")


def repo_root(cwd: Path | None = None) -> Path:
    """The repository whose state survives this run: the main repo when ``cwd`` (default: the
    current directory) is inside a DVC experiment's temporary copy, otherwise ``cwd`` itself."""
    here = (cwd if cwd is not None else Path.cwd()).resolve()
    parts = here.parts
    n = len(_DVC_EXPS)
    for i in range(1, len(parts) - n):  # something must follow `.dvc/tmp/exps`: a run's own folder
        if parts[i : i + n] == _DVC_EXPS:
            return Path(*parts[:i])
    return here


def state_dir() -> Path:
    """Where edgeproof keeps local state (training checkpoints, ultralytics settings, the tracking
    outbox): ``$EDGEPROOF_STATE_DIR`` (a relative path is taken from :func:`repo_root`) or
    ``<repo_root>/.edgeproof``, so state outlives the temporary copies of ``dvc exp run --temp``."""
    root = repo_root()
    return (root / (os.environ.get("EDGEPROOF_STATE_DIR") or ".edgeproof")).resolve()
