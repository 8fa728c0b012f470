"""A private view of the prepared dataset for ultralytics (training and validation).

ultralytics writes ``labels/<split>.cache`` next to the labels (after resolving symlinks) and may
rewrite "corrupt" JPEGs in place, so it never gets ``data/prepared`` itself: that is a DVC output,
and touching it would make DVC rerun the data stage (and corrupt its cache).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import yaml

from edgeproof.data.canonical import SPLITS, load_meta, ultralytics_data_yaml


def _place(src: Path, dst: Path, link: bool) -> None:
    """Make ``dst`` a new directory entry with ``src``'s bytes: a hard link if ``link`` (and possible), else a copy.

    Both are made under a fresh temporary name and renamed over ``dst``: an existing ``dst`` (left by
    an interrupted or concurrent run) may be a hard link to somebody's file, and is replaced, never
    opened for writing.
    """
    if link:
        tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
        try:
            os.link(src, tmp)
        except OSError:  # other filesystem, or links not allowed: copy below
            pass
        else:
            try:
                os.replace(tmp, dst)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)  # a new file of ours
    os.close(fd)
    try:
        shutil.copy(src, tmp_name)  # bytes and mode
        os.replace(tmp_name, dst)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def private_view(data_root: Path, view: Path, splits: Sequence[str] = SPLITS) -> Path:
    """Hard-link the images and copy the labels of ``splits`` into ``view``; return its data yaml.

    Images are hard links (copies across filesystems), labels are real copies: ultralytics may
    rewrite nothing of ``data_root`` through the view. Splits not linked point at the first one, so
    the yaml stays valid for validation-only use. The caller owns ``view`` exclusively (training
    holds the run's lock, :mod:`edgeproof.training.runs`); even so nothing is written through an
    existing file.
    """
    shutil.rmtree(view, ignore_errors=True)
    for split in splits:
        for kind in ("images", "labels"):
            src, dst = data_root / kind / split, view / kind / split
            dst.mkdir(parents=True, exist_ok=True)
            for file in src.iterdir():
                _place(file, dst / file.name, link=kind == "images")
    data = ultralytics_data_yaml(view, load_meta(data_root))
    for split in SPLITS:
        if split not in splits:
            data[split] = f"images/{splits[0]}"
    data_yaml = view / "data.yaml"
    data_yaml.unlink(missing_ok=True)
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml
