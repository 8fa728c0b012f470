"""MLflow-safe metric, param and tag keys (no MLflow import here).

MLflow accepts keys made of alphanumerics, underscores, dashes, periods, spaces and slashes (colons
on POSIX servers only), at most 250 characters, that stay the same under ``posixpath.normpath``
(no ``//``, ``/./``, leading ``/`` or ``..``). Keys from the pipeline's files (class names, YAML
keys, CSV headers) may break any of these rules; an invalid key makes the whole MLflow call fail.

Cleaning replaces each disallowed character by ``_``. Two names that clean to the same key (or a
cleaned name that equals a key already valid) get a short hash of the original name appended, so
distinct names stay distinct. Cleaning a mapping whose keys are all valid changes nothing, so it
can be applied again to an already cleaned record.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

MAX_KEY_LENGTH = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\- /]")  # ASCII and no colon: valid on every MLflow server
_BAD_PART_CHARS = re.compile(r"[^A-Za-z0-9_.\- ]")  # one segment of a key: no slash either
_DIGEST = 8

V = TypeVar("V")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:_DIGEST]


def _path_not_unique(key: str) -> bool:
    """Mirror of ``mlflow.utils.validation.path_not_unique``."""
    norm = posixpath.normpath(key)
    return norm != key or norm == "." or norm.startswith(("..", "/"))


def _shorten(key: str, original: str, limit: int = MAX_KEY_LENGTH) -> str:
    if len(key) <= limit:
        return key
    return f"{key[: limit - _DIGEST - 1]}-{_digest(original)}"


def clean_key(name: str) -> str:
    """``name`` as a valid MLflow metric/param/tag key (unchanged when it already is one)."""
    key = _BAD_KEY_CHARS.sub("_", name) or "_"
    if _path_not_unique(key):
        key = key.replace("/", "_")
        if key.startswith("..") or key == ".":
            key = f"_{key}"
    return _shorten(key, name)


def clean_part(name: str) -> str:
    """``name`` as one segment of a key (e.g. a class name in ``eval.class.<name>.ap``): no slash,
    only allowed characters, at most 100 characters."""
    return _shorten(_BAD_PART_CHARS.sub("_", name) or "_", name, limit=100)


def unique_names(names: Iterable[str], clean: Callable[[str], str] = clean_key) -> dict[str, str]:
    """``{original: cleaned}`` with distinct originals mapped to distinct cleaned names."""
    first = {name: clean(name) for name in names}
    counts = Counter(first.values())
    kept = {name for name, new in first.items() if name == new}
    out = {}
    for name, new in first.items():
        if new != name and (counts[new] > 1 or new in kept):
            new = f"{_shorten(new, name, MAX_KEY_LENGTH - _DIGEST - 1)}-{_digest(name)}"
        out[name] = new
    return out


def clean_keys(data: Mapping[str, V]) -> dict[str, V]:
    """``data`` with every key cleaned by :func:`clean_key`, distinct keys kept distinct."""
    names = unique_names(str(k) for k in data)
    return {names[str(k)]: v for k, v in data.items()}
