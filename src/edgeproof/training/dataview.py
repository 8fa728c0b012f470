"""A private view of the prepared dataset for ultralytics (training and validation).

ultralytics writes ``labels/<split>.cache`` next to the labels (after resolving symlinks) and may
rewrite "corrupt" JPEGs in place, so it never gets ``data/prepared`` itself: that is a DVC output,
and touching it would make DVC rerun the data stage (and corrupt its cache).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import yaml

from edgeproof.data.canonical import SPLITS, load_meta, ultralytics_data_yaml


def private_view(data_root: Path, view: Path, splits: Sequence[str] = SPLITS) -> Path:
    """Hard-link the images and copy the labels of ``splits`` into ``view``; return its data yaml.

    Images are hard links (copies across filesystems), labels are real copies: ultralytics may
    rewrite nothing of ``data_root`` through the view. Splits not linked point at the first one, so
    the yaml stays valid for validation-only use.
    """
    shutil.rmtree(view, ignore_errors=True)
    for split in splits:
        for kind in ("images", "labels"):
            src, dst = data_root / kind / split, view / kind / split
            dst.mkdir(parents=True, exist_ok=True)
            for file in src.iterdir():
                if kind == "images":
                    try:
                        os.link(file, dst / file.name)
                    except OSError:  # other filesystem, or links not allowed
                        shutil.copyfile(file, dst / file.name)
                else:
                    shutil.copyfile(file, dst / file.name)
    data = ultralytics_data_yaml(view, load_meta(data_root))
    for split in SPLITS:
        if split not in splits:
            data[split] = f"images/{splits[0]}"
    data_yaml = view / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml
