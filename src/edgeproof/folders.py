"""Whole folders written atomically and durably: a folder swap, scratch folders, a tree flush.

A stage whose output is a folder (``data/prepared``, a release, a tracking outbox record) builds it in
a temporary folder next to the target and swaps it in with :func:`atomic_dir`: one Linux ``renameat2``
``RENAME_EXCHANGE``, so there is no moment at which neither version exists, and the new tree is flushed
(:func:`fsync_tree`) before the swap. Single files go through :mod:`edgeproof.io`, whose fsync helpers
this module shares.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgeproof.io import fsync_dir, fsync_file, publish_mode


def _syncfs(path: Path) -> bool:
    """Flush the whole filesystem holding ``path`` in one call (Linux ``syncfs``); False if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Make every file and folder under ``root`` durable.

    One ``syncfs`` where available: an fsync per file costs a journal commit each (measured: 10 ms
    per file, 15 s for 5000 files, against 0.1 s for one ``syncfs``). Elsewhere each file, then each
    folder (deepest first), is fsynced.
    """
    if _syncfs(root):
        return
    folders = [root]
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            folders.append(path)
        elif path.is_file():
            fsync_file(path)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(folder)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # C library older than glibc 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # kernel or filesystem without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


_TMP_DIR = ".tmpdir"  # the suffix of atomic_dir's temp trees


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def recover_dir(target: Path | str) -> None:
    """Undo a folder swap interrupted between its two renames (only where exchange is unsupported)."""
    target = Path(target)
    if not target.exists() and _old(target).is_dir():
        os.replace(_old(target), target)
        fsync_dir(target.parent)


def _swap_in_two_renames(new: Path, target: Path) -> None:
    old = _old(target)
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(target: Path | str) -> Iterator[Path]:
    """Yield a private temporary folder ``.<name>.*.tmpdir`` next to ``target``; delete it on exit.

    The folder is ``flock``ed while in use, so each call first deletes the ones that killed processes
    left next to ``target`` (free lock) and spares those of live ones.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=_TMP_DIR, dir=target.parent))
    owner = os.open(tmp, os.O_RDONLY)
    fcntl.flock(owner, fcntl.LOCK_EX)  # "being written": a killed writer's tree is recognised by a free lock
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone when published; the old tree after an exchange
        os.close(owner)


@contextlib.contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; swap it in place of ``target`` on success.

    The new tree is fsynced, then exchanged with the old one in a single rename, so a reader (or a
    power cut) sees the complete old tree or the complete new one. Without ``renameat2`` (not
    Linux, or a filesystem without it) two renames are used, and an interruption between them is
    undone by :func:`recover_dir` at the next call. The temp tree is a :func:`scratch_dir`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(target)
    with scratch_dir(target) as tmp:
        yield tmp
        publish_mode(tmp, directory=True)
        fsync_tree(tmp)
        if not target.exists():
            os.replace(tmp, target)
            fsync_dir(target.parent)
        elif _exchange(tmp, target):
            fsync_dir(target.parent)  # the swap is on disk before the old tree (now at tmp) goes
        else:
            _swap_in_two_renames(tmp, target)


def _remove_abandoned(target: Path) -> None:
    """Delete the temp trees that killed writers left next to ``target`` (nobody holds their lock)."""
    for stale in target.parent.glob(f".{target.name}.*{_TMP_DIR}"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live writer
            continue
        else:
            shutil.rmtree(stale, ignore_errors=True)
        finally:
            os.close(fd)
