"""ultralytics sees the prepared dataset exactly as the ground truth describes it, and never rewrites it.

ultralytics "restores" a JPEG whose last bytes are not the end marker by writing a new file over it;
on a hard-linked or DVC-tracked dataset that would change data it does not own. The prepared copy
must give it nothing to restore, and the same frame (EXIF applied) as the COCO ground truth.
ultralytics runs in a child process (:mod:`tests.data.ultralytics_probe`): importing it patches PIL.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeproof.data.prepare import prepare
from tests.data.builders import append_garbage, draw, save, tree_state
from tests.data.test_coco import build_messy, coco_params

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ultralytics") is None, reason="ultralytics not installed")
REPO = Path(__file__).resolve().parents[2]


def probe(state: Path, n_classes: int, pairs: list[tuple[Path, Path]]) -> list[dict]:
    args = [f"{image}:{label}" for image, label in pairs]
    cmd = [sys.executable, "-m", "tests.data.ultralytics_probe", str(state), str(n_classes), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_prepared_images_are_read_as_the_ground_truth_says(tmp_path):
    repo = tmp_path / "repo"
    build_messy(repo)
    out = tmp_path / "prepared"
    prepare(coco_params(), repo, out)
    view = tmp_path / "view"  # what training does: its own copy of the labels (images linked or copied)
    shutil.copytree(out, view)
    damaged = append_garbage(save(tmp_path / "damaged/images/x.jpg", draw(64, 48)))  # the hazard, as a control
    damaged_bytes = damaged.read_bytes()
    before = tree_state(view / "images")
    cases, pairs = [], [(damaged, tmp_path / "damaged/labels/x.txt")]
    for split in ("train", "val"):
        gt = json.loads((out / f"annotations/{split}.json").read_text())
        for im in gt["images"]:
            image = view / "images" / split / im["file_name"]
            pairs.append((image, view / "labels" / split / f"{image.stem}.txt"))
            cases.append((gt, im))
    seen = probe(tmp_path / "state", 3, pairs)
    assert "restored" in seen[0]["msg"] and damaged.read_bytes() != damaged_bytes  # ultralytics does rewrite
    for (gt, im), result in zip(cases, seen[1:], strict=True):
        assert result["corrupt"] == 0 and result["msg"] == "", result["msg"]
        assert tuple(result["shape"]) == (im["height"], im["width"])  # ultralytics' EXIF-aware size = the GT's
        cats = [c["id"] for c in gt["categories"]]
        anns = [a for a in gt["annotations"] if a["image_id"] == im["id"] and not a["iscrowd"]]
        expected = [[cats.index(a["category_id"]), (a["bbox"][0] + a["bbox"][2] / 2) / im["width"]] for a in anns]
        got = np.asarray(result["labels"]).reshape(-1, 5)[:, :2]
        assert np.allclose(got, np.asarray(expected).reshape(-1, 2), atol=1e-4)
    assert tree_state(view / "images") == before
