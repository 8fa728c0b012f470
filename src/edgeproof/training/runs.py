"""Training run folders shared by parallel workers: one lock per run, pruning that spares live runs.

``<state>/train/`` is shared by every ``dvc exp`` queue worker of a repo. Each run (``<fingerprint>/``
and its data view ``<fingerprint>-data/``) is guarded by ``<fingerprint>.lock``: the process that
trains, resumes or reuses a run holds it throughout, so two workers with the same fingerprint take
turns (the second one reuses the finished run) instead of both wiping and training into one folder.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from edgeproof.io import LockBusy, exclusive_lock

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
VIEW_SUFFIX = "-data"


def lock_path(run_dir: Path) -> Path:
    """The lock file that guards ``run_dir`` and its data view."""
    return run_dir.with_name(run_dir.name + LOCK_SUFFIX)


def view_path(run_dir: Path) -> Path:
    """The private data view (see :mod:`edgeproof.training.dataview`) that belongs to ``run_dir``."""
    return run_dir.with_name(run_dir.name + VIEW_SUFFIX)


@contextlib.contextmanager
def hold_run(run_dir: Path) -> Iterator[None]:
    """Own ``run_dir`` (and its data view) for the block, waiting for another holder to finish first."""

    def waiting() -> None:
        log.info("training run %s is in use by another process (a parallel experiment?); waiting", run_dir.name)

    with exclusive_lock(lock_path(run_dir), on_wait=waiting):
        yield


def _run_name(entry: Path) -> str:
    name = entry.name
    for suffix in (LOCK_SUFFIX, VIEW_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _newest_mtime(entries: list[Path]) -> float:
    """The latest modification under ``entries`` (lock files excluded: taking a lock is not use)."""
    newest = 0.0
    for entry in entries:
        if entry.name.endswith(LOCK_SUFFIX):
            continue
        for p in [entry, *(entry.rglob("*") if entry.is_dir() else [])]:
            with contextlib.suppress(OSError):
                newest = max(newest, p.lstat().st_mtime)
    return newest


def prune_other_runs(keep: Path, min_age_s: float = 3600.0) -> list[str]:
    """Delete other runs that nobody holds and nobody touched for ``min_age_s``; return their names.

    A run whose lock is held (another worker is training, resuming or reusing it) is never touched,
    however old its files look: a long training does not rewrite its data view. The lock is held
    while deleting, so no worker can start using a run that is half deleted.
    """
    groups: dict[str, list[Path]] = {}
    for entry in keep.parent.iterdir():
        name = _run_name(entry)
        if name != keep.name:
            groups.setdefault(name, []).append(entry)
    pruned = []
    for name, entries in sorted(groups.items()):
        lock = keep.parent / (name + LOCK_SUFFIX)
        try:
            with exclusive_lock(lock, wait=False):
                if time.time() - _newest_mtime(entries) >= min_age_s:
                    for entry in entries:
                        if entry.is_dir() and not entry.is_symlink():
                            shutil.rmtree(entry, ignore_errors=True)
                        else:
                            entry.unlink(missing_ok=True)
                    pruned.append(name)
                lock.unlink(missing_ok=True)  # free, so unused: deleting it is safe (see exclusive_lock)
        except LockBusy:
            log.debug("not pruning training run %s: in use", name)
    if pruned:
        log.info("pruned %d stale training run(s): %s", len(pruned), ", ".join(pruned))
    return pruned
