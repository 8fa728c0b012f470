"""What DVC's own configuration says about a repo: its cache link types and its cache folder.

DVC merges system < global < repo < local configs, and finds the first two through
``DVC_SYSTEM_CONFIG_DIR`` / ``DVC_GLOBAL_CONFIG_DIR``, else the platform's locations
(``XDG_CONFIG_DIRS`` / ``XDG_CONFIG_HOME`` on Linux, ``~/Library/Application Support`` on macOS,
``%APPDATA%`` on Windows): asking DVC's own config loader is the only way to see what it will do.
DVC is imported only when asked (the data package is light to import, and works without DVC).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

# a DVC cache object: <cache>/files/md5/ab/cdef... (DVC 3) or <cache>/ab/cdef... (DVC 2), 32 hex digits in all
_OBJECT = re.compile(r"(^|/)[0-9a-f]{2}/[0-9a-f]{30}(\.dir)?$")


def _config(repo: Path, why: str) -> dict[str, Any] | None:
    """DVC's merged config for ``repo``; None without DVC. A broken config is a ValueError saying ``why``."""
    try:
        from dvc.config import Config, ConfigError
    except ImportError:
        return None
    dvc_dir = repo / ".dvc"
    try:
        return Config(dvc_dir=str(dvc_dir) if dvc_dir.is_dir() else None, validate=True)
    except ConfigError as exc:
        raise ValueError(f"DVC config (read for {why}): {exc}") from None


def dvc_cache_types(repo: Path) -> list[str] | None:
    """DVC's effective ``cache.type`` for ``repo``, read by DVC's own config loader; None without DVC."""
    config = _config(repo, "data.link: auto")
    if config is None:
        return None
    types = config.get("cache", {}).get("type")
    if isinstance(types, str):
        types = [types]
    return list(types) if types else ["reflink", "copy"]


def dvc_repo(path: Path) -> Path | None:
    """The DVC repo ``path`` is in: the nearest folder holding ``.dvc/`` (as DVC finds it), or None."""
    for folder in (path.absolute(), *path.absolute().parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def _stamp(repo: Path) -> tuple[int, ...]:
    """When the repo's own DVC config files last changed (-1: absent): a cached answer is redone after."""
    stamps = []
    for name in ("config", "config.local"):
        try:
            stamps.append((repo / ".dvc" / name).stat().st_mtime_ns)
        except OSError:
            stamps.append(-1)
    return tuple(stamps)


@lru_cache(maxsize=16)
def _cache_dir(repo: Path, stamp: tuple[int, ...]) -> Path | None:
    config = _config(repo, "a symlink into DVC's cache")
    if config is None:
        return None
    cache = config.get("cache", {})
    if cache.get("local"):  # a named remote as the cache: rare, not resolved here
        return None
    return Path(cache.get("dir") or repo / ".dvc" / "cache").resolve()


def dvc_cache_dir(repo: Path) -> Path | None:
    """The folder DVC keeps ``repo``'s cache in (``cache.dir``, else ``.dvc/cache``), resolved; None
    without DVC. Cached per repo until its ``.dvc/config`` files change: asked once per linked file."""
    return _cache_dir(repo.absolute(), _stamp(repo))


def in_dvc_cache(target: Path, path: Path) -> bool:
    """Whether ``target`` (resolved) lies in the DVC cache of the repo ``path`` is in: what a file of a
    dataset tracked with ``dvc add`` is under ``cache.type: symlink``, the file itself."""
    repo = dvc_repo(path)
    cache = dvc_cache_dir(repo) if repo is not None else None
    return cache is not None and target.is_relative_to(cache)


def looks_like_dvc_object(target: Path) -> bool:
    """Whether ``target`` is named like a DVC cache object (``.../files/md5/ab/cdef...``)."""
    return _OBJECT.search(target.as_posix()) is not None
