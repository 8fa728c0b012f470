"""Bring your own real photos: `dvc repro` from a COCO source of photographs to a gate verdict.

scikit-image's sample photos (grayscale, EXIF-rotated, 3072 px; :mod:`tests.data.photos`) go through
data, train (tiny), export, optimize, evaluate (with ultralytics' cross-check required), benchmark
and gate. A from-scratch model after one epoch is useless; the point is that every stage handles
real photos and the cross-check compares pipelines, so a correct one never fails it.
"""

from __future__ import annotations

import json

import pytest

from tests.data.builders import tree_state
from tests.data.photos import photo_params, write_photo_source
from tests.pipeline.repo_copy import dvc, make_repo

pytestmark = pytest.mark.pipeline


def test_dvc_repro_on_real_photos_reaches_a_gate_verdict(tmp_path):
    pytest.importorskip("skimage")
    overrides = {
        "data": {"source": "coco", "strict": True, "coco": photo_params()},
        "train": {"epochs": 1, "imgsz": 64, "batch": 4, "workers": 0},
        "evaluate": {"cross_check": {"ultralytics": True, "independent": True}},
        "plots": {"mosaic_images": 2},
        "benchmark": {"warmup": 1, "runs": 3, "e2e_images": 2},
        "profiles": {"cpu-ci": {"gate": {"min_map50": 0.0, "min_fps": 0.0, "max_latency_p95_ms": 1e6}}},
    }
    root = make_repo(tmp_path / "repo", overrides)
    write_photo_source(root)
    before = tree_state(root / "data/sources/photos")

    proc = dvc(root, "repro")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    assert tree_state(root / "data/sources/photos") == before, "the photos were modified"
    cc = json.loads((root / "metrics/eval.json").read_text())["cross_check"]
    assert cc["passed"] and cc["skipped"] == {} and cc["difference"]["ultralytics"] <= 0.001
    gate = json.loads((root / "reports/gate.json").read_text())
    assert gate["passed"] is True
