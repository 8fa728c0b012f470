"""Atomic, durable file writes, content hashes, file sizes and file locks.

Every file a stage declares as an output goes through these helpers: a reader (DVC, the gate, the
Jetson job) either sees the previous complete file or the new complete file, never a torn one.
Durability: a file's bytes are fsynced before it is renamed into place and its folder is fsynced
after, so once a helper returns the new version survives a power cut (before it returns, the old
one does). Whole folders (a swap in one step, scratch folders) are :mod:`edgeproof.folders`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import functools
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


def publish_mode(path: Path, directory: bool = False) -> None:
    """Give a temp file/dir the mode a plain ``open``/``mkdir`` would (mkstemp makes them 0600/0700)."""
    path.chmod((0o777 if directory else 0o666) & ~_umask())


def fsync_file(path: Path | str) -> None:
    """Flush ``path``'s bytes to the disk (a writer's ``close`` only hands them to the page cache)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    """Flush ``path``'s directory entries (a rename or a new file in it) to the disk."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # platforms without directory handles (Windows): nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory; the rename is still atomic
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str = "", durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it over ``target`` only on success.

    The temporary file lives in the target's directory so that ``os.replace`` is a same-filesystem
    rename (atomic on POSIX). On any exception the temporary file is removed and ``target`` is left
    untouched. ``durable`` fsyncs the file before the rename and the folder after it; pass False
    only when an enclosing :func:`edgeproof.folders.atomic_dir` syncs the whole tree anyway.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        publish_mode(tmp)
        if durable:
            fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def write_text(path: Path | str, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path | str, data: Any) -> Path:
    """Atomically write ``data`` as pretty, key-sorted JSON (stable diffs for ``dvc metrics diff``)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: a key given twice in one object is an error naming it.

    ``json.loads`` alone keeps the last one silently; in a measured or forged file which figure was meant
    cannot be known. The one implementation, for the build side and the device side (Python 3.8) alike.
    """
    twice = sorted(k for k, n in collections.Counter(k for k, _ in pairs).items() if n > 1)
    if twice:
        raise ValueError(f"duplicate key(s) {twice}")
    return dict(pairs)


@functools.lru_cache(maxsize=None)  # noqa: UP033 (functools.cache is 3.9+: the device side runs 3.8)
def unique_key_loader() -> Any:
    """PyYAML's ``SafeLoader`` refusing a key given twice in one mapping: the YAML side of :func:`unique_keys`.

    PyYAML keeps the last of two keys silently (``names: {1: square, 1: triangle}`` renames a class);
    the error (a ``ConstructorError``) says ``duplicate key 1`` and marks the second one's line and column.
    A key a merge (``<<: *anchor``) brings in may be overridden, as YAML allows. Subclass it to change how
    scalars resolve (the board's YAML 1.2 reading of params files); it stays one class per process.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """``SafeLoader`` that refuses a duplicate mapping key."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen = []  # the mapping's own keys; a list: a key may be unhashable until construct_mapping refuses it
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.append(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)  # flattens the merge keys

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return UniqueKeyLoader


def read_json(path: Path | str) -> Any:
    """Read a JSON file, naming the file in the error if it is missing, malformed or has a key given twice."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=unique_keys)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except ValueError as exc:  # JSONDecodeError, a duplicate key, or bytes that are not UTF-8
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def copy_file(src: Path | str, dst: Path | str) -> Path:
    """Atomically copy ``src`` to ``dst``."""
    with atomic_path(dst, suffix=Path(dst).suffix) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def json_sha256(value: Any, length: int = 64) -> str:
    """Hex sha256 (first ``length`` digits) of ``value`` as sorted-key JSON: a content id that does not
    depend on key order (anything JSON cannot hold is written as ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


# File sizes (a model, a TensorRT engine) are MB of 10^6 bytes wherever a ``*_mb`` key states one: the
# headline's ``model_mb`` and the device's ``bench.json`` were 5 % apart (10^6 against 2^20) for one file.
BYTES_PER_MB = 10**6


def size_mb(nbytes: float, digits: int = 6) -> float:
    """``nbytes`` in MB (:data:`BYTES_PER_MB`), rounded to ``digits``: the one unit of every file size."""
    return round(nbytes / BYTES_PER_MB, digits)


def file_mb(path: Path | str, digits: int = 6) -> float | None:
    """A file's size in MB (:func:`size_mb`); ``None`` when it is absent."""
    try:
        return size_mb(Path(path).stat().st_size, digits)
    except OSError:
        return None


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes: the identity of a model across evaluate/benchmark/gate/registry."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class Sha256Mismatch(ValueError):
    """A file's bytes are not the ones a record names by sha256 (a model swapped after its release)."""


def require_sha256(path: Path | str, expected: str, recorded_in: str, remedy: str = "") -> str:
    """``path``'s sha256 when it is ``expected``, the sha256 ``recorded_in`` (a file, a record) names for it.

    Otherwise :class:`Sha256Mismatch`, one line naming the file, both sha256 and the record, then ``remedy``
    (what to do) when given: a file whose bytes changed since the record must never run as the recorded one.
    """
    actual = sha256_file(path)
    if actual != expected:
        fix = "; " + remedy if remedy else ""
        raise Sha256Mismatch(f"{path}: sha256 {actual} is not {expected} recorded in {recorded_in}{fix}")
    return actual


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
