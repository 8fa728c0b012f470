"""Local state locations (all inside the repo by default, all relocatable), and the results folders
``edgeproof detect`` saves to (ultralytics' ``runs/detect/predict``, ``predict2``, ...)."""

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


def next_save_dir(base: Path) -> Path:
    """``base`` if it does not exist, else ``base2``, ``base3``, ... (ultralytics' runs/detect/predictN)."""
    if not base.exists():
        return base
    n = 2
    while base.with_name(f"{base.name}{n}").exists():
        n += 1
    return base.with_name(f"{base.name}{n}")


def check_save_dir(base: Path) -> None:
    """Refuse, before the model loads, a ``--save-dir`` that cannot be a folder: one that exists and is
    not a folder (``/dev/null`` took ``/dev/null2``), or below a file or a folder it cannot write to."""
    if base.exists() and not base.is_dir():
        raise ValueError(f"--save-dir {base}: exists and is not a folder")
    above = next(p for p in (base.absolute(), *base.absolute().parents) if p.exists())
    if above != base.absolute() and not above.is_dir():
        raise ValueError(f"--save-dir {base}: {above} is a file, not a folder")
    if above != base.absolute() and not os.access(above, os.W_OK | os.X_OK):
        raise ValueError(f"--save-dir {base}: cannot create a folder in {above} (permission denied)")


def make_save_dir(base: Path) -> tuple[Path, Path]:
    """The next free ``base``, ``base2``, ... created (:func:`next_save_dir`), with the topmost folder this
    created (the save folder itself when its parent existed; for :func:`remove_unused`); an error naming
    ``--save-dir`` when it cannot be (the command exits 2, no traceback)."""
    save_dir = next_save_dir(base)
    top = save_dir
    while not top.parent.exists():
        top = top.parent
    try:
        save_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise ValueError(f"--save-dir {base}: cannot create {save_dir}: {exc.strerror or exc}") from None
    return save_dir, top


def remove_unused(save_dir: Path, top: Path) -> None:
    """Remove ``save_dir`` and the parents :func:`make_save_dir` created with it, up to ``top``, while they are
    empty: a run that saved nothing leaves no folder behind (a folder something else wrote to stays)."""
    for folder in (save_dir, *save_dir.parents):
        if any(folder.iterdir()):
            return
        folder.rmdir()
        if folder == top:
            return
