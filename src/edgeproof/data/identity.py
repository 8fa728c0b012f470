"""What identifies a prepared split: sha256 digests of its files as the data stage wrote them.

The data stage records them in ``metrics/data.json`` (``splits.<split>``, beside the counts), a git-tracked
file; the build gate recomputes them from ``data/prepared`` (:mod:`edgeproof.val_identity`), so a val set
edited after the data stage (its ground truth rewritten, images dropped, then ``dvc commit``) no longer
passes as the one the data stage made. Each image and label file counts by its relative name, size and
content digest: a file swapped for another of the same name and size still changes the digest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgeproof.io import sha256_file

ANNOTATIONS_KEY, IMAGES_KEY, LABELS_KEY = "annotations_sha256", "images_sha256", "labels_sha256"
DIGEST_KEYS = (ANNOTATIONS_KEY, IMAGES_KEY, LABELS_KEY)


def split_files(root: Path, split: str) -> dict[str, Path]:
    """The file or folder each of :data:`DIGEST_KEYS` digests, in the prepared dataset ``root``."""
    return {
        ANNOTATIONS_KEY: root / "annotations" / f"{split}.json",
        IMAGES_KEY: root / "images" / split,
        LABELS_KEY: root / "labels" / split,
    }


def tree_sha256(folder: Path) -> str:
    """sha256 of the sorted list of ``folder``'s files (``relative/name<TAB>size<TAB>sha256`` a line); a folder
    that is not there digests as an empty one."""
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(f"{name}\t{path.stat().st_size}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def split_digests(root: Path, split: str) -> dict[str, str | None]:
    """``{key: sha256}`` for each of :data:`DIGEST_KEYS` of ``split`` in the prepared dataset ``root``; an
    annotation file that is not there is None."""
    out: dict[str, str | None] = {}
    for key, path in split_files(root, split).items():
        if key == ANNOTATIONS_KEY:
            out[key] = sha256_file(path) if path.is_file() else None
        else:
            out[key] = tree_sha256(path)
    return out
