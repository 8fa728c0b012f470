"""Atomic file writes and content hashes.

Every file a stage declares as an output goes through these helpers: a reader (DVC, the gate, the
Jetson job) either sees the previous complete file or the new complete file, never a torn one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, directory: bool = False) -> None:
    """Give a temp file/dir the mode a plain ``open``/``mkdir`` would (mkstemp makes them 0600/0700)."""
    path.chmod((0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it over ``target`` only on success.

    The temporary file lives in the target's directory so that ``os.replace`` is a same-filesystem
    rename (atomic on POSIX). On any exception the temporary file is removed and ``target`` is left
    untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _publish_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path | str, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path | str, data: Any) -> Path:
    """Atomically write ``data`` as pretty, key-sorted JSON (stable diffs for ``dvc metrics diff``)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: Path | str) -> Any:
    """Read a JSON file, naming the file in the error if it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def copy_file(src: Path | str, dst: Path | str) -> Path:
    """Atomically copy ``src`` to ``dst``."""
    with atomic_path(dst, suffix=Path(dst).suffix) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes: the identity of a model across evaluate/benchmark/gate/registry."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; swap it in place of ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        _publish_mode(tmp, directory=True)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class LockBusy(RuntimeError):
    """Another process (or another open file in this one) holds the lock."""


@contextlib.contextmanager
def exclusive_lock(path: Path | str, wait: bool = True, on_wait: Callable[[], None] | None = None) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block.

    ``wait=False`` raises :class:`LockBusy` instead of waiting; otherwise ``on_wait`` is called once
    if the lock is taken, before blocking. The holder may delete ``path`` (to clean up): a waiter
    that then gets the lock on the deleted file notices that the name now points elsewhere and
    takes the lock again, so two holders can never coexist. The lock dies with its process.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise LockBusy(f"{path}: held by another process") from None
                if on_wait is not None:
                    on_wait()
                    on_wait = None
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = path.stat()
                current = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                current = None
            held = os.fstat(fd)
            if current == (held.st_dev, held.st_ino):
                yield path
                return
        finally:
            os.close(fd)  # closing the last descriptor releases the lock
